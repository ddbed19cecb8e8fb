"""The xarray backend's arrays, read through zarr with the store's concurrency.

refindex does not change zarr's process-wide ``async.concurrency`` when a dataset is opened;
each read of a variable raises it to ``ReferenceStore.zarr_concurrency`` for as long as zarr
reads, and puts it back after (``refindex.store.tuning.zarr_concurrency``), so that zarr hands the
store many chunks at once and the batcher makes few large requests of them.
"""

from __future__ import annotations

from xarray.backends.zarr import ZarrArrayWrapper
from xarray.core import indexing
from xarray.core.variable import Variable

from refindex.store.tuning import zarr_concurrency


class TunedZarrArray(ZarrArrayWrapper):
    """xarray's lazy zarr array, read with zarr asking for ``concurrency`` chunks at once."""

    __slots__ = ("concurrency",)

    def __init__(self, zarr_array, concurrency: int) -> None:
        super().__init__(zarr_array)
        self.concurrency = concurrency

    def __getitem__(self, key):
        with zarr_concurrency(self.concurrency):
            return super().__getitem__(key)

    async def async_getitem(self, key):
        with zarr_concurrency(self.concurrency):
            return await super().async_getitem(key)


def tuned(variable: Variable, zarr_array, concurrency: int) -> Variable:
    """``variable`` (as xarray's ``ZarrStore`` opened it) reading ``zarr_array`` with
    ``concurrency`` chunks asked for at once."""
    data = indexing.LazilyIndexedArray(TunedZarrArray(zarr_array, concurrency))
    return Variable(variable.dims, data, variable.attrs, variable.encoding)
