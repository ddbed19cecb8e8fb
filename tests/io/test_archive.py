"""Reading through an archive that demands a login and redirects every file to a short-lived
presigned URL (tests/archive_server.py): exact bytes, one login and one redirect per source
and lifetime, not per chunk."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from refindex.errors import FetchError
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.scan import scan
from refindex.sidecar import write_index
from tests.roundtrip import assert_zarr_matches
from tests.scan import h5files

# No merging: every range is a request of its own, so each one asks the resolver.
APART = ReadOptions(max_gap=0, retries=2, backoff_base=0.01, backoff_max=0.05, timeout=10)


@pytest.fixture
def archived(archive_server, s3_server, s3_bucket, payload):
    """``payload`` stored on S3 and the archive URL that hands it out."""
    s3_server.put_bytes(payload, s3_bucket, "dir/data.bin")
    return archive_server.url(s3_bucket, "dir/data.bin")


def _spread_ranges(count: int, length: int = 100, step: int = 500) -> list[tuple[int, int]]:
    return [(i * step, length) for i in range(count)]


def test_concurrent_reads_from_two_loops_make_one_login_and_one_redirect(
    archive_server, archive_netrc, archived, payload
):
    ranges = _spread_ranges(200)
    requests = [RangeRequest(archived, offset, length) for offset, length in ranges]
    expected = [payload[offset : offset + length] for offset, length in ranges]
    engines = [ReadEngine(APART), ReadEngine(APART)]
    results: dict[str, list[bytes]] = {}
    # One engine on refindex's I/O loop, one on a loop of its own in another thread.

    def read_on_own_loop() -> None:
        results["thread"] = asyncio.run(_read_and_close(engines[1], requests))

    other = threading.Thread(target=read_on_own_loop)
    other.start()
    results["sync"] = engines[0].read_sync(requests)
    other.join(30)
    assert results == {"sync": expected, "thread": expected}
    assert (archive_server.logins, archive_server.redirects) == (1, 1)
    assert sum(e.stats.total("resolutions") for e in engines) == 1
    assert sum(e.stats.total("fetches") for e in engines) == 400
    engines[0].close_sync()


async def _read_and_close(engine: ReadEngine, requests: list[RangeRequest]) -> list[bytes]:
    try:
        return await engine.read(requests)
    finally:
        await engine.close()


def test_stats_show_the_login_and_redirects(archive_server, archive_netrc, archived, payload):
    engine = ReadEngine(APART)
    engine.read_sync([RangeRequest(archived, 0, 10), RangeRequest(archived, 1000, 10)])
    counts = engine.stats.by_scheme()["http"]
    # /data -> /login -> /data -> the presigned URL
    assert (counts.resolutions, counts.logins, counts.redirects) == (1, 1, 3)
    assert "1 URLs resolved (3 redirects, 1 logins)" in str(engine.stats)
    engine.close_sync()


def test_one_login_serves_every_source_of_the_archive(
    archive_server, archive_netrc, s3_server, s3_bucket, payload
):
    urls = []
    for name in ("a.bin", "b.bin", "c.bin"):
        s3_server.put_bytes(payload, s3_bucket, name)
        urls.append(archive_server.url(s3_bucket, name))
    engine = ReadEngine(APART)
    results = engine.read_sync([RangeRequest(url, 5, 20) for url in urls for _ in range(3)])
    assert results == [payload[5:25]] * 9
    assert (archive_server.logins, archive_server.redirects) == (1, 3)
    engine.close_sync()


def test_hdf5_file_scanned_and_read_through_zarr_via_the_archive(
    archive_server, archive_netrc, s3_env, s3_bucket, tmp_path
):
    path = tmp_path / "volume.h5"
    h5files.layouts(path)
    s3_env.upload(path, s3_bucket, "volume.h5")
    archived = archive_server.url(s3_bucket, "volume.h5")
    result = scan(archived)  # metadata straight through the archive's login and redirect
    sidecar = tmp_path / "volume.refs.json"
    write_index(result.index, sidecar)
    assert_zarr_matches(path, sidecar)
    assert (archive_server.logins, archive_server.redirects) == (1, 1)


def test_reading_after_the_renewal_time_resolves_once_more(
    archive_server, archive_netrc, archived, payload, clock
):
    engine = ReadEngine(APART)
    assert engine.read_sync([RangeRequest(archived, 0, 10)]) == [payload[:10]]
    clock.shift = archive_server.lifetime * 0.6  # past halfway: renewed before it runs out
    ranges = _spread_ranges(50)
    results = engine.read_sync([RangeRequest(archived, o, n) for o, n in ranges])
    assert results == [payload[o : o + n] for o, n in ranges]
    assert (archive_server.logins, archive_server.redirects) == (1, 2)
    assert engine.stats.retries == 0  # renewed in time: the storage refused nothing
    engine.close_sync()


def test_reading_across_an_expiry_resolves_once_more(
    archive_server, archive_netrc, archived, payload, clock
):
    # Long enough that the first read finishes within it on a loaded machine (else that read
    # is refused and resolves anew itself), short enough to wait out.
    archive_server.lifetime = 3
    engine = ReadEngine(APART)
    assert engine.read_sync([RangeRequest(archived, 0, 10)]) == [payload[:10]]
    time.sleep(3.1)  # the storage now refuses the URL ...
    clock.shift = -5  # ... while our clock says it is still good: every read gets a 403
    archive_server.lifetime = 60  # the renewed URL outlives the reads, however slow the machine
    ranges = _spread_ranges(50)
    results = engine.read_sync([RangeRequest(archived, o, n) for o, n in ranges])
    assert results == [payload[o : o + n] for o, n in ranges]
    assert (archive_server.logins, archive_server.redirects) == (1, 2)
    assert engine.stats.total("resolutions") == 2
    engine.close_sync()


def test_wrong_password_fails_at_once_naming_the_url(archive_server, archive_netrc, archived):
    archive_netrc.write_text("machine 127.0.0.1 login reader password wrong\n")
    engine = ReadEngine(APART)
    started = time.monotonic()
    with pytest.raises(FetchError, match=rf"{archived}.*HTTP 401.*{archive_netrc}"):
        engine.read_sync([RangeRequest(archived, 0, 10)])
    assert time.monotonic() - started < 5
    assert (archive_server.logins, archive_server.refused_logins) == (0, 1)
    engine.close_sync()


def test_no_credentials_says_where_to_put_them(archive_server, archived, tmp_path, monkeypatch):
    monkeypatch.setenv("NETRC", str(tmp_path / "absent-netrc"))
    engine = ReadEngine(APART)
    with pytest.raises(FetchError, match=r"HTTP 401.*add machine 127.0.0.1 to"):
        engine.read_sync([RangeRequest(archived, 0, 10)])
    engine.close_sync()


def test_bearer_token_logs_in(archive_server, archived, payload, tmp_path, monkeypatch):
    monkeypatch.setenv("NETRC", str(tmp_path / "absent-netrc"))
    engine = ReadEngine(APART.replace(bearer_token=archive_server.token))
    assert engine.read_sync([RangeRequest(archived, 7, 9)]) == [payload[7:16]]
    assert (archive_server.logins, archive_server.redirects) == (1, 1)
    assert archive_server.token not in repr(engine)
    engine.close_sync()


def test_bearer_token_from_the_environment(archive_server, archived, payload, tmp_path,
                                           monkeypatch):
    monkeypatch.setenv("NETRC", str(tmp_path / "absent-netrc"))
    monkeypatch.setenv("REFINDEX_BEARER_TOKEN", archive_server.token)
    engine = ReadEngine(ReadOptions.from_env())
    assert engine.read_sync([RangeRequest(archived, 0, 4)]) == [payload[:4]]
    engine.close_sync()


def test_the_presigned_url_is_not_probed_before_the_first_read(
    archive_server, archive_netrc, s3_server, s3_bucket, payload
):
    """Login and redirect cost the archive's hops only: the first request to the storage is
    the first read itself (no one-byte probe of the presigned URL)."""
    from tests.fault_proxy import FaultProxy

    s3_server.put_bytes(payload, s3_bucket, "dir/data.bin")
    with FaultProxy(s3_server.endpoint_url) as storage:
        archive_server.presigner = s3_server.client(storage.url)
        try:
            engine = ReadEngine(APART)
            url = archive_server.url(s3_bucket, "dir/data.bin")
            assert engine.read_sync([RangeRequest(url, 10, 20)]) == [payload[10:30]]
            assert storage.requests == 1
            assert (archive_server.logins, archive_server.redirects) == (1, 1)
            engine.close_sync()
        finally:
            archive_server.presigner = None
