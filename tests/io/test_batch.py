"""ReadBatcher: concurrent reads on one loop become one engine read; a lone read is not held
back; loops never mix; one caller's failure is its own."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import pytest

from refindex.errors import SourceNotFoundError, SourcePolicyError
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.io.batch import ReadBatcher

OPTIONS = ReadOptions(retries=0, cache_size=0)


class RecordingEngine(ReadEngine):
    """A ReadEngine that remembers the requests of each ``read`` and the loop it ran on."""

    def __init__(self, options: ReadOptions = OPTIONS) -> None:
        super().__init__(options)
        self.calls: list[tuple[asyncio.AbstractEventLoop, list[RangeRequest]]] = []

    async def read(self, requests, *, on_ready=None):
        self.calls.append((asyncio.get_running_loop(), list(requests)))
        return await super().read(requests, on_ready=on_ready)


@pytest.fixture
def data_file(tmp_path, payload):
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    return str(path)


def test_concurrent_reads_make_one_engine_read(data_file, payload):
    engine = RecordingEngine()
    batcher = ReadBatcher(engine)

    async def many() -> list[list[bytes]]:
        return await asyncio.gather(*(
            batcher.read([RangeRequest(data_file, k * 100, 100)]) for k in range(20)))

    results = asyncio.run(many())
    assert results == [[payload[k * 100 : (k + 1) * 100]] for k in range(20)]
    assert len(engine.calls) == 1 and len(engine.calls[0][1]) == 20
    assert engine.stats.fetches == 1


def test_reads_released_together_join_one_batch(data_file, payload):
    """Tasks that start one loop round later (as zarr's semaphore releases them) still join."""
    engine = RecordingEngine()
    batcher = ReadBatcher(engine)

    async def late(k: int) -> list[bytes]:
        await asyncio.sleep(0)
        return await batcher.read([RangeRequest(data_file, k, 1)])

    async def mixed() -> list[list[bytes]]:
        return await asyncio.gather(*(
            late(k) if k % 2 else batcher.read([RangeRequest(data_file, k, 1)])
            for k in range(10)))

    assert asyncio.run(mixed()) == [[payload[k : k + 1]] for k in range(10)]
    assert len(engine.calls) == 1


def test_a_lone_read_is_not_held_back(data_file):
    """Batching adds microseconds to a read that has no company, not a timer's wait."""
    engine = ReadEngine(OPTIONS)
    batcher = ReadBatcher(engine)

    async def timings() -> tuple[float, float]:
        direct, batched = [], []
        for k in range(200):
            request = [RangeRequest(data_file, k, 10)]
            start = time.perf_counter()
            await engine.read(request)
            middle = time.perf_counter()
            await batcher.read(request)
            direct.append(middle - start)
            batched.append(time.perf_counter() - middle)
        return statistics.median(direct), statistics.median(batched)

    direct, batched = asyncio.run(timings())
    assert batched - direct < 0.002, (direct, batched)


def test_loops_never_share_a_batch(data_file):
    engine = RecordingEngine()
    batcher = ReadBatcher(engine)
    barrier = threading.Barrier(3)

    def run(offset: int) -> None:
        async def reads() -> None:
            barrier.wait()
            await asyncio.gather(*(
                batcher.read([RangeRequest(data_file, offset + k, 1)]) for k in range(10)))

        asyncio.run(reads())

    threads = [threading.Thread(target=run, args=(offset,)) for offset in (0, 1000, 2000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _, requests in engine.calls:
        assert len({request.offset // 1000 for request in requests}) == 1
    assert sum(len(requests) for _, requests in engine.calls) == 30


def test_a_failed_read_fails_only_its_caller(data_file, payload, tmp_path):
    batcher = ReadBatcher(RecordingEngine())
    missing = str(tmp_path / "missing.bin")

    async def both():
        return await asyncio.gather(
            batcher.read([RangeRequest(missing, 0, 4)]),
            batcher.read([RangeRequest(data_file, 0, 4)]),
            return_exceptions=True)

    failed, good = asyncio.run(both())
    assert isinstance(failed, SourceNotFoundError)
    assert good == [payload[:4]]
    assert len(batcher.engine.calls) == 1


def test_a_refused_source_fails_only_its_caller(data_file, payload):
    batcher = ReadBatcher(RecordingEngine())

    async def both():
        return await asyncio.gather(
            batcher.read([RangeRequest("gs://bucket/key", 0, 4)]),
            batcher.read([RangeRequest(data_file, 0, 4)]),
            return_exceptions=True)

    refused, good = asyncio.run(both())
    assert isinstance(refused, SourcePolicyError)
    assert good == [payload[:4]]


def test_a_cancelled_caller_does_not_disturb_the_batch(data_file, payload):
    batcher = ReadBatcher(ReadEngine(OPTIONS))

    async def one_cancelled():
        doomed = asyncio.ensure_future(batcher.read([RangeRequest(data_file, 0, 4)]))
        kept = asyncio.ensure_future(batcher.read([RangeRequest(data_file, 4, 4)]))
        await asyncio.sleep(0)
        doomed.cancel()
        return await kept

    assert asyncio.run(one_cancelled()) == [payload[4:8]]


def test_an_empty_read_reads_nothing():
    engine = RecordingEngine()
    assert asyncio.run(ReadBatcher(engine).read([])) == []
    assert engine.calls == []
