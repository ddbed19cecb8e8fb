"""ReadEngine as an object: pickling, event loops, the sync edge, failure handling."""

import asyncio
import multiprocessing
import pickle
import threading

import pytest

from refindex.errors import SourceNotFoundError, SourcePolicyError
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.io.loop import background_loop, run_sync


def _read_in_child(engine: ReadEngine, url: str) -> bytes:
    return engine.read_sync([RangeRequest(url, 0, 16)])[0]


def test_pickles_its_options_only(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(ReadOptions(retries=1))
    engine.read_sync([RangeRequest(url, 0, 4)])
    clone = pickle.loads(pickle.dumps(engine))
    assert clone.options == engine.options
    assert clone.stats.requests == 0
    assert clone.read_sync([RangeRequest(url, 0, 4)]) == [payload[:4]]
    engine.close_sync()
    clone.close_sync()


def test_works_in_a_fresh_spawned_process(s3_env, s3_server, s3_bucket, payload):
    url = s3_server.put_bytes(payload, s3_bucket, "data.bin")
    engine = ReadEngine(ReadOptions(retries=1))
    engine.read_sync([RangeRequest(url, 0, 4)])  # opens a session that must not travel
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_read_in_child, (engine, url)) == payload[:16]
    engine.close_sync()


def test_serves_several_event_loops(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine()

    async def read_then_close() -> bytes:
        data = await engine.read([RangeRequest(url, 1, 3)])
        await engine.close()
        return data[0]

    # Each asyncio.run makes a new loop; sessions from the last one must not be reused.
    assert asyncio.run(read_then_close()) == payload[1:4]
    assert asyncio.run(read_then_close()) == payload[1:4]
    assert engine.read_sync([RangeRequest(url, 1, 3)]) == [payload[1:4]]
    engine.close_sync()


def test_survives_a_loop_closed_without_close(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine()
    assert asyncio.run(engine.read([RangeRequest(url, 0, 2)])) == [payload[:2]]
    assert asyncio.run(engine.read([RangeRequest(url, 0, 2)])) == [payload[:2]]
    asyncio.run(engine.close())


def test_read_sync_works_inside_a_running_loop(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine()

    async def caller() -> list[bytes]:
        return engine.read_sync([RangeRequest(url, 0, 8)])

    assert asyncio.run(caller()) == [payload[:8]]
    engine.close_sync()


def test_read_sync_from_many_threads(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine()
    results: dict[int, bytes] = {}

    def work(index: int) -> None:
        results[index] = engine.read_sync([RangeRequest(url, index, 5)])[0]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {index: payload[index : index + 5] for index in range(8)}
    engine.close_sync()


def test_sync_call_on_the_io_loop_is_refused():
    async def nested() -> None:
        run_sync(asyncio.sleep(0))

    future = asyncio.run_coroutine_threadsafe(nested(), background_loop())
    with pytest.raises(RuntimeError, match="await the async method"):
        future.result(5)


def test_first_error_cancels_the_rest(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.delay_seconds = 0.05
    engine = ReadEngine(ReadOptions(max_concurrency=2))
    requests = [RangeRequest(http_server.url("absent.bin"), 0, 1)]
    requests += [RangeRequest(url, 0, 1)] * 20
    with pytest.raises(SourceNotFoundError):
        engine.read_sync(requests)
    assert len(http_server.log) < 10
    engine.close_sync()


def test_empty_request_list_reads_nothing():
    assert ReadEngine().read_sync([]) == []


def test_unsupported_scheme_is_a_policy_error():
    with pytest.raises(SourcePolicyError, match="gs://"):
        ReadEngine().read_sync([RangeRequest("gs://bucket/key", 0, 1)])
