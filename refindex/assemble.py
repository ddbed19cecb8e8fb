"""Reading a region of an array chunk by chunk, where zarr cannot: fetch the chunks the region
overlaps, decode each with the array's codecs, and place the part of it the region holds.

Arrays with irregular chunk grids (combined from members of uneven lengths, see
refindex.grid) are read this way: the store re-tiles them into the regular chunks zarr
expects, the xarray backend reads them along their own chunks. Combining reads members'
coordinate values this way too. Decoded chunks are kept in a byte-bounded LRU
(:class:`DecodedChunks`), so that neighbouring regions sharing a chunk decode it once.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import numcodecs
import numpy as np
from numcodecs.compat import ensure_ndarray_like

from refindex.codecs.fast_zlib import fast_codecs
from refindex.grid import ChunkGrid
from refindex.index import ABSENT, INLINE, ArrayNode, ChunkRef, Index, Source
from refindex.io.requests import RangeRequest

Fetch = Callable[[list[ChunkRef]], Awaitable[list[bytes]]]
"""Fetches the bytes of referenced (not inline, not absent) chunks, in order."""


def chunk_request(source: Source, ref: ChunkRef) -> RangeRequest:
    """The read of a referenced chunk's bytes, pinned to the source's recorded identity."""
    return RangeRequest(source.url, ref.offset, ref.length, etag=source.etag, size=source.size,
                        last_modified=source.last_modified)


def engine_fetch(index: Index, engine) -> Fetch:
    """A :data:`Fetch` reading ``index``'s chunks through the I/O engine ``engine``."""
    async def fetch(refs: list[ChunkRef]) -> list[bytes]:
        return await engine.read([chunk_request(index.sources[ref.source], ref) for ref in refs])

    return fetch


async def read_array(index: Index, path: str, fetch: Fetch) -> np.ndarray:
    """All values of array ``path`` of ``index``."""
    node = index.arrays[path]
    codec = ChunkCodec(node.zarray)
    region = tuple(slice(0, int(n)) for n in node.zarray["shape"])
    return await read_region(node, region, fetch, codec=codec,
                             out=codec.filled(tuple(int(n) for n in node.zarray["shape"])))


class ChunkCodec:
    """Decodes the stored bytes of an array's chunks: its Zarr v2 compressor and filters
    (last filter first), dtype and memory order, as zarr does; knows its fill value."""

    def __init__(self, zarray: dict) -> None:
        from zarr.core.metadata.v2 import ArrayV2Metadata

        served = fast_codecs(zarray)
        self._compressor = _codec(served.get("compressor"))
        self._filters = [_codec(f) for f in served.get("filters") or ()]
        metadata = ArrayV2Metadata.from_dict({**zarray, "zarr_format": 2})
        self.dtype = metadata.dtype.to_native_dtype()
        fill = metadata.fill_value
        self.fill_value = metadata.dtype.default_scalar() if fill is None else fill
        self.order = zarray.get("order") or "C"

    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """The chunk of ``shape`` (as stored, edge chunks padded) that ``data`` encodes."""
        buffer = data
        if self._compressor is not None:
            buffer = self._compressor.decode(buffer)
        for codec in reversed(self._filters):
            buffer = codec.decode(buffer)
        array = ensure_ndarray_like(buffer)
        if self.dtype != object:
            array = array.view(self.dtype)
        return array.reshape(shape, order=self.order)

    def filled(self, shape: tuple[int, ...]) -> np.ndarray:
        """An array of ``shape`` holding the fill value."""
        return np.full(shape, self.fill_value, dtype=self.dtype)


def _codec(config: dict | None):
    return None if config is None else numcodecs.get_codec(dict(config))


@dataclass(frozen=True)
class Piece:
    """Chunk ``coords`` (at ``flat`` in the chunk table) holds ``source`` of its decoded
    elements, which land at ``target`` of the region read."""

    flat: int
    coords: tuple[int, ...]
    source: tuple[slice, ...]
    target: tuple[slice, ...]


def pieces_of(grid: ChunkGrid, region: tuple[slice, ...]) -> list[Piece]:
    """The chunks a region (``slice(start, stop)`` per axis, steps of 1) overlaps, in C order,
    each with the part of it that lies in the region."""
    per_axis = []
    for axis, wanted in zip(grid.axes, region, strict=True):
        start, stop = wanted.start, wanted.stop
        per_axis.append([(c, slice(max(start, int(axis.edges[c])) - int(axis.edges[c]),
                                   min(stop, int(axis.edges[c + 1])) - int(axis.edges[c])),
                          slice(max(start, int(axis.edges[c])) - start,
                                min(stop, int(axis.edges[c + 1])) - start))
                         for c in axis.overlapping(start, stop)])
    counts = grid.counts
    pieces = []
    for combo in itertools.product(*per_axis):
        coords = tuple(c for c, _, _ in combo)
        flat = int(np.ravel_multi_index(coords, counts)) if coords else 0
        pieces.append(Piece(flat, coords, tuple(s for _, s, _ in combo),
                            tuple(t for _, _, t in combo)))
    return pieces


class DecodedChunks:
    """A byte-bounded LRU of decoded chunks, shared by the threads and event loops of a
    store; ``max_bytes`` 0 keeps nothing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._chunks: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is None:
                self.misses += 1
                return None
            self._chunks.move_to_end(key)
            self.hits += 1
            return chunk

    def put(self, key: Hashable, chunk: np.ndarray) -> None:
        if chunk.nbytes > self.max_bytes:
            return
        with self._lock:
            if key in self._chunks:
                return
            chunk.flags.writeable = False  # shared: no reader may change it
            self._chunks[key] = chunk
            self._bytes += chunk.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._chunks.popitem(last=False)
                self._bytes -= dropped.nbytes


async def read_region(node: ArrayNode, region: tuple[slice, ...], fetch: Fetch,
                      cache: DecodedChunks | None = None, codec: ChunkCodec | None = None,
                      out: np.ndarray | None = None) -> np.ndarray | None:
    """The elements of ``node`` in ``region`` (a slice of steps 1 per axis), into ``out``
    when given (which must be filled with the fill value where nothing lands: a region
    reaching past the array's end). None when every chunk it overlaps is absent and no
    ``out`` was given (readers see the fill value)."""
    codec = codec or ChunkCodec(node.zarray)
    grid = node.chunk_grid
    pieces = pieces_of(grid, region)
    refs = {piece.flat: node.chunks.get(piece.flat) for piece in pieces}
    if out is None and all(ref.source == ABSENT for ref in refs.values()):
        return None
    if out is None:
        shape = tuple(s.stop - s.start for s in region)
        out = codec.filled(shape)
    chunks = await _decoded(node, grid, refs, fetch, cache, codec)
    for piece in pieces:
        chunk = chunks.get(piece.flat)
        if chunk is None:
            out[piece.target] = codec.fill_value
        else:
            out[piece.target] = chunk[piece.source]
    return out


async def _decoded(node: ArrayNode, grid: ChunkGrid, refs: dict[int, ChunkRef], fetch: Fetch,
                   cache: DecodedChunks | None, codec: ChunkCodec) -> dict[int, np.ndarray]:
    """The decoded chunks of ``refs`` that exist, from ``cache`` or fetched in one call."""
    decoded: dict[int, np.ndarray] = {}
    wanted: dict[int, ChunkRef] = {}
    for flat, ref in refs.items():
        if ref.source == ABSENT:
            continue
        hit = cache.get((node.path, flat)) if cache is not None else None
        if hit is not None:
            decoded[flat] = hit
        else:
            wanted[flat] = ref
    fetched_refs = [ref for ref in wanted.values() if ref.source != INLINE]
    fetched = iter(await fetch(fetched_refs) if fetched_refs else [])
    stored = {flat: ref.data if ref.source == INLINE else next(fetched)
              for flat, ref in wanted.items()}

    def decode_all() -> dict[int, np.ndarray]:
        counts = grid.counts
        return {flat: codec.decode(data, grid.stored_shape(
                    tuple(int(c) for c in np.unravel_index(flat, counts))))
                for flat, data in stored.items()}

    fresh = await asyncio.to_thread(decode_all) if len(stored) > 1 else decode_all()
    for flat, chunk in fresh.items():
        if cache is not None:
            cache.put((node.path, flat), chunk)
        decoded[flat] = chunk
    return decoded
