"""What the user names becomes the objects to scan: paths, globs, URLs, S3 prefixes and globs,
files of sources; each once, in order, with what a listing or stat says of it."""

from __future__ import annotations

import os

import pytest

from refindex.collection.sources import expand_sources, glob_regex
from refindex.errors import SourceNotFoundError
from refindex.io import ReadEngine, ReadOptions


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    ("**/*.nc", "a/b/c.nc", True), ("**/*.nc", "c.nc", True), ("**/*.nc", "c.h5", False),
    ("a/**", "a/b/c", True), ("a/**/z.nc", "a/z.nc", True), ("a/**/z.nc", "a/b/c/z.nc", True),
    ("*/2020-*.nc", "x/2020-01.nc", True), ("*/2020-*.nc", "x/y/2020-01.nc", False),
    ("*.nc", "dir/a.nc", False), ("d?y.nc", "day.nc", True), ("d?y.nc", "d/y.nc", False),
    ("day[0-9].nc", "day7.nc", True), ("day[!0-9].nc", "day7.nc", False),
    ("day[!0-9].nc", "dayx.nc", True), ("a+b (1).nc", "a+b (1).nc", True),
])
def test_globs_match_keys_as_shells_do_with_globstar(pattern, key, matches):
    assert bool(glob_regex(pattern).fullmatch(key)) is matches


@pytest.fixture
def local_engine():
    return ReadEngine(ReadOptions())


def touch(path, size=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def test_local_paths_globs_and_directories(tmp_path, local_engine):
    a = touch(tmp_path / "a.nc", 3)
    b = touch(tmp_path / "sub" / "deep" / "b.nc")
    touch(tmp_path / "sub" / "notes.txt")
    store = tmp_path / "store.zarr"
    store.mkdir()
    found = expand_sources([str(a), str(tmp_path / "**" / "*.nc"), str(store)], local_engine)
    assert [s.url for s in found] == [str(a), str(b), str(store)]  # a.nc once
    assert found[0].size == 3 and found[0].last_modified
    assert found[2].size is None  # a directory store has no identity: always scanned


def test_urls_are_taken_as_they_are(local_engine):
    urls = ["https://data.example.org/x.nc", "s3://bucket/key.nc"]
    assert [s.url for s in expand_sources(urls, local_engine)] == urls
    assert all(s.size is None for s in expand_sources(urls, local_engine))


def test_a_file_of_sources(tmp_path, local_engine):
    files = [touch(tmp_path / f"f{i}.nc") for i in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# header\n{files[2]}\n\n  {files[0]}  \n# {files[1]}\n")
    found = expand_sources([str(files[1])], local_engine, from_file=str(listing))
    assert [s.url for s in found] == [str(files[1]), str(files[2]), str(files[0])]


def test_missing_things_are_errors_naming_them(tmp_path, local_engine):
    with pytest.raises(SourceNotFoundError, match="nothing-here"):
        expand_sources([str(tmp_path / "nothing-here" / "*.nc")], local_engine)
    with pytest.raises(SourceNotFoundError, match="absent.nc"):
        expand_sources([str(tmp_path / "absent.nc")], local_engine)
    with pytest.raises(SourceNotFoundError, match="list.txt"):
        expand_sources([], local_engine, from_file=str(tmp_path / "list.txt"))


@pytest.fixture
def bucket_tree(s3_env, s3_bucket):
    keys = ["2020/jan/a.nc", "2020/jan/b.h5", "2020/feb/c.nc", "2021/jan/d.nc", "readme.txt"]
    for key in keys:
        s3_env.put_bytes(key.encode(), s3_bucket, key)
    return s3_bucket


def test_s3_prefixes_and_globs(bucket_tree, s3_env):
    engine = ReadEngine(ReadOptions())
    b = f"s3://{bucket_tree}"
    assert [s.url for s in expand_sources([f"{b}/2020/"], engine)] == [
        f"{b}/2020/feb/c.nc", f"{b}/2020/jan/a.nc", f"{b}/2020/jan/b.h5"]
    assert [s.url for s in expand_sources([f"{b}/**/*.nc"], engine)] == [
        f"{b}/2020/feb/c.nc", f"{b}/2020/jan/a.nc", f"{b}/2021/jan/d.nc"]
    assert [s.url for s in expand_sources([f"{b}/*/jan/?.nc"], engine)] == [
        f"{b}/2020/jan/a.nc", f"{b}/2021/jan/d.nc"]
    listed = expand_sources([f"{b}/2021/"], engine)[0]
    head = engine.info_sync(listed.url)
    assert (listed.size, listed.etag, listed.last_modified) == (head.size, head.etag,
                                                                head.last_modified)


def test_s3_patterns_that_match_nothing_are_errors(bucket_tree, s3_env):
    engine = ReadEngine(ReadOptions())
    with pytest.raises(SourceNotFoundError, match=r"\*\*/\*\.grib"):
        expand_sources([f"s3://{bucket_tree}/**/*.grib"], engine)
    with pytest.raises(SourceNotFoundError, match="2019/"):
        expand_sources([f"s3://{bucket_tree}/2019/"], engine)


def test_order_is_as_given_and_each_object_once(bucket_tree, s3_env, tmp_path):
    engine = ReadEngine(ReadOptions())
    b = f"s3://{bucket_tree}"
    local = touch(tmp_path / "z.nc")
    found = expand_sources([str(local), f"{b}/2021/", f"{b}/**/d.nc", f"{b}/2020/jan/"],
                           engine)
    assert [s.url for s in found] == [str(local), f"{b}/2021/jan/d.nc", f"{b}/2020/jan/a.nc",
                                      f"{b}/2020/jan/b.h5"]
    assert os.path.isabs(found[0].url)
