"""The Zarr store over an index (``reference.py``), the read-ahead that turns zarr's chunk
reads into batches (``readahead.py``), and the data types zarr needs to parse what HDF5 holds
(``zarr_dtypes.py``, registered here before zarr parses any array this store serves)."""

from refindex.store import zarr_dtypes
from refindex.store.reference import ReferenceStore, open_store

zarr_dtypes.register()

__all__ = ["ReferenceStore", "open_store"]
