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
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Hashable
from dataclasses import dataclass
from typing import Protocol

import numcodecs
import numpy as np
import ujson
from numcodecs.compat import ensure_ndarray_like

from refindex.codecs.fast_zlib import fast_codecs, inflate_into
from refindex.codecs.guarded import decode_problem, guarded_codecs
from refindex.decode_pool import in_parallel
from refindex.errors import ChunkDecodeError
from refindex.grid import ChunkGrid
from refindex.index import ABSENT, INLINE, ArrayNode, ChunkRef, Index, Source
from refindex.io.requests import RangeRequest


class Fetch(Protocol):
    """Fetches chunks' stored bytes, given their references and flat positions (which name
    them in errors), in that order; ``keep=False``: a bulk read, kept by no cache."""

    def __call__(self, refs: list[ChunkRef], flats: list[int], keep: bool = True
                 ) -> Awaitable[list[bytes]]: ...


def chunk_request(source: Source, ref: ChunkRef, keep: bool = True) -> RangeRequest:
    """The read of a referenced chunk's bytes, pinned to the source's recorded identity
    (``keep``: see ``RangeRequest``)."""
    return RangeRequest(source.url, ref.offset, ref.length, etag=source.etag, size=source.size,
                        last_modified=source.last_modified, keep=keep)


def engine_fetch(index: Index, engine) -> Fetch:
    """A :data:`Fetch` reading ``index``'s chunks through the I/O engine ``engine``."""
    async def fetch(refs: list[ChunkRef], flats: list[int] | None = None,
                    keep: bool = True) -> list[bytes]:
        return await engine.read([chunk_request(index.sources[ref.source], ref, keep)
                                  for ref in refs])

    return fetch


_codecs: dict[str, ChunkCodec] = {}
_codecs_lock = threading.Lock()


def codec_for(zarray: dict, sized: bool = False, array: str = "") -> ChunkCodec:
    """The (shared) codec of arrays with this metadata: parsing it costs more than a decode
    of a small chunk, and ten thousand members share a handful. ``sized`` for arrays on a
    regular grid: each chunk must decode to exactly ``chunks`` elements (bombs bounded);
    ``array`` names the array in decoding errors."""
    key = ujson.dumps({k: v for k, v in zarray.items() if k != "shape"}, sort_keys=True)
    key = f"{sized}:{array}:{key}"
    with _codecs_lock:
        codec = _codecs.get(key)
    if codec is None:
        codec = ChunkCodec(zarray, sized, array)
        with _codecs_lock:
            if len(_codecs) > 1024:
                _codecs.clear()
            _codecs[key] = codec
    return codec


class ChunkCodec:
    """Decodes the stored bytes of an array's chunks: its Zarr v2 compressor and filters
    (last filter first), dtype and memory order, as zarr does; knows its fill value."""

    def __init__(self, zarray: dict, sized: bool = False, array: str = "") -> None:
        from zarr.core.metadata.v2 import ArrayV2Metadata

        # Chunks of irregular grids decode to their stored shape, not ``chunks``: unsized
        # (then no step's output is bounded). Regular grids store every chunk padded to
        # ``chunks``, as zarr reads them: the same guards as the store serves zarr.
        served = guarded_codecs(fast_codecs(zarray), array, sized=sized)
        self._compressor = _codec(served.get("compressor"))
        self._filters = [_codec(f) for f in served.get("filters") or ()]
        metadata = ArrayV2Metadata.from_dict({**zarray, "zarr_format": 2})
        self.dtype = metadata.dtype.to_native_dtype()
        fill = metadata.fill_value
        self.fill_value = metadata.dtype.default_scalar() if fill is None else fill
        self.order = zarray.get("order") or "C"
        self.array = array
        self._inflate_plan = _inflate_plan(zarray, self.dtype) if sized else None

    def decode(self, data: bytes, shape: tuple[int, ...], scratch: bool = False) -> np.ndarray:
        """The chunk of ``shape`` (as stored, edge chunks padded) that ``data`` encodes.
        ``scratch``: the result may be a view of this thread's scratch buffers, valid until
        the thread's next decode (zlib + shuffle chunks then allocate nothing)."""
        if scratch and self._inflate_plan is not None:
            return self._decode_into_scratch(data, shape)
        buffer = data
        if self._compressor is not None:
            buffer = self._compressor.decode(buffer)
        for codec in reversed(self._filters):
            buffer = codec.decode(buffer)
        array = ensure_ndarray_like(buffer)
        if self.dtype != object:
            expected = math.prod(shape) * self.dtype.itemsize
            if not array.dtype.hasobject and array.nbytes != expected:
                # a corrupt chunk of an irregular (unsized) grid
                raise ChunkDecodeError(f"array {self.array!r}: a chunk of shape {shape} "
                                       f"decoded to {array.nbytes} bytes, not {expected}: "
                                       "the source or the sidecar is corrupt")
            array = array.view(self.dtype)
        return array.reshape(shape, order=self.order)

    def filled(self, shape: tuple[int, ...]) -> np.ndarray:
        """An array of ``shape`` holding the fill value."""
        return np.full(shape, self.fill_value, dtype=self.dtype)

    def _decode_into_scratch(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        chunk_bytes, shuffle = self._inflate_plan
        inflated, shuffled = _scratch(chunk_bytes)
        try:
            filled = inflate_into(data, inflated)
        except (zlib.error, ValueError) as exc:
            raise ChunkDecodeError(decode_problem(self.array, "zlib", str(exc))) from None
        if filled.nbytes != chunk_bytes:
            raise ChunkDecodeError(decode_problem(
                self.array, "zlib", f"it decodes to {filled.nbytes} bytes, a chunk of this "
                                    f"array has {chunk_bytes}"))
        decoded = shuffle.decode(inflated, out=shuffled) if shuffle is not None else inflated
        return decoded.view(self.dtype).reshape(shape, order=self.order)


def _inflate_plan(zarray: dict, dtype: np.dtype) -> tuple[int, object] | None:
    """``(chunk bytes, shuffle codec or None)`` when ``zarray``'s chunks are zlib, optionally
    after a byte shuffle, of a fixed-size dtype: what ``ChunkCodec`` can decode into scratch
    buffers; else None."""
    compressor = zarray.get("compressor")
    # Encoding order (HDF5 pipelines often name no compressor: zlib is the last filter).
    steps = [*(zarray.get("filters") or ()), *([compressor] if compressor else [])]
    if dtype.kind == "O" or not 1 <= len(steps) <= 2 or not all(
            isinstance(step, dict) for step in steps) or steps[-1].get("id") != "zlib":
        return None
    shuffle = None
    if len(steps) == 2:
        if steps[0].get("id") != "shuffle":
            return None
        shuffle = numcodecs.get_codec(dict(steps[0]))
    chunk_bytes = int(np.prod(zarray["chunks"], dtype=np.int64)) * dtype.itemsize
    return (chunk_bytes, shuffle) if chunk_bytes else None


_SCRATCH = threading.local()


def _scratch(nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """This thread's two scratch buffers of ``nbytes`` (grown, never shrunk below 4 MiB)."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None or buffers[0].nbytes < nbytes:
        size = max(nbytes, 1 << 22)
        buffers = _SCRATCH.buffers = (np.empty(size, np.uint8), np.empty(size, np.uint8))
    return buffers[0][:nbytes], buffers[1][:nbytes]


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
    strides = [1] * len(per_axis)  # C order; plain arithmetic, per chunk of a large region
    for axis in range(len(per_axis) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * grid.counts[axis + 1]
    pieces = []
    for combo in itertools.product(*per_axis):
        coords = tuple(c for c, _, _ in combo)
        flat = sum(c * stride for c, stride in zip(coords, strides, strict=True))
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


class RegionRead:
    """Reading one region: the chunks it overlaps, which of them must still be fetched
    (``missing``: not absent, not inline, not in the cache), and — once they are —
    ``finish`` decodes and places them. Synchronous: callers choose where it runs."""

    def __init__(self, node: ArrayNode, region: tuple[slice, ...],
                 cache: DecodedChunks | None = None, codec: ChunkCodec | None = None) -> None:
        self.node, self.region, self.cache = node, region, cache
        self.keep = True  # False: a bulk read, whose decoded chunks the cache does not keep
        self.codec = codec or codec_for(node.zarray, array=node.path)
        self.grid = node.chunk_grid
        self.pieces = pieces_of(self.grid, region)
        self.refs = {piece.flat: node.chunks.get(piece.flat) for piece in self.pieces}
        self.decoded: dict[int, np.ndarray] = {}
        self.wanted: dict[int, ChunkRef] = {}
        for flat, ref in self.refs.items():
            if ref.source == ABSENT:
                continue
            hit = cache.get((node.path, flat)) if cache is not None else None
            if hit is not None:
                self.decoded[flat] = hit
            else:
                self.wanted[flat] = ref
        self.missing_flats = [flat for flat, ref in self.wanted.items() if ref.source != INLINE]
        self.missing = [self.wanted[flat] for flat in self.missing_flats]
        self._pieces = {piece.flat: piece for piece in self.pieces}

    @property
    def empty(self) -> bool:
        """Whether every chunk of the region is absent (readers see the fill value)."""
        return all(ref.source == ABSENT for ref in self.refs.values())

    def finish(self, fetched: list[bytes], out: np.ndarray | None = None) -> np.ndarray:
        """The region's elements, given the bytes of ``missing`` (in order); into ``out``
        when given (filled with the fill value where no chunk lands)."""
        out = self.start(out)
        self.place(list(self.missing_flats), fetched, out)
        return out

    def start(self, out: np.ndarray | None = None) -> np.ndarray:
        """``out`` (made when not given) with every chunk placed that needs no fetch: absent
        ones as the fill value, cached and inline ones decoded."""
        if out is None:
            out = np.empty(tuple(s.stop - s.start for s in self.region), self.codec.dtype)
        inline = [flat for flat, ref in self.wanted.items() if ref.source == INLINE]
        for piece in self.pieces:
            if piece.flat not in self.wanted:
                chunk = self.decoded.get(piece.flat)
                out[piece.target] = (self.codec.fill_value if chunk is None
                                     else chunk[piece.source])
        self.place(inline, [self.wanted[flat].data for flat in inline], out)
        return out

    def place(self, flats: list[int], stored: list[bytes], out: np.ndarray) -> None:
        """Decode the chunks ``flats`` from their ``stored`` bytes into ``out``, each as soon
        as it is decoded (none kept beyond the cache), in parallel when they are many bytes
        (``refindex.decode_pool``)."""
        todo = [(self._pieces[flat], data) for flat, data in zip(flats, stored, strict=True)]

        def place(batch: list[tuple[Piece, bytes]]) -> None:
            for piece, data in batch:
                caching = self.cache is not None and self.keep
                chunk = self.codec.decode(data, self.grid.stored_shape(piece.coords),
                                          scratch=not caching)
                if caching:
                    self.cache.put((self.node.path, piece.flat), chunk)
                out[piece.target] = chunk[piece.source]

        chunk_bytes = int(np.prod(self.node.zarray["chunks"], dtype=np.int64)) \
            * self.codec.dtype.itemsize
        in_parallel(place, todo, sum(len(data) for _, data in todo), chunk_bytes)

    def batches(self, limit: int) -> list[tuple[list[int], list[ChunkRef]]]:
        """``missing`` (and their flat indices) in runs of at most ``limit`` stored bytes
        (at least one chunk each)."""
        runs: list[tuple[list[int], list[ChunkRef]]] = []
        size = 0
        for flat, ref in zip(self.missing_flats, self.missing, strict=True):
            length = max(ref.length, 0)  # whole-object references: length unknown
            if not runs or size + length > limit:
                runs.append(([], []))
                size = 0
            runs[-1][0].append(flat)
            runs[-1][1].append(ref)
            size += length
        return runs


# Stored bytes fetched at once by a region read: the next run is fetched while this one
# decodes, so that at most two runs of compressed bytes are held beside the result.
FETCH_RUN_BYTES = 32 * 1024 * 1024
# Runs fetched ahead of the one decoding when the sources are remote (``read_region``).
REMOTE_RUNS_AHEAD = 2


async def read_region(node: ArrayNode, region: tuple[slice, ...], fetch: Fetch,
                      cache: DecodedChunks | None = None, codec: ChunkCodec | None = None,
                      out: np.ndarray | None = None, ahead: int = 1) -> np.ndarray | None:
    """The elements of ``node`` in ``region`` (a slice of steps 1 per axis), into ``out``
    when given (see ``RegionRead.finish``); chunks are decoded off the event loop, large
    regions in runs of ``FETCH_RUN_BYTES``, each decoded while the next ``ahead`` runs are
    fetched (1 for local files; remote sources want more, so that the link never idles
    between runs). None when every chunk it overlaps is absent and no ``out`` was given
    (readers see the fill value)."""
    read = RegionRead(node, region, cache, codec)
    if out is None and read.empty:
        return None
    runs = read.batches(FETCH_RUN_BYTES)
    if len(runs) <= 1:
        fetched = await fetch(read.missing, read.missing_flats) if read.missing else []
        if len(read.wanted) > 1:
            return await asyncio.to_thread(read.finish, fetched, out)
        return read.finish(fetched, out)
    # A read of several runs is a bulk read: neither its stored bytes nor its decoded chunks
    # go to the caches, which it would only flush (peak memory: the result and 1 + ``ahead``
    # runs of stored bytes).
    read.keep = False
    out = await asyncio.to_thread(read.start, out)
    pending: list[asyncio.Future] = []

    def fetch_next() -> None:
        number = len(pending)
        if number < len(runs):
            flats, refs = runs[number]
            pending.append(asyncio.ensure_future(fetch(refs, flats, keep=False)))

    for _ in range(max(1, ahead)):
        fetch_next()
    try:
        for i, (flats, _) in enumerate(runs):
            stored = await pending[i]
            pending[i] = None  # the run's bytes go with ``stored``
            fetch_next()
            await asyncio.to_thread(read.place, flats, stored, out)
            del stored
    finally:
        for future in pending:
            if future is not None and not future.done():
                future.cancel()
    return out


def read_arrays(wanted: list[tuple[Index, str]], engine) -> list[np.ndarray]:
    """All values of each array ``(index, path)``: those stored in the index decoded here,
    the others fetched together through ``engine`` (on refindex's I/O loop)."""
    from refindex.io.loop import run_sync

    reads = [RegionRead(index.arrays[path], _whole(index.arrays[path])) for index, path in wanted]
    missing = [(i, read) for i, read in enumerate(reads) if read.missing]
    data: list[list[bytes]] = [[] for _ in reads]
    if missing:
        async def fetch_all() -> list[list[bytes]]:
            return await asyncio.gather(*(engine_fetch(wanted[i][0], engine)(read.missing)
                                          for i, read in missing))

        for (i, _), chunks in zip(missing, run_sync(fetch_all()), strict=True):
            data[i] = chunks
    return [read.finish(chunks) for read, chunks in zip(reads, data, strict=True)]


def region_readable(node: ArrayNode) -> bool:
    """Whether the region reader gives exactly what zarr gives for regular ``node``: chunks of
    a fixed-size dtype (numbers, fixed-length strings, records), whose decoded bytes are the
    values. Object arrays are built by zarr's object codecs: zarr reads them."""
    dtype = node.zarray.get("dtype")
    return not (isinstance(dtype, str) and dtype.endswith("O")) and not node.irregular


def _whole(node: ArrayNode) -> tuple[slice, ...]:
    return tuple(slice(0, int(n)) for n in node.zarray["shape"])
