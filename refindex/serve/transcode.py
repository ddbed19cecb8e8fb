"""Serving arrays to clients that cannot decode their codecs: each array's served ``.zarray``
(``plan_array``), and the re-encoding of its chunks (``Transcoder``): decoded with the
source's codecs (HDF5 filter pipelines, lzf, shuffle, fletcher32, ...) and encoded again with
one standard codec, off the event loop, in a bounded pool, with an LRU of results by bytes.

Browsers and viewers (zarrita, neuroglancer, vizarr) and the Zarr libraries of other
languages decode a v2 ``compressor`` of ``STANDARD_COMPRESSORS`` and no ``filters``; that is
what ``auto`` keeps as it is. A lone standard codec among the filters (HDF5's deflate) is
served as the compressor: the same bytes, said the way every reader understands.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numcodecs
import numpy as np

from refindex.assemble import codec_for
from refindex.errors import RefindexError

STANDARD_COMPRESSORS = frozenset({"zlib", "gzip", "blosc", "zstd", "lz4"})
TARGETS = {
    "raw": None,
    "gzip": {"id": "gzip", "level": 4},
    "zstd": {"id": "zstd", "level": 3},
    "blosc": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1},
}
"""The codec each transcoding mode encodes with (``auto`` uses gzip: every reader has it)."""


class TranscodeError(RefindexError):
    """A stored chunk could not be decoded (or re-encoded) as its array's codecs say."""


@dataclass(frozen=True)
class ArrayPlan:
    """How one array is served: ``source`` is its ``.zarray`` as the store reads it,
    ``served`` what clients are told; ``transcode`` whether chunks are re-encoded."""

    source: dict
    served: dict
    transcode: bool


def plan_array(zarray: dict, mode: str) -> ArrayPlan:
    """The plan of an array with ``.zarray`` ``zarray`` under transcoding ``mode``
    (``refindex.serve.config.TRANSCODE_MODES``). Arrays of objects (variable-length strings)
    are served as stored: no standard codec holds them."""
    normal = _normalised(zarray)
    if mode == "off" or zarray.get("dtype") == "|O":
        return ArrayPlan(zarray, normal, False)
    if mode == "auto":
        if is_standard(normal):
            return ArrayPlan(zarray, normal, False)
        mode = "gzip"
    target = _canonical(TARGETS[mode])
    if not normal.get("filters") and normal.get("compressor") == target:
        return ArrayPlan(zarray, normal, False)
    return ArrayPlan(zarray, {**zarray, "compressor": target, "filters": None}, True)


def is_standard(zarray: dict) -> bool:
    """Whether every Zarr reader decodes ``zarray``'s chunks: no filters, and no compressor
    or a standard one."""
    compressor = zarray.get("compressor")
    return not zarray.get("filters") and (
        compressor is None or compressor.get("id") in STANDARD_COMPRESSORS)


def _normalised(zarray: dict) -> dict:
    filters = zarray.get("filters") or []
    if (zarray.get("compressor") is None and len(filters) == 1
            and filters[0].get("id") in STANDARD_COMPRESSORS):
        return {**zarray, "compressor": dict(filters[0]), "filters": None}
    return zarray


def _canonical(config: dict | None) -> dict | None:
    return None if config is None else numcodecs.get_codec(dict(config)).get_config()


class Transcoder:
    """Re-encodes chunks as their plans say, in at most ``threads`` threads, keeping up to
    ``cache_size`` bytes of results; the same chunk asked twice at once is encoded once."""

    def __init__(self, threads: int, cache_size: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="refindex-transcode")
        self.cache = EncodedChunks(cache_size)
        self._running: dict[Hashable, asyncio.Future] = {}

    async def encoded(self, key: Hashable, plan: ArrayPlan, data: bytes) -> bytes:
        """``data`` (a stored chunk of ``plan``'s array) re-encoded as ``plan.served`` says;
        ``key`` names it in the cache."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future = asyncio.get_running_loop().run_in_executor(self.pool, transcode, plan, data)
        self._running[key] = future
        try:
            result = await asyncio.shield(future)
        except Exception as exc:  # a codec's own error: corrupt or mislabelled source bytes
            raise TranscodeError(f"{key}: cannot re-encode the chunk: {exc}") from exc
        finally:
            self._running.pop(key, None)
        self.cache.put(key, result)
        return result

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def transcode(plan: ArrayPlan, data: bytes) -> bytes:
    """A stored chunk of ``plan``'s array, decoded and encoded with ``plan.served``'s codec
    (the chunk's shape, dtype and memory order stay as they are)."""
    source = plan.source
    chunk = codec_for(source).decode(data, tuple(source["chunks"]))
    raw = np.asarray(chunk).tobytes(order=source.get("order") or "C")
    compressor = plan.served.get("compressor")
    if compressor is None:
        return raw
    if compressor["id"] == "gzip":
        # numcodecs stamps the time into the gzip header: the same chunk would differ between
        # encodings, and its ETag (strong: the same bytes) would lie.
        return gzip.compress(raw, compresslevel=compressor.get("level", 1), mtime=0)
    return bytes(numcodecs.get_codec(dict(compressor)).encode(raw))


class EncodedChunks:
    """A byte-bounded LRU of re-encoded chunks; counts its hits and misses."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._chunks: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            data = self._chunks.get(key)
            if data is None:
                self.misses += 1
                return None
            self._chunks.move_to_end(key)
            self.hits += 1
            return data

    def size_of(self, key: Hashable) -> int | None:
        """Bytes of ``key``'s chunk when it is held (neither a hit nor a miss)."""
        with self._lock:
            data = self._chunks.get(key)
            return None if data is None else len(data)

    def put(self, key: Hashable, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if key in self._chunks:
                return
            self._chunks[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, dropped = self._chunks.popitem(last=False)
                self._bytes -= len(dropped)

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._bytes
