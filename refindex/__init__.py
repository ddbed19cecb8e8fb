"""refindex: a byte-range reference index over archival containers, read as a Zarr store."""

__version__ = "0.1.0"

from refindex import zarr_dtypes as _zarr_dtypes  # noqa: E402
from refindex.index import Index  # noqa: E402
from refindex.io import ReadOptions  # noqa: E402
from refindex.scan import ScanOptions, ScanResult, scan  # noqa: E402
from refindex.sidecar import load_index, write_index  # noqa: E402
from refindex.store import ReferenceStore, open_store  # noqa: E402
from refindex.tuning import tune_zarr  # noqa: E402
from refindex.validate import ValidationReport, validate  # noqa: E402

_zarr_dtypes.register()

__all__ = ["Index", "ReadOptions", "ReferenceStore", "ScanOptions", "ScanResult",
           "ValidationReport", "load_index", "open_store", "scan", "tune_zarr", "validate",
           "write_index", "__version__"]
