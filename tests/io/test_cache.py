"""Caches of fetched ranges: memory LRU by byte budget, on-disk cache across engines, never
the bytes of another version of a source, and concurrent reads of a range fetching it once."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.io.cache import DiskCache, MemoryCache, cache_key

FAST = ReadOptions(retries=0)


def key(offset: int, length: int = 10, etag: str | None = '"e"') -> tuple:
    return cache_key(RangeRequest("s3://b/k", offset, length, etag=etag))


def gets(http_server) -> int:
    """Range GETs the server answered, but the resolver's first-contact probe."""
    return sum(1 for method, _, rng in http_server.log if method == "GET" and rng != "bytes=0-0")


# --- memory ---------------------------------------------------------------------------------


def test_memory_cache_evicts_least_recently_used_beyond_its_budget():
    cache = MemoryCache(budget=25)
    cache.put(key(0), b"a" * 10)
    cache.put(key(10), b"b" * 10)
    assert cache.get(key(0)) == b"a" * 10  # now the most recently used
    cache.put(key(20), b"c" * 10)
    assert cache.get(key(10)) is None
    assert cache.get(key(0)) is not None and cache.get(key(20)) is not None
    assert cache.size == 20


def test_memory_cache_skips_entries_larger_than_its_budget():
    cache = MemoryCache(budget=5)
    cache.put(key(0), b"123456")
    assert len(cache) == 0 and cache.size == 0


def test_a_repeated_read_is_answered_from_memory(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST)
    request = RangeRequest(url, 100, 50)
    assert engine.read_sync([request]) == engine.read_sync([request]) == [payload[100:150]]
    assert gets(http_server) == 1
    counts = engine.stats.by_scheme()["http"]
    assert (counts.memory_hits, counts.memory_misses, counts.fetches) == (1, 1, 1)


def test_cache_size_zero_disables_the_cache(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST.replace(cache_size=0))
    request = RangeRequest(url, 100, 50)
    engine.read_sync([request])
    engine.read_sync([request])
    assert gets(http_server) == 2
    assert engine.stats.cache_hits == 0


def test_another_etag_is_another_entry(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST)
    etag = engine.info_sync(url).etag
    engine.read_sync([RangeRequest(url, 0, 10, etag=etag)])
    http_server.put("data.bin", payload[::-1])  # overwritten: a new ETag
    new_etag = engine.info_sync(url).etag
    assert engine.read_sync([RangeRequest(url, 0, 10, etag=new_etag)]) == [payload[::-1][:10]]
    assert gets(http_server) == 2


def test_concurrent_reads_of_a_range_fetch_it_once(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.delay_seconds = 0.05
    engine = ReadEngine(FAST)

    async def twice() -> list[list[bytes]]:
        first = asyncio.ensure_future(engine.read([RangeRequest(url, 0, 100)]))
        await asyncio.sleep(0.01)  # the first is on the wire now
        return [await engine.read([RangeRequest(url, 0, 100)]), await first]

    assert asyncio.run(twice()) == [[payload[:100]]] * 2
    assert gets(http_server) == 1
    assert engine.stats.total("joined") == 1


def test_a_read_that_joined_a_failed_fetch_fetches_itself(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.delay_seconds = 0.05
    http_server.fail_next(1, 500)
    engine = ReadEngine(FAST)

    async def twice():
        first = asyncio.ensure_future(engine.read([RangeRequest(url, 0, 100)]))
        await asyncio.sleep(0.01)
        second = await engine.read([RangeRequest(url, 0, 100)])
        return second, await asyncio.gather(first, return_exceptions=True)

    second, (first,) = asyncio.run(twice())
    assert second == [payload[:100]]
    assert isinstance(first, Exception)


# --- disk -----------------------------------------------------------------------------------


def test_disk_cache_serves_a_new_engine(http_server, payload, tmp_path):
    url = http_server.put("data.bin", payload)
    options = FAST.replace(disk_cache=str(tmp_path / "cache"))
    etag = ReadEngine(options).info_sync(url).etag
    request = RangeRequest(url, 1000, 500, etag=etag, size=len(payload))
    assert ReadEngine(options).read_sync([request]) == [payload[1000:1500]]
    later = ReadEngine(options)  # a new session: an empty memory cache
    assert later.read_sync([request]) == [payload[1000:1500]]
    assert gets(http_server) == 1
    counts = later.stats.by_scheme()["http"]
    assert (counts.disk_hits, counts.fetches) == (1, 0)


def test_disk_cache_misses_when_the_etag_changed(http_server, payload, tmp_path):
    url = http_server.put("data.bin", payload)
    options = FAST.replace(disk_cache=str(tmp_path / "cache"))
    first = ReadEngine(options)
    etag = first.info_sync(url).etag
    first.read_sync([RangeRequest(url, 0, 10, etag=etag, size=len(payload))])
    http_server.put("data.bin", payload[::-1])  # same size, new content and ETag
    new_etag = first.info_sync(url).etag
    fresh = ReadEngine(options)
    request = RangeRequest(url, 0, 10, etag=new_etag, size=len(payload))
    assert fresh.read_sync([request]) == [payload[::-1][:10]]
    assert fresh.stats.total("disk_misses") == 1


def test_ranges_without_identity_are_not_written_to_disk(http_server, payload, tmp_path):
    url = http_server.put("data.bin", payload)
    folder = tmp_path / "cache"
    ReadEngine(FAST.replace(disk_cache=str(folder))).read_sync([RangeRequest(url, 0, 10)])
    assert not folder.exists() or not any(folder.rglob("*.range"))


def test_disk_cache_evicts_least_recently_used_beyond_its_budget(tmp_path):
    cache = DiskCache(tmp_path, budget=100)
    for offset in range(4):
        cache.put(key(offset * 10, 30), bytes([offset]) * 30)
        old = time.time() - 100 + offset  # distinct ages, oldest first
        os.utime(cache.path(key(offset * 10, 30)), (old, old))
        if offset == 2:
            assert cache.get(key(0, 30)) is not None  # a hit renews the oldest
    assert cache.get(key(10, 30)) is None  # the least recently used went
    assert cache.get(key(0, 30)) == bytes([0]) * 30
    assert cache.get(key(30, 30)) == bytes([3]) * 30
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.range")) <= 100


def test_a_damaged_disk_entry_is_a_miss(tmp_path):
    cache = DiskCache(tmp_path, budget=1000)
    cache.put(key(0, 30), b"x" * 30)
    with open(cache.path(key(0, 30)), "wb") as f:
        f.write(b"x" * 12)  # truncated behind our back
    assert cache.get(key(0, 30)) is None


def test_an_unwritable_disk_cache_does_not_fail_reads(http_server, payload, tmp_path):
    url = http_server.put("data.bin", payload)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")  # the cache directory cannot be made inside a file
    engine = ReadEngine(FAST.replace(disk_cache=str(blocker / "cache")))
    with pytest.warns(UserWarning, match="disk cache"):
        assert engine.read_sync([RangeRequest(url, 0, 10, size=len(payload))]) == [payload[:10]]
