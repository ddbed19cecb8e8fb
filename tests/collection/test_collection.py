"""Collections on the test S3 server: a prefix scanned, combined and read exactly; rescans
that read only what changed; interrupted runs resumed; failures reported, nothing lost."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from refindex.collection import scan_collection
from refindex.collection.directory import LOG, MANIFEST, CollectionDirectory
from refindex.combine import CombineOptions
from refindex.errors import FetchError, SidecarError, SourceNotFoundError
from refindex.io import ReadOptions
from refindex.scan import ScanOptions
from refindex.sidecar import load_index
from tests.combine import ncfiles
from tests.combine.test_combine import assert_same_dataset, reference

TIME = CombineOptions(concat_dims=("time",))
FAST = ReadOptions(retries=1, backoff_base=0.01, backoff_max=0.05, timeout=10)


@pytest.fixture
def daily_on_s3(s3_env, s3_bucket, tmp_path):
    """Eight daily files, each counting days from its own date, under s3://BUCKET/daily/;
    returns (prefix, local paths by name)."""
    paths = ncfiles.daily(tmp_path / "local", days=8, own_units=True)
    for path in paths:
        s3_env.upload(path, s3_bucket, f"daily/{path.name}")
    return f"s3://{s3_bucket}/daily/", {p.name: p for p in paths}


def open_combined(directory) -> xr.Dataset:
    return xr.open_dataset(directory, engine="refindex")


def test_a_prefix_is_listed_scanned_in_parallel_combined_and_reads_like_open_mfdataset(
        daily_on_s3, tmp_path):
    prefix, local = daily_on_s3
    report = scan_collection([prefix], tmp_path / "coll", jobs=2, combine_options=TIME,
                             read_options=FAST)
    assert (report.listed, report.scanned, report.failed) == (8, 8, [])
    # A small file is one request: its first block, fetched ahead (no HEAD: the listing
    # gave its size and ETag).
    assert report.requests == 8
    with open_combined(tmp_path / "coll") as ds:
        assert_same_dataset(ds.load(), reference(list(local.values())))
    assert len(load_index(tmp_path / "coll").sources) == 8


def test_a_rescan_reads_only_new_and_changed_objects_and_forgets_deleted_ones(
        daily_on_s3, s3_env, s3_bucket, tmp_path):
    prefix, local = daily_on_s3
    coll = tmp_path / "coll"
    scan_collection([prefix], coll, combine_options=TIME, read_options=FAST, jobs=1)
    members = {r.url: (coll / r.sidecar).stat().st_mtime_ns
               for r in CollectionDirectory(coll).load().members.values()}
    names = sorted(local)
    added = ncfiles.daily(tmp_path / "more", days=1, start="2020-01-09", own_units=True)[0]
    s3_env.upload(added, s3_bucket, f"daily/{added.name}")
    changed = ncfiles.daily(tmp_path / "changed", days=1, start="2020-01-03",
                            own_units=True, variables=("tas",), name="day")[0]
    _scaled(changed)
    s3_env.upload(changed, s3_bucket, f"daily/{names[2]}")
    s3_env.client().delete_object(Bucket=s3_bucket, Key=f"daily/{names[0]}")

    report = scan_collection([prefix], coll, read_options=FAST, jobs=1)  # combine recorded
    assert (report.kept, report.scanned, report.removed) == (6, 2, 1)
    assert report.requests == 2
    state = CollectionDirectory(coll).load()
    for url, record in state.members.items():
        if url in members and not url.endswith(names[2]):
            assert (coll / record.sidecar).stat().st_mtime_ns == members[url]  # not rewritten
    now = {**local, added.name: added, names[2]: changed}
    del now[names[0]]
    with open_combined(coll) as ds:
        assert_same_dataset(ds.load(), reference(list(now.values())))


def _scaled(path) -> None:
    import netCDF4

    with netCDF4.Dataset(path, "a") as f:
        f["tas"][:] = f["tas"][:] * 2


def scan_interrupted_after(members: int, prefix: str, coll) -> None:
    """A scan of ``prefix`` into ``coll`` interrupted (Ctrl-C) once ``members`` are done."""
    def interrupt(stage, done, total):
        if done == members:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_collection([prefix], coll, read_options=FAST, jobs=1, progress=interrupt)


def test_an_interrupted_scan_resumes_where_it_stopped(daily_on_s3, tmp_path):
    prefix, local = daily_on_s3
    coll = tmp_path / "coll"
    scan_interrupted_after(3, prefix, coll)
    assert not (coll / MANIFEST).exists() and (coll / LOG).exists()
    report = scan_collection([prefix], coll, read_options=FAST, jobs=1, combine_options=TIME)
    assert (report.kept, report.scanned) == (3, 5)
    with open_combined(coll) as ds:
        assert_same_dataset(ds.load(), reference(list(local.values())))


def test_a_torn_log_line_loses_only_that_member(daily_on_s3, tmp_path):
    prefix, _ = daily_on_s3
    coll = tmp_path / "coll"
    scan_interrupted_after(2, prefix, coll)
    with open(coll / LOG, "a") as log:
        log.write('{"member": {"url": "s3://')  # killed while writing
    report = scan_collection([prefix], coll, read_options=FAST, jobs=1)
    assert (report.kept, report.scanned) == (2, 6)


def test_a_member_that_cannot_be_scanned_is_reported_and_the_others_kept(
        daily_on_s3, s3_env, s3_bucket, tmp_path):
    prefix, local = daily_on_s3
    s3_env.put_bytes(b"not a NetCDF file at all" * 10, s3_bucket, "daily/broken.nc")
    report = scan_collection([prefix], tmp_path / "coll", read_options=FAST, jobs=2,
                             combine_options=TIME)
    assert report.scanned == 8 and [f.url for f in report.failed] == [f"{prefix}broken.nc"]
    assert "not an HDF5 or NetCDF" in report.failed[0].error
    manifest = json.loads((tmp_path / "coll" / MANIFEST).read_text())
    assert [f["url"] for f in manifest["failed"]] == [f"{prefix}broken.nc"]
    with open_combined(tmp_path / "coll") as ds:
        assert_same_dataset(ds.load(), reference(list(local.values())))


def test_fail_fast_stops_at_the_first_failure(daily_on_s3, s3_env, s3_bucket, tmp_path):
    prefix, _ = daily_on_s3
    s3_env.put_bytes(b"garbage" * 100, s3_bucket, "daily/a-broken.nc")  # listed first
    report = scan_collection([prefix], tmp_path / "coll", read_options=FAST, jobs=1,
                             fail_fast=True, combine_options=TIME)
    assert len(report.failed) == 1 and report.scanned < 8 and report.combined is None


def test_an_empty_prefix_is_an_error_naming_it(s3_env, s3_bucket, tmp_path):
    with pytest.raises(SourceNotFoundError, match=f"s3://{s3_bucket}/nothing/"):
        scan_collection([f"s3://{s3_bucket}/nothing/"], tmp_path / "coll", read_options=FAST)


def test_a_listing_that_fails_is_an_error_and_keeps_what_was_scanned(daily_on_s3, tmp_path):
    prefix, _ = daily_on_s3
    coll = tmp_path / "coll"
    scan_collection([prefix], coll, read_options=FAST, jobs=1)
    before = sorted(p.name for p in (coll / "members").iterdir())
    with pytest.raises((FetchError, SourceNotFoundError), match="no-such-bucket"):
        scan_collection(["s3://no-such-bucket/daily/"], coll, read_options=FAST)
    assert sorted(p.name for p in (coll / "members").iterdir()) == before


def test_local_globs_make_a_collection_too(tmp_path):
    paths = ncfiles.yearly(tmp_path / "yearly", years=(2003, 2004), chunk=30)
    report = scan_collection([str(tmp_path / "yearly" / "*.nc")], tmp_path / "coll",
                             combine_options=TIME, jobs=1)
    assert report.scanned == 2
    with open_combined(tmp_path / "coll") as ds:
        assert_same_dataset(ds.load(), reference(paths))


def test_a_collection_not_combined_says_how_to_combine_it(tmp_path):
    ncfiles.daily(tmp_path / "daily", days=2)
    scan_collection([str(tmp_path / "daily" / "*.nc")], tmp_path / "coll", jobs=1)
    with pytest.raises(SidecarError, match="refindex combine"):
        load_index(tmp_path / "coll")


def test_a_combine_problem_leaves_the_members_scanned(tmp_path):
    ncfiles.one_file(tmp_path / "files" / "a.nc", 0, length=3)
    ncfiles.one_file(tmp_path / "files" / "b.nc", 2, length=3)  # overlaps a.nc
    from refindex.errors import CombineError

    with pytest.raises(CombineError, match="overlap"):
        scan_collection([str(tmp_path / "files" / "*.nc")], tmp_path / "coll", jobs=1,
                        combine_options=TIME)
    assert len(CollectionDirectory(tmp_path / "coll").load().members) == 2


@pytest.mark.slow
def test_a_killed_scan_resumes_and_the_result_is_exact(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    paths = ncfiles.daily(tmp_path / "daily", days=150)
    coll = tmp_path / "coll"
    scan = subprocess.Popen([sys.executable, "-m", "refindex.cli", "scan",
                             str(tmp_path / "daily" / "*.nc"), "-o", str(coll), "-j", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = coll / LOG
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and scan.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 10:
            break
        time.sleep(0.01)
    scan.send_signal(signal.SIGKILL)
    scan.wait()
    assert not (coll / MANIFEST).exists(), "the scan finished before it could be killed"
    logged = log.read_text().count('"member"')
    report = scan_collection([str(tmp_path / "daily" / "*.nc")], coll, jobs=1,
                             combine_options=TIME)
    assert report.kept >= logged - 1 and report.kept + report.scanned == 150
    with open_combined(coll) as ds:
        assert_same_dataset(ds.load(), reference(paths))


def _merged(directory):
    return (ncfiles.daily(directory / "tas", days=4, variables=("tas",), name="tas")
            + ncfiles.daily(directory / "pr", days=4, variables=("pr",), name="pr"))


KINDS = {
    "yearly_leap_uneven": (lambda d: ncfiles.yearly(d, chunk=30), TIME),
    "merged_variables": (_merged, TIME),
    "daily_bounds_own_units": (lambda d: ncfiles.daily(d, days=5, own_units=True,
                                                        bounds=True), TIME),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_collections_on_s3_combine_like_open_mfdataset(kind, s3_env, s3_bucket, tmp_path):
    make, options = KINDS[kind]
    paths = make(tmp_path / "local")
    for path in paths:
        s3_env.upload(path, s3_bucket, f"{kind}/{path.parent.name}-{path.name}")
    report = scan_collection([f"s3://{s3_bucket}/{kind}/"], tmp_path / "coll", jobs=2,
                             read_options=FAST, combine_options=options)
    assert report.scanned == len(paths) and not report.failed
    with open_combined(tmp_path / "coll") as ds:
        assert_same_dataset(ds.load(), reference(paths))


def test_an_ensemble_on_s3_gets_two_new_dimensions(s3_env, s3_bucket, tmp_path):
    paths = ncfiles.ensemble(tmp_path / "local")
    for path in paths:
        s3_env.upload(path, s3_bucket, f"ens/{path.name}")
    options = CombineOptions(new_dims=(("model", r"^([a-z]+)_"), ("member", r"_r(\d+)")))
    scan_collection([f"s3://{s3_bucket}/ens/*.nc"], tmp_path / "coll", jobs=2,
                    read_options=FAST, combine_options=options)
    with open_combined(tmp_path / "coll") as ds, xr.open_mfdataset(
            [[tmp_path / "local" / f"{m}_r{r}.nc" for r in (1, 2, 3)] for m in ("alpha", "beta")],
            combine="nested", concat_dim=["model", "member"], data_vars="all",
            coords="minimal", compat="override") as theirs:
        theirs = theirs.assign_coords(model=["alpha", "beta"], member=[1, 2, 3]).load()
        assert ds.tas.dims == ("model", "member", "time", "lat", "lon")
        xr.testing.assert_equal(ds.tas.load(), theirs.tas.transpose(*ds.tas.dims))
        xr.testing.assert_identical(ds.time, theirs.time)


def test_members_on_s3_that_would_read_wrongly_are_refused(s3_env, s3_bucket, tmp_path):
    from refindex.errors import CombineError

    files = [ncfiles.one_file(tmp_path / "a.nc", 0, packed={}),
             ncfiles.one_file(tmp_path / "b.nc", 2, packed={"scale_factor": 0.25}),
             ncfiles.one_file(tmp_path / "c.nc", 4, packed={}, zlib=False)]
    for path in files:
        s3_env.upload(path, s3_bucket, f"bad/{path.name}")
    with pytest.raises(CombineError) as caught:
        scan_collection([f"s3://{s3_bucket}/bad/"], tmp_path / "coll", jobs=1,
                        read_options=FAST, combine_options=TIME)
    text = str(caught.value)
    assert "scale_factor differs" in text and "b.nc" in text
    assert "codecs differ" in text and "c.nc" in text
    assert len(CollectionDirectory(tmp_path / "coll").load().members) == 3  # kept


def test_a_member_that_never_finishes_stops_its_worker_and_the_others_are_kept(http_server,
                                                                               tmp_path):
    paths = ncfiles.daily(tmp_path / "daily", days=6, own_units=True)
    slow = http_server.put("slow.nc", paths[0].read_bytes())
    http_server.stall_seconds = 6  # its body comes long after the member's 2 s
    patient = ReadOptions(retries=0, timeout=60, stall_timeout=60)
    report = scan_collection([slow, *map(str, paths[1:])], tmp_path / "coll",
                             options=ScanOptions(member_seconds=2), read_options=patient,
                             jobs=2)
    assert report.scanned == 5 and [f.url for f in report.failed] == [slow]
    assert "no result within 2 s: its worker was stopped" in report.failed[0].error
