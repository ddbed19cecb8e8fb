"""Caches of fetched ranges: an LRU in memory with a byte budget, and an optional one on disk.

An entry's key is the range *and the identity of the source version* it was read from (URL,
ETag, size, offset, length), so a cache never answers with the bytes of another version of an
object: a changed ETag or size is a different key, hence a miss. Ranges of sources without any
identity are kept in memory for the session but never written to disk, where a later session
could not tell whether the object changed since.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Sequence

from refindex.io.options import ReadOptions
from refindex.io.plan import SourceKey, source_of
from refindex.io.requests import RangeRequest
from refindex.io.stats import ReadStats
from refindex.io.urls import scheme_of

CacheKey = tuple[SourceKey, int, int]
"""(source version, offset, length) of a cached range; see ``plan.source_of``."""

_DISK_SUFFIX = ".range"
_DISK_LOW_WATER = 0.9  # evict down to this share of the budget, so eviction is not per write


def cache_key(request: RangeRequest) -> CacheKey:
    """The key of ``request``'s bytes: its range and its source's identity."""
    return (source_of(request), request.offset, request.length)


class MemoryCache:
    """Thread-safe LRU of bytes with a budget in bytes; entries larger than it are not kept."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> bytes | None:
        """The bytes stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
            return data

    def put(self, key: CacheKey, data: bytes) -> None:
        """Store ``data``, evicting the least recently used entries beyond the budget."""
        if len(data) > self.budget:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= len(old)
            self._entries[key] = data
            self.size += len(data)
            while self.size > self.budget:
                _, evicted = self._entries.popitem(last=False)
                self.size -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


class DiskCache:
    """Ranges as files in ``directory``, named by a hash of their key, written atomically and
    evicted least-recently-used first (by modification time, renewed on every hit) once they
    pass ``budget`` bytes. Safe to share between processes. Blocking: call it off the loop."""

    def __init__(self, directory: str | os.PathLike, budget: int) -> None:
        self.directory = os.fspath(directory)
        self.budget = budget
        self._size: int | None = None  # bytes on disk, counted on first write
        self._lock = threading.Lock()

    def path(self, key: CacheKey) -> str:
        """The file that holds ``key``'s bytes (whether or not it exists)."""
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        return os.path.join(self.directory, digest[:2], digest + _DISK_SUFFIX)

    def get(self, key: CacheKey) -> bytes | None:
        """The bytes stored under ``key``, or None (also for a damaged entry)."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
            os.utime(path)  # a hit makes the entry the most recently used
        except OSError:
            return None
        (_, _, size, _), _, length = key
        expected = size if length == -1 else length
        return data if expected is None or len(data) == expected else None

    def put(self, key: CacheKey, data: bytes) -> None:
        """Store ``data`` under ``key`` (atomically: readers see all of it or nothing)."""
        if len(data) > self.budget:
            return
        path = self.path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        with self._lock:
            if self._size is None:
                self._size = sum(size for _, size, _ in self._entries())
            else:
                self._size += len(data)
            over = self._size > self.budget
        if over:
            self.evict()

    def evict(self) -> None:
        """Delete least recently used entries until the cache is within its budget."""
        entries = sorted(self._entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        target = self.budget * _DISK_LOW_WATER
        for path, size, _ in entries:
            if total <= target:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size
        with self._lock:
            self._size = total

    def _entries(self) -> list[tuple[str, int, float]]:
        """(path, bytes, mtime) of every entry on disk."""
        found = []
        with contextlib.suppress(OSError), os.scandir(self.directory) as folders:
            for folder in folders:
                if not folder.is_dir():
                    continue
                with contextlib.suppress(OSError), os.scandir(folder.path) as files:
                    for entry in files:
                        if entry.name.endswith(_DISK_SUFFIX):
                            with contextlib.suppress(OSError):
                                status = entry.stat()
                                found.append((entry.path, status.st_size, status.st_mtime))
        return found


class RangeCache:
    """The engine's cache: memory first, then disk; counts hits and misses in ``stats``."""

    def __init__(self, options: ReadOptions, stats: ReadStats) -> None:
        self._stats = stats
        self.memory = MemoryCache(options.cache_size) if options.cache_size > 0 else None
        self.disk = (
            DiskCache(options.disk_cache, options.disk_cache_size)
            if options.disk_cache and options.disk_cache_size > 0
            else None
        )

    @property
    def enabled(self) -> bool:
        """True if either cache is on."""
        return self.memory is not None or self.disk is not None

    async def get_many(self, requests: Sequence[RangeRequest]) -> list[bytes | None]:
        """The cached bytes of each request, None where neither cache has them."""
        found: list[bytes | None] = [None] * len(requests)
        if self.memory is not None:
            for i, request in enumerate(requests):
                found[i] = self.memory.get(cache_key(request))
                self._count(request, "memory_hits" if found[i] is not None else "memory_misses")
        disk = self.disk
        if disk is None:
            return found
        asked = [i for i, data in enumerate(found) if data is None and _on_disk(requests[i])]
        if not asked:
            return found
        keys = [cache_key(requests[i]) for i in asked]
        loaded = await asyncio.to_thread(lambda: [disk.get(key) for key in keys])
        for i, data in zip(asked, loaded, strict=True):
            self._count(requests[i], "disk_hits" if data is not None else "disk_misses")
            if data is not None:
                found[i] = data
                if self.memory is not None:
                    self.memory.put(cache_key(requests[i]), data)
        return found

    def put_memory(self, request: RangeRequest, data: bytes) -> None:
        """Remember ``request``'s bytes in memory (if the memory cache is on)."""
        if self.memory is not None:
            self.memory.put(cache_key(request), data)

    async def put_disk(self, items: Sequence[tuple[RangeRequest, bytes]]) -> None:
        """Write the ranges that may go to disk (sources with an identity) to the disk cache."""
        disk = self.disk
        if disk is None:
            return
        kept = [(cache_key(request), data) for request, data in items if _on_disk(request)]
        if kept:
            await asyncio.to_thread(_put_all, disk, kept)

    def _count(self, request: RangeRequest, counter: str) -> None:
        self._stats.add(scheme_of(request.url), **{counter: 1})


class InFlight:
    """The ranges being fetched on each event loop, so that a second read of a range waits
    for the first one's bytes instead of fetching them again (read-ahead relies on it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[CacheKey, asyncio.Future]
        ] = weakref.WeakKeyDictionary()

    def claim(
        self, requests: Sequence[RangeRequest], indices: list[int]
    ) -> tuple[dict[int, asyncio.Future], list[tuple[int, asyncio.Future]]]:
        """Split ``indices`` into those the caller must fetch, now registered as in flight
        (``settle`` each with its future), and those already in flight, with the future of
        their bytes (which gives None if that fetch failed)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pending = self._by_loop.setdefault(loop, {})
        mine: dict[int, asyncio.Future] = {}
        waiting: list[tuple[int, asyncio.Future]] = []
        for i in indices:
            key = cache_key(requests[i])
            future = pending.get(key)
            if future is None:
                mine[i] = pending[key] = loop.create_future()
            else:
                waiting.append((i, future))
        return mine, waiting

    def settle(self, request: RangeRequest, future: asyncio.Future, data: bytes | None) -> None:
        """The fetch ``claim`` gave ``future`` for ended: ``request``'s bytes, or None if it
        failed or was abandoned."""
        pending = self._by_loop.get(asyncio.get_running_loop())
        key = cache_key(request)
        if pending is not None and pending.get(key) is future:
            del pending[key]
        if not future.done():
            future.set_result(data)


def _put_all(disk: DiskCache, items: list[tuple[CacheKey, bytes]]) -> None:
    # A cache that cannot be written (disk full, read-only) must not fail the read it caches.
    try:
        for key, data in items:
            disk.put(key, data)
    except OSError as error:
        warnings.warn(f"refindex disk cache {disk.directory}: {error}", stacklevel=2)


def _on_disk(request: RangeRequest) -> bool:
    """Only versions a later session can recognise go to disk; local files never do (they
    are a local read already)."""
    has_identity = any(x is not None for x in (request.etag, request.size, request.last_modified))
    return has_identity and scheme_of(request.url) != "file"
