"""ReadEngine over HTTP: exact ranges, validation, retries, timeouts, concurrency."""

import socket

import pytest

from refindex.errors import FetchError, SourceChangedError, SourceNotFoundError
from refindex.io import RangeRequest, ReadEngine, ReadOptions

FAST = ReadOptions(retries=3, backoff_base=0.01, backoff_max=0.05, timeout=10)


@pytest.fixture
def engine():
    engine = ReadEngine(FAST)
    yield engine
    engine.close_sync()


def test_random_ranges_are_exact(http_server, engine, payload, random_ranges):
    url = http_server.put("data.bin", payload)
    ranges = random_ranges(len(payload))
    results = engine.read_sync([RangeRequest(url, offset, length) for offset, length in ranges])
    assert results == [payload[offset : offset + length] for offset, length in ranges]


def test_whole_object_read_sends_no_range(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    assert engine.read_sync([RangeRequest(url, 0, -1)]) == [payload]
    # First the resolver's one-byte probe for redirects (once per source), then the read.
    assert http_server.log == [("GET", "/data.bin", "bytes=0-0"), ("GET", "/data.bin", None)]


def test_missing_object_raises_not_found_naming_url(http_server, engine):
    url = http_server.url("absent.bin")
    with pytest.raises(SourceNotFoundError, match="absent.bin"):
        engine.read_sync([RangeRequest(url, 0, 10)])


def test_range_past_end_raises_fetch_error(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    with pytest.raises(FetchError, match=r"data.bin bytes \[.*past the end"):
        engine.read_sync([RangeRequest(url, len(payload) - 3, 10)])


def test_range_starting_past_end_raises_fetch_error(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    with pytest.raises(FetchError, match="past the end"):
        engine.read_sync([RangeRequest(url, len(payload) + 10, 10)])


def test_changed_etag_raises_source_changed(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    with pytest.raises(SourceChangedError, match="ETag"):
        engine.read_sync([RangeRequest(url, 0, 10, etag='"not-the-etag"')])


def test_matching_etag_and_size_read(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    info = engine.info_sync(url)
    request = RangeRequest(url, 100, 50, etag=info.etag, size=info.size)
    assert engine.read_sync([request]) == [payload[100:150]]


def test_changed_size_raises_source_changed(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    with pytest.raises(SourceChangedError, match="size"):
        engine.read_sync([RangeRequest(url, 0, 10, size=len(payload) - 1)])


def test_retries_succeed_after_503s(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    http_server.fail_next(2, 503)
    assert engine.read_sync([RangeRequest(url, 3, 4)]) == [payload[3:7]]
    assert engine.stats.retries == 2
    assert len(http_server.log) == 4  # the resolver's probe: refused twice, answered; the read


def test_retries_honour_429(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    http_server.fail_next(1, 429, {"Retry-After": "0"})
    assert engine.read_sync([RangeRequest(url, 0, 4)]) == [payload[:4]]


def test_gives_up_after_retries_naming_url_range_and_cause(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    http_server.fail_next(10, 500)
    with pytest.raises(FetchError, match=r"data.bin bytes \[0, 4\): HTTP 500.*4 attempts"):
        engine.read_sync([RangeRequest(url, 0, 4)])
    assert len(http_server.log) == FAST.retries + 1


def test_client_errors_are_not_retried(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    http_server.fail_next(3, 400)
    with pytest.raises(FetchError, match="HTTP 400"):
        engine.read_sync([RangeRequest(url, 0, 4)])
    assert len(http_server.log) == 1


def test_server_ignoring_range_is_an_error(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    http_server.ignore_range = True
    with pytest.raises(FetchError, match="ignored the Range"):
        engine.read_sync([RangeRequest(url, 10, 10)])


def test_stalled_body_times_out(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.stall_seconds = 2
    engine = ReadEngine(FAST.replace(stall_timeout=0.2, retries=0))
    with pytest.raises(FetchError, match="timed out"):
        engine.read_sync([RangeRequest(url, 0, 10)])
    engine.close_sync()


def test_concurrency_is_bounded(http_server, payload):
    url = http_server.put("data.bin", payload)
    http_server.delay_seconds = 0.02
    engine = ReadEngine(FAST.replace(max_concurrency=3, max_request=10))  # no merging
    requests = [RangeRequest(url, offset, 10) for offset in range(0, 300, 10)]
    assert engine.read_sync(requests) == [payload[o : o + 10] for o in range(0, 300, 10)]
    assert http_server.max_in_flight == 3
    engine.close_sync()


def test_info_gives_size_and_etag(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    info = engine.info_sync(url)
    assert info.size == len(payload)
    assert info.etag is not None and info.etag.startswith('"')


def test_info_is_one_head_once_the_source_is_resolved(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    engine.read_sync([RangeRequest(url, 0, 10)])
    http_server.log.clear()
    assert engine.info_sync(url).size == len(payload)
    assert http_server.log == [("HEAD", "/data.bin", None)]


def test_info_falls_back_to_a_one_byte_get_when_head_is_refused(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    engine.read_sync([RangeRequest(url, 0, 10)])
    http_server.log.clear()
    http_server.fail_next(1, 405)
    info = engine.info_sync(url)
    assert (info.size, info.etag) == (len(payload), engine.info_sync(url).etag)
    assert http_server.log[:2] == [("HEAD", "/data.bin", None), ("GET", "/data.bin", "bytes=0-0")]


def test_info_of_missing_object_raises_not_found(http_server, engine):
    with pytest.raises(SourceNotFoundError):
        engine.info_sync(http_server.url("absent.bin"))


def test_stats_count_per_scheme(http_server, engine, payload):
    url = http_server.put("data.bin", payload)
    http_server.fail_next(1, 503)
    engine.read_sync([RangeRequest(url, 0, 100), RangeRequest(url, 100, 28)])
    counts = engine.stats.by_scheme()["http"]
    assert (counts.requests, counts.bytes, counts.retries) == (2, 128, 1)


def test_refused_connection_is_retried_then_reported(engine):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.bin"
    with pytest.raises(FetchError, match=rf"{url} bytes \[0, 4\): .*gave up after 4 attempts"):
        engine.read_sync([RangeRequest(url, 0, 4)])
    assert engine.stats.retries == FAST.retries
