"""Arrays on a regular chunk grid in xarray, read through refindex's region reader.

zarr-python spends some 300 µs of Python on every chunk it reads (its codec pipeline, buffer
prototypes, a task per chunk), which is most of the time a plane of a thousand small chunks
takes. For basic selections (integers and slices, what xarray and Dask ask for almost
always) the backend reads instead with ``ReferenceStore.read_region_sync``: the chunks the
selection overlaps fetched in one batch through the store's batcher, each decoded with the
same guarded codecs the store serves zarr (exact chunk sizes, bombs bounded, bad bytes a
``ChunkDecodeError``) straight into the result, on every core when there are many bytes.

Everything else is zarr's, through :class:`~refindex.xarray.tuned.TunedZarrArray`: outer and
vectorized indexing (zarr picks just the chunks the indices touch, where a region read would
decode their whole bounding box), async loading, and arrays whose values zarr builds rather
than casts from bytes (object dtypes: variable-length strings and sequences).
"""

from __future__ import annotations

import asyncio

import numpy as np
from xarray.core import indexing
from xarray.core.variable import Variable

from refindex.assemble import region_readable
from refindex.index import ArrayNode
from refindex.selection import basic_selection, is_basic
from refindex.store import ReferenceStore
from refindex.xarray.tuned import TunedZarrArray, tuned


class RegionArray(TunedZarrArray):
    """xarray's lazy zarr array, with basic selections read by ``store``'s region reader."""

    __slots__ = ("store", "path")

    def __init__(self, zarr_array, concurrency: int, store: ReferenceStore, path: str) -> None:
        super().__init__(zarr_array, concurrency)
        self.store, self.path = store, path

    def __getitem__(self, key):
        if isinstance(key, indexing.BasicIndexer) or (
                isinstance(key, indexing.OuterIndexer) and is_basic(key.tuple)):
            return indexing.explicit_indexing_adapter(
                indexing.BasicIndexer(key.tuple), self.shape, indexing.IndexingSupport.BASIC,
                self._read)
        return super().__getitem__(key)

    async def async_getitem(self, key):
        if isinstance(key, indexing.BasicIndexer):
            # Off the caller's loop: the read runs on refindex's I/O loop, decodes on threads.
            return await asyncio.to_thread(self.__getitem__, key)
        return await super().async_getitem(key)

    def _read(self, key: tuple) -> np.ndarray:
        selection = basic_selection(key, self.shape)
        return self.store.read_region_sync(self.path, selection.region)[selection.pick]


def read_by_region(variable: Variable, node: ArrayNode, zarr_array, store: ReferenceStore
                   ) -> Variable:
    """``variable`` (as xarray's ``ZarrStore`` opened it) with basic selections read by
    refindex's region reader where that is exact, else by zarr (``tuned``)."""
    if not region_readable(node):
        return tuned(variable, zarr_array, store.zarr_concurrency)
    array = RegionArray(zarr_array, store.zarr_concurrency, store, node.path)
    return Variable(variable.dims, indexing.LazilyIndexedArray(array), variable.attrs,
                    variable.encoding)
