"""``refindex validate``: every source checked with one request each, against the identity the
sidecar recorded (S3 on SeaweedFS, local files, HTTP, an archive with login and redirects);
``--deep`` reads and decodes a sample of chunks; exit codes for scripts.

That a read through the store of an overwritten or deleted source raises
``SourceChangedError`` / ``SourceNotFoundError`` is tested in tests/test_errors.py
(``test_source_changed_on_s3_is_source_changed_error`` and the test after it)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import h5py
import numpy as np
import pytest

from refindex import ReadOptions, load_index, scan, validate, write_index
from refindex.cli import main
from refindex.commands.validate import EXIT_MISMATCH, EXIT_UNCHECKED
from refindex.index import ChunkTable, Index, Source
from refindex.io import ObjectInfo
from refindex.io.resolver import forget_resolutions
from refindex.validate import SourceStatus, compare, sample_chunks

FAST = ReadOptions(retries=1, backoff_base=0.01, backoff_max=0.05, timeout=10)
CHUNKS = 10  # of dataset "a" in small_file


def small_file(path: Path) -> Path:
    """A gzip-compressed dataset ``a`` of 10 chunks and an uncompressed one ``b``."""
    with h5py.File(path, "w") as f:
        f.create_dataset("a", data=np.arange(1000.0), chunks=(100,), compression="gzip")
        f.create_dataset("b", data=np.arange(50))
    return path


def sidecar_of(location: str, tmp_path: Path, name: str = "data.refs.json",
               identity: bool = True) -> Path:
    """Scan ``location`` into a sidecar in ``tmp_path``; without ``identity`` the sidecar
    records only the sources' URLs and sizes, as sidecars of other tools do."""
    index = scan(location, read_options=FAST).index
    if not identity:
        index.sources = [Source(s.url, s.size) for s in index.sources]
    path = tmp_path / name
    write_index(index, path)
    return path


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    """Rich tables as wide as their content, so URLs are not cut."""
    monkeypatch.setenv("COLUMNS", "400")


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["validate", *argv])
    return code, capsys.readouterr().out


def statuses(report) -> list[str]:
    return [str(check.status) for check in report.sources]


def corrupt_chunks_in_place(path: Path, sidecar: Path, array: str = "a") -> bytes:
    """``path``'s bytes with the middle of every chunk of ``array`` zeroed: same size."""
    data = bytearray(path.read_bytes())
    table = load_index(sidecar).arrays[array].chunks
    for flat in range(len(table)):
        ref = table.get(flat)
        data[ref.offset + ref.length // 4 : ref.offset + ref.length // 2] = bytes(
            ref.length // 2 - ref.length // 4)
    return bytes(data)


@pytest.fixture
def on_s3(s3_env, s3_bucket, tmp_path):
    """``small_file`` on S3 and its sidecar: ``(url, local copy, sidecar)``."""
    path = small_file(tmp_path / "data.h5")
    url = s3_env.upload(path, s3_bucket, "data.h5")
    return url, path, sidecar_of(url, tmp_path)


# --- S3 ----------------------------------------------------------------------------------


def test_unchanged_s3_source_is_ok_and_exits_0(capsys, on_s3):
    url, _, sidecar = on_s3
    code, out = run(capsys, str(sidecar))
    assert code == 0
    assert url in out and "1 source: 1 ok — as recorded" in out


def test_s3_source_overwritten_with_same_size_is_changed(capsys, on_s3, s3_env, s3_bucket):
    url, path, sidecar = on_s3
    data = bytearray(path.read_bytes())
    data[-8:] = bytes(8)  # same size, other bytes: only the ETag tells
    s3_env.put_bytes(bytes(data), s3_bucket, "data.h5")
    report = validate(sidecar)
    assert statuses(report) == ["changed"] and "ETag" in report.sources[0].detail
    code, out = run(capsys, str(sidecar))
    assert code == EXIT_MISMATCH and "changed" in out and "no longer matches" in out


def test_s3_source_overwritten_with_other_size_is_resized(on_s3, s3_env, s3_bucket):
    url, path, sidecar = on_s3
    s3_env.put_bytes(path.read_bytes() + b"appended", s3_bucket, "data.h5")
    check = validate(sidecar).sources[0]
    assert check.status == SourceStatus.RESIZED
    assert check.found.size == check.source.size + 8
    assert f"{check.source.size:,} → {check.found.size:,}" in check.detail


def test_deleted_s3_source_is_missing(capsys, on_s3, s3_env, s3_bucket):
    url, _, sidecar = on_s3
    s3_env.client().delete_object(Bucket=s3_bucket, Key="data.h5")
    report = validate(sidecar)
    assert statuses(report) == ["missing"] and report.sources[0].found is None
    assert run(capsys, str(sidecar))[0] == EXIT_MISMATCH


def test_one_head_per_source_in_parallel_within_the_bound(s3_env, s3_bucket, tmp_path,
                                                          fault_proxy):
    urls = [s3_env.put_bytes(bytes([i]) * (100 + i), s3_bucket, f"part-{i}.bin")
            for i in range(6)]
    index = Index(sources=[Source(url, 100 + i) for i, url in enumerate(urls)])
    fault_proxy.latency = 0.2  # long enough for the HEADs to overlap
    options = FAST.replace(endpoint_url=fault_proxy.url, max_concurrency=3)
    report = validate(index, options)
    assert statuses(report) == ["unverified"] * 6  # sizes only: nothing else was recorded
    assert fault_proxy.by_method == {"HEAD": 6}
    assert fault_proxy.max_in_flight == 3


def test_unreachable_source_is_reported_as_unchecked():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/gone.h5"
    report = validate(Index(sources=[Source(url, 10, '"e"')]), FAST.replace(retries=0))
    assert statuses(report) == ["unreachable"] and url in report.sources[0].detail
    assert report.unchecked and not report.mismatched


def test_local_sources_of_a_remote_sidecar_are_refused(capsys, s3_env, s3_bucket, tmp_path):
    path = small_file(tmp_path / "data.h5")
    sidecar = sidecar_of(str(path), tmp_path)
    remote = s3_env.upload(sidecar, s3_bucket, "data.refs.json")
    code, out = run(capsys, remote)
    assert code == EXIT_UNCHECKED
    assert "refused" in out and "could not be checked" in out


# --- local files -------------------------------------------------------------------------


def test_unchanged_local_file_is_ok(tmp_path):
    path = small_file(tmp_path / "data.h5")
    report = validate(sidecar_of(str(path), tmp_path))
    assert statuses(report) == ["ok"] and report.ok


def test_local_file_rewritten_with_same_size_is_changed_by_its_modification_time(tmp_path):
    path = small_file(tmp_path / "data.h5")
    sidecar = sidecar_of(str(path), tmp_path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    check = validate(sidecar).sources[0]
    assert check.status == SourceStatus.CHANGED and "last modified" in check.detail


def test_local_file_truncated_is_resized_and_deleted_is_missing(tmp_path):
    path = small_file(tmp_path / "data.h5")
    sidecar = sidecar_of(str(path), tmp_path)
    path.write_bytes(path.read_bytes()[:-100])
    assert statuses(validate(sidecar)) == ["resized"]
    path.unlink()
    assert statuses(validate(sidecar)) == ["missing"]


# --- HTTP and archives -------------------------------------------------------------------


def test_http_source_gets_one_head(http_server, tmp_path):
    path = small_file(tmp_path / "data.h5")
    url = http_server.put("data.h5", path.read_bytes())
    sidecar = sidecar_of(url, tmp_path)
    forget_resolutions()  # as a new process would
    http_server.log.clear()
    assert statuses(validate(sidecar, FAST)) == ["ok"]
    # The resolver's one-byte probe for redirects (once per source and process), the HEAD.
    assert http_server.log == [("GET", "/data.h5", "bytes=0-0"), ("HEAD", "/data.h5", None)]
    http_server.put("data.h5", path.read_bytes()[::-1])  # same size, another ETag
    assert statuses(validate(sidecar, FAST)) == ["changed"]


def test_archive_sources_cost_one_login_and_one_redirect_each(
    archive_server, archive_netrc, s3_env, s3_bucket, tmp_path
):
    path = small_file(tmp_path / "data.h5")
    index = Index()
    for name in ("a.h5", "b.h5", "c.h5"):
        s3_env.upload(path, s3_bucket, name)
        scanned = scan(archive_server.url(s3_bucket, name), read_options=FAST).index
        index.sources.extend(scanned.sources)
    forget_resolutions()  # a new process: no cookie, no resolved URLs
    archive_server.reset_counters()
    report = validate(index, FAST)
    assert statuses(report) == ["ok"] * 3
    assert (archive_server.logins, archive_server.redirects) == (1, 3)


# --- --deep ------------------------------------------------------------------------------


def test_deep_reads_and_decodes_the_sample_of_good_data(capsys, on_s3):
    _, _, sidecar = on_s3
    report = validate(sidecar, deep=True, sample=3)
    arrays = {array.path: array for array in report.arrays}
    read = arrays["a"].read  # the first, the last and one drawn at random
    assert len(read) == 3 and (read[0], read[-1]) == ("a/0", f"a/{CHUNKS - 1}")
    assert len(arrays["b"].read) == 1 and report.ok
    code, out = run(capsys, str(sidecar), "--deep")
    assert code == 0 and "read and decoded, 0 failed" in out


def test_deep_catches_bytes_corrupted_in_place_when_no_etag_was_recorded(
    capsys, s3_env, s3_bucket, tmp_path
):
    path = small_file(tmp_path / "data.h5")
    url = s3_env.upload(path, s3_bucket, "data.h5")
    sidecar = sidecar_of(url, tmp_path, identity=False)
    s3_env.put_bytes(corrupt_chunks_in_place(path, sidecar), s3_bucket, "data.h5")
    code, out = run(capsys, str(sidecar))
    assert code == 0 and "unverified" in out  # the size alone cannot tell
    report = validate(sidecar, deep=True)
    failures = report.chunk_failures
    assert len(failures) == 4 and {f.array for f in failures} == {"a"}
    assert failures[0].key == "a/0" and "zlib.error" in failures[0].error
    code, out = run(capsys, str(sidecar), "--deep")
    assert code == EXIT_MISMATCH and "chunk a/0: ChunkDecodeError" in out and "zlib.error" in out


def test_deep_skips_the_chunks_of_sources_that_failed(on_s3, s3_env, s3_bucket):
    _, _, sidecar = on_s3
    s3_env.client().delete_object(Bucket=s3_bucket, Key="data.h5")
    report = validate(sidecar, deep=True, sample=2)
    arrays = {array.path: array for array in report.arrays}
    assert arrays["a"].skipped == 2 and arrays["a"].read == () and not report.chunk_failures


def test_sample_is_deterministic_bounded_and_covers_first_and_last_chunks():
    table = ChunkTable((1000,))
    for flat in range(3, 990, 7):  # sparse: absent chunks around and between
        table.set(flat, 0, flat * 10, 10)
    sample = sample_chunks(table, 6, seed="x")
    assert sample == sample_chunks(table, 6, seed="x")
    assert len(sample) == 6 and sample[0] == 3 and sample[-1] == 983
    assert all((flat - 3) % 7 == 0 for flat in sample)
    assert sample != sample_chunks(table, 6, seed="y")
    assert sample_chunks(table, 1) == [3]
    assert sample_chunks(ChunkTable((50,)), 4) == []  # nothing written


# --- identities and output ---------------------------------------------------------------


@pytest.mark.parametrize(("recorded", "found", "status"), [
    (Source("u", 5, '"abc"'), ObjectInfo("u", 5, 'W/"abc"', None), "ok"),
    (Source("u", 5, '"abc"'), ObjectInfo("u", 5, '"abd"', None), "changed"),
    (Source("u", 5, None, "Wed, 21 Oct 2015 07:28:00 GMT"),
     ObjectInfo("u", 5, '"x"', "Wed, 21 Oct 2015 07:28:00 GMT"), "ok"),
    (Source("u", 5, None, "Wed, 21 Oct 2015 07:28:00 GMT"),
     ObjectInfo("u", 5, None, "Thu, 22 Oct 2015 07:28:00 GMT"), "changed"),
    (Source("u", 5), ObjectInfo("u", 5, '"x"', "Wed, 21 Oct 2015 07:28:00 GMT"), "unverified"),
    (Source("u", None), ObjectInfo("u", 5, None, None), "unverified"),
    (Source("u", 5, '"abc"'), ObjectInfo("u", 6, '"abc"', None), "resized"),
])
def test_compare_follows_the_identity_reads_check(recorded, found, status):
    assert compare(recorded, found)[0] == status


def test_json_output_is_the_report_alone(capsys, on_s3):
    url, _, sidecar = on_s3
    code, out = run(capsys, str(sidecar), "--json", "--deep", "--sample", "2")
    document = json.loads(out)
    assert code == 0 and document["ok"] is True and document["counts"] == {"ok": 1}
    assert document["sources"][0]["url"] == url
    assert document["sources"][0]["found"]["etag"] == document["sources"][0]["recorded"]["etag"]
    assert document["deep"]["chunks_read"] == 3 and document["deep"]["chunks_failed"] == 0


def test_unreadable_sidecar_exits_1(capsys, tmp_path):
    assert main(["validate", str(tmp_path / "absent.refs.json")]) == 1
    assert "not found" in capsys.readouterr().err
