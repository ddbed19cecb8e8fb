"""ReadEngine on local files: exact bytes and clear errors."""

from pathlib import Path

import pytest

from refindex.errors import FetchError, SourceChangedError, SourceNotFoundError
from refindex.io import RangeRequest, ReadEngine


@pytest.fixture
def local_file(tmp_path: Path, payload: bytes) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    return path


def test_random_ranges_are_exact(local_file, payload, random_ranges):
    ranges = random_ranges(len(payload))
    requests = [RangeRequest(str(local_file), offset, length) for offset, length in ranges]
    results = ReadEngine().read_sync(requests)
    assert results == [payload[offset : offset + length] for offset, length in ranges]


def test_whole_file_read(local_file, payload):
    assert ReadEngine().read_sync([RangeRequest(str(local_file), 0, -1)]) == [payload]


def test_file_url_is_a_local_path(local_file, payload):
    request = RangeRequest(local_file.as_uri(), 10, 20)
    assert ReadEngine().read_sync([request]) == [payload[10:30]]


def test_zero_length_read_is_empty(local_file):
    assert ReadEngine().read_sync([RangeRequest(str(local_file), 5, 0)]) == [b""]


def test_missing_file_raises_not_found_naming_it(tmp_path):
    missing = str(tmp_path / "absent.h5")
    with pytest.raises(SourceNotFoundError, match="absent.h5"):
        ReadEngine().read_sync([RangeRequest(missing, 0, 10)])


def test_range_past_end_raises_fetch_error_naming_path_and_range(local_file, payload):
    request = RangeRequest(str(local_file), len(payload) - 5, 10)
    with pytest.raises(FetchError, match=rf"data.bin bytes \[{len(payload) - 5}, "):
        ReadEngine().read_sync([request])


def test_changed_size_raises_source_changed(local_file, payload):
    request = RangeRequest(str(local_file), 0, 10, size=len(payload) + 1)
    with pytest.raises(SourceChangedError, match="size"):
        ReadEngine().read_sync([request])


def test_info_gives_size(local_file, payload):
    info = ReadEngine().info_sync(str(local_file))
    assert info.size == len(payload)
    assert info.etag is None
    assert info.last_modified is not None


def test_stats_count_requests_and_bytes(local_file):
    engine = ReadEngine()
    engine.read_sync([RangeRequest(str(local_file), 0, 100), RangeRequest(str(local_file), 5, 7)])
    counts = engine.stats.by_scheme()["file"]
    assert (counts.requests, counts.bytes, counts.failures) == (2, 107, 0)
    assert str(engine.stats).startswith("2 ranges asked (107 B) -> 1 file read (100 B)")
