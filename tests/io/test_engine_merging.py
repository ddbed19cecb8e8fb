"""ReadEngine with the planner: merged and split requests on the wire, exact bytes to each
caller, errors naming the caller's range, and zarr reading 1,024 small chunks in few requests."""

from __future__ import annotations

import asyncio

import h5py
import numpy as np
import pytest
import zarr

import refindex
from refindex.errors import FetchError, SourceNotFoundError
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from tests.roundtrip import scan_to_sidecar

FAST = ReadOptions(retries=0, cache_size=0)


def wire_ranges(http_server) -> list[str | None]:
    """The Range headers of the GETs the server saw, but the resolver's first-contact probe
    of each source (``bytes=0-0``)."""
    return [rng for method, _, rng in http_server.log if method == "GET" and rng != "bytes=0-0"]


def test_adjacent_ranges_become_one_request(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST)
    requests = [RangeRequest(url, offset, 100) for offset in range(0, 1000, 100)]
    assert engine.read_sync(requests) == [payload[o : o + 100] for o in range(0, 1000, 100)]
    assert wire_ranges(http_server) == ["bytes=0-999"]
    counts = engine.stats.by_scheme()["http"]
    assert (counts.requests, counts.fetches, counts.merged) == (10, 1, 9)
    assert (counts.bytes, counts.bytes_fetched) == (1000, 1000)


def test_gaps_up_to_max_gap_are_read_through(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST.replace(max_gap=50))
    requests = [RangeRequest(url, 0, 10), RangeRequest(url, 60, 10), RangeRequest(url, 200, 10)]
    assert engine.read_sync(requests) == [payload[0:10], payload[60:70], payload[200:210]]
    assert wire_ranges(http_server) == ["bytes=0-69", "bytes=200-209"]
    assert (engine.stats.bytes, engine.stats.bytes_fetched) == (30, 80)


def test_requests_stay_within_max_request(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST.replace(max_request=300))
    requests = [RangeRequest(url, offset, 100) for offset in range(0, 1000, 100)]
    assert engine.read_sync(requests) == [payload[o : o + 100] for o in range(0, 1000, 100)]
    assert sorted(wire_ranges(http_server)) == sorted(
        ["bytes=0-299", "bytes=300-599", "bytes=600-899", "bytes=900-999"])


def test_a_large_range_is_split_into_parallel_requests(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.delay_seconds = 0.05
    engine = ReadEngine(FAST.replace(split_size=100 * 1024))
    assert engine.read_sync([RangeRequest(url, 10, len(payload) - 10)]) == [payload[10:]]
    bounds = [10 + (len(payload) - 10) * k // 3 for k in range(4)]
    assert sorted(wire_ranges(http_server)) == sorted(
        f"bytes={a}-{b - 1}" for a, b in zip(bounds, bounds[1:], strict=False))
    assert http_server.max_in_flight > 1  # in parallel
    assert engine.stats.by_scheme()["http"].split == 2


def test_different_sources_are_never_merged(http_server, payload):
    first = http_server.put("a.bin", payload)
    second = http_server.put("b.bin", payload[::-1])
    engine = ReadEngine(FAST)
    requests = [RangeRequest(first, 0, 10), RangeRequest(second, 10, 10)]
    assert engine.read_sync(requests) == [payload[:10], payload[::-1][10:20]]
    assert len(wire_ranges(http_server)) == 2


def test_whole_object_reads_are_not_merged_with_ranges(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST)
    requests = [RangeRequest(url, 0, -1), RangeRequest(url, 0, 10)]
    assert engine.read_sync(requests) == [payload, payload[:10]]
    assert sorted(map(str, wire_ranges(http_server))) == ["None", "bytes=0-9"]


def test_error_of_a_merged_request_names_the_callers_range(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.fail_next(1, 500)
    engine = ReadEngine(FAST)
    requests = [RangeRequest(url, 100, 10), RangeRequest(url, 110, 10)]
    with pytest.raises(FetchError) as raised:
        engine.read_sync(requests)
    message = str(raised.value)
    assert f"{url} bytes [100, 110)" in message  # the caller's range
    assert "bytes [100, 120)" in message  # the request that failed
    assert "1 more" in message


def test_a_range_past_the_end_fails_alone_not_the_ranges_merged_with_it(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST)
    size = len(payload)
    requests = [RangeRequest(url, size - 20, 10), RangeRequest(url, size - 10, 20)]
    with pytest.raises(FetchError, match=rf"bytes \[{size - 10}, {size + 10}\): range runs past"):
        engine.read_sync(requests)
    seen: dict[int, object] = {}

    async def read() -> None:
        await engine.read(requests, on_ready=seen.__setitem__)

    with pytest.raises(FetchError):
        asyncio.run(read())
    assert seen[0] == payload[-20:-10]
    assert isinstance(seen[1], FetchError) and f"{size - 10}, {size + 10})" in str(seen[1])


def test_on_ready_gets_each_result_and_reads_go_on_after_a_failure(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(FAST)
    requests = [RangeRequest(http_server.url("absent.bin"), 0, 5), RangeRequest(url, 0, 5),
                RangeRequest(url, 5, 0)]
    seen: dict[int, object] = {}

    async def read() -> None:
        await engine.read(requests, on_ready=seen.__setitem__)

    with pytest.raises(SourceNotFoundError):
        asyncio.run(read())
    assert isinstance(seen[0], SourceNotFoundError)
    assert seen[1] == payload[:5]
    assert seen[2] == b""


# --- zarr over the store: 1,024 contiguous small chunks -----------------------------------


@pytest.fixture(scope="module")
def plane_file(tmp_path_factory):
    """(path, values): one 1,024 × 360 float32 array in 1,024 chunks of one row (1.4 KB),
    uncompressed, contiguous in the file."""
    path = tmp_path_factory.mktemp("plane") / "plane.h5"
    values = np.random.default_rng(5).random((1024, 360)).astype("f4")
    with h5py.File(path, "w") as f:
        f.create_dataset("tas", data=values, chunks=(1, 360))
    return path, values


def read_through_zarr(sidecar, concurrency: int | None = None, **options):
    store = refindex.open_store(sidecar, **options)
    settings = {} if concurrency is None else {"async.concurrency": concurrency}
    with zarr.config.set(settings):
        values = zarr.open_group(store, mode="r", zarr_format=2)["tas"][...]
    return values, store.engine.stats


@pytest.mark.parametrize("concurrency", [None, 10], ids=["refindex-concurrency", "zarr-10"])
def test_zarr_reads_1024_chunks_over_http_in_few_requests(http_server, plane_file, tmp_path,
                                                          concurrency):
    path, expected = plane_file
    sidecar = scan_to_sidecar(http_server.put(path.name, path.read_bytes()), tmp_path)
    http_server.log.clear()
    values, stats = read_through_zarr(sidecar, concurrency)
    assert values.tobytes() == h5py.File(path)["tas"][...].tobytes() == expected.tobytes()
    assert stats.fetches == len(wire_ranges(http_server)) <= 1024 // 8


@pytest.mark.parametrize("concurrency", [None, 10], ids=["refindex-concurrency", "zarr-10"])
def test_zarr_reads_1024_chunks_from_s3_in_few_requests(s3_env, s3_bucket, plane_file,
                                                        tmp_path, concurrency):
    path, expected = plane_file
    sidecar = scan_to_sidecar(s3_env.upload(path, s3_bucket, path.name), tmp_path)
    values, stats = read_through_zarr(sidecar, concurrency)
    assert values.tobytes() == expected.tobytes()
    assert stats.fetches <= 1024 // 8
    assert stats.by_scheme()["s3"].requests >= 1024


def test_without_planning_each_chunk_is_a_request(http_server, plane_file, tmp_path):
    """The reference point: no merging, no cache, so no read-ahead either."""
    path, expected = plane_file
    sidecar = scan_to_sidecar(http_server.put(path.name, path.read_bytes()), tmp_path)
    http_server.log.clear()
    store = refindex.open_store(sidecar, max_request=1, cache_size=0)
    values = zarr.open_group(store, mode="r", zarr_format=2)["tas"][:64]
    assert values.tobytes() == expected[:64].tobytes()
    assert len(wire_ranges(http_server)) == store.engine.stats.fetches == 64
