"""refindex: a byte-range reference index over archival containers, read as a Zarr store.

The public names load on first use (PEP 562), so ``import refindex`` — paid by every CLI
command, scan worker and Dask worker — does not import zarr, aiohttp or h5py until a name
that needs them is touched.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refindex.index import Index
    from refindex.io import ReadOptions
    from refindex.scan import ScanOptions, ScanResult, scan, scan_dmrpp
    from refindex.sidecar import load_index, write_index
    from refindex.store import ReferenceStore, open_store
    from refindex.store.tuning import tune_zarr
    from refindex.validate import ValidationReport, validate

# Public name -> the module that defines it.
_EXPORTS = {
    "Index": "refindex.index",
    "ReadOptions": "refindex.io",
    "ScanOptions": "refindex.scan",
    "ScanResult": "refindex.scan",
    "scan": "refindex.scan",
    "scan_dmrpp": "refindex.scan",
    "load_index": "refindex.sidecar",
    "write_index": "refindex.sidecar",
    "ReferenceStore": "refindex.store",
    "open_store": "refindex.store",
    "tune_zarr": "refindex.store.tuning",
    "ValidationReport": "refindex.validate",
    "validate": "refindex.validate",
}

__all__ = ["Index", "ReadOptions", "ReferenceStore", "ScanOptions", "ScanResult",
           "ValidationReport", "load_index", "open_store", "scan", "scan_dmrpp", "tune_zarr",
           "validate", "write_index", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'refindex' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """``refindex.scan`` and ``refindex.validate`` are functions named like their modules.

    Importing a submodule binds it on its package after the submodule has run, which would
    replace the function a user called ``refindex.scan`` with the module the first time
    anything imports ``refindex.scan``; the functions keep their names here.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in ("scan", "validate"):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one place it is written."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("refindex")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
