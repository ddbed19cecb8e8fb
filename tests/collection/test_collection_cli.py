"""The command line of collections: scan a prefix and combine, inspect, validate, rescan, and
the exit codes that tell scripts what happened."""

from __future__ import annotations

import shutil

import xarray as xr

from refindex.cli import main
from tests.collection.test_collection import _scaled, daily_on_s3  # noqa: F401 (fixture)
from tests.combine import ncfiles
from tests.combine.test_combine import assert_same_dataset, reference


def test_scan_a_prefix_with_combine_then_inspect_and_validate(daily_on_s3, s3_env,  # noqa: F811
                                                              s3_bucket, tmp_path, capsys):
    prefix, local = daily_on_s3
    coll = str(tmp_path / "coll")
    assert main(["scan", prefix, "--combine", "--concat-dim", "time", "-o", coll,
                 "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "8 members listed: 8 scanned" in err and "combined 8 members along time (8)" in err
    with xr.open_dataset(coll, engine="refindex") as ds:
        assert_same_dataset(ds.load(), reference(list(local.values())))

    assert main(["inspect", coll]) == 0
    shown = capsys.readouterr().out
    assert "combined from 8 members along time (concat: 8 long, 8 positions)" in shown

    assert main(["validate", coll]) == 0
    assert "8 sources: 8 ok" in capsys.readouterr().out
    first = sorted(local)[0]
    s3_env.put_bytes(b"replaced", s3_bucket, f"daily/{first}")
    assert main(["validate", coll]) == 3
    assert "7 ok, 1 resized" in capsys.readouterr().out

    # Scanning again with no sources uses those recorded, and rescans what changed.
    changed = tmp_path / first
    shutil.copy(local[first], changed)
    _scaled(changed)
    s3_env.upload(changed, s3_bucket, f"daily/{first}")
    assert main(["scan", "-o", coll]) == 0
    assert "1 scanned, 7 unchanged" in capsys.readouterr().err
    assert main(["validate", coll]) == 0


def test_some_members_failing_exit_3_and_fail_fast_exits_1(daily_on_s3, s3_env,  # noqa: F811
                                                           s3_bucket, tmp_path, capsys):
    prefix, _ = daily_on_s3
    s3_env.put_bytes(b"junk" * 50, s3_bucket, "daily/aaa-junk.nc")
    assert main(["scan", prefix, "-o", str(tmp_path / "a"), "-j", "1"]) == 3
    err = capsys.readouterr().err
    assert "failed: " in err and "aaa-junk.nc" in err and "8 scanned" in err
    assert main(["scan", prefix, "-o", str(tmp_path / "b"), "-j", "1", "--fail-fast"]) == 1


def test_combine_command_on_a_collection_and_on_sidecars(tmp_path, capsys):
    paths = ncfiles.yearly(tmp_path / "yearly", years=(2003, 2004), chunk=30)
    coll = str(tmp_path / "coll")
    assert main(["scan", str(tmp_path / "yearly" / "*.nc"), "-o", coll, "-j", "1"]) == 0
    assert main(["inspect", coll]) == 0
    assert "members (2), not combined" in capsys.readouterr().out
    out = tmp_path / "combined.refs.json"
    assert main(["combine", coll, "--concat-dim", "time", "-o", str(out)]) == 0
    assert "combined 2 members along time (731)" in capsys.readouterr().err
    with xr.open_dataset(out, engine="refindex") as ds:
        assert_same_dataset(ds.load(), reference(paths))
    members = sorted(str(p) for p in (tmp_path / "coll" / "members").iterdir())
    assert main(["combine", *members, "-o", str(tmp_path / "again.json")]) == 0


def test_combine_refusal_is_one_error_exit_1(tmp_path, capsys):
    one = ncfiles.one_file(tmp_path / "a.nc", 0, packed={})
    two = ncfiles.one_file(tmp_path / "b.nc", 2, packed={"scale_factor": 0.5})
    assert main(["scan", str(one), str(two), "--combine", "-o", str(tmp_path / "c")]) == 1
    assert "pr: scale_factor differs" in capsys.readouterr().err


def test_from_file_lists_sources(tmp_path, capsys):
    paths = ncfiles.daily(tmp_path / "daily", days=3)
    listing = tmp_path / "list.txt"
    listing.write_text("# the files\n\n" + "\n".join(map(str, paths)) + "\n")
    assert main(["scan", "--from-file", str(listing), "--combine", "-o",
                 str(tmp_path / "c"), "-j", "1"]) == 0
    assert "3 members listed: 3 scanned" in capsys.readouterr().err
