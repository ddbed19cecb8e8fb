"""Arrays with irregular chunks in xarray: read along their own chunks, not zarr's re-tiling.

An array combined from members of uneven lengths (refindex.grid) has chunks of differing
lengths along the combined axis. zarr can only read it re-tiled (refindex.store), which
decodes a stored chunk for each regular chunk it overlaps. Here xarray gets the stored
chunking as the variable's preferred chunks, so ``chunks={}`` makes one Dask chunk per
stored chunk, and each read decodes exactly the chunks it needs.
"""

from __future__ import annotations

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from refindex.index import ArrayNode
from refindex.selection import basic_selection
from refindex.store import ReferenceStore


class IrregularArray(BackendArray):
    """Lazy array ``path`` of ``store``, read region by region through
    :meth:`ReferenceStore.read_region_sync`. Picklable (the store is)."""

    def __init__(self, store: ReferenceStore, path: str, dtype: np.dtype) -> None:
        self.store = store
        self.path = path
        self.shape = tuple(store.index.arrays[path].zarray["shape"])
        self.dtype = dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape,
                                                  indexing.IndexingSupport.BASIC, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        selection = basic_selection(key, self.shape)
        return self.store.read_region_sync(self.path, selection.region)[selection.pick]


def preferred_chunks(node: ArrayNode, dims: tuple[str, ...]) -> dict[str, int | tuple[int, ...]]:
    """Per dimension, the stored chunk lengths (a tuple along irregular axes)."""
    chunks: dict[str, int | tuple[int, ...]] = {}
    for dim, axis in zip(dims, node.chunk_grid.axes, strict=True):
        regular = axis.regular_chunk()
        chunks[dim] = regular if regular is not None else tuple(int(n) for n in axis.sizes)
    return chunks
