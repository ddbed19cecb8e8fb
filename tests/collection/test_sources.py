"""What the user names becomes the objects to scan: paths, globs, URLs, S3 prefixes and globs,
files of sources; each once, in order, with what a listing or stat says of it."""

from __future__ import annotations

import io
import os

import pytest

from refindex.collection.sources import expand_sources, expand_sources_async, glob_regex
from refindex.errors import SourceNotFoundError
from refindex.io import ReadEngine, ReadOptions
from refindex.io.local import stat_local
from refindex.io.loop import run_sync


@pytest.mark.parametrize(("pattern", "key", "matches"), [
    # ** at the start: any number of leading segments, none too
    ("**/*.nc", "a/b/c.nc", True), ("**/*.nc", "c.nc", True), ("**/*.nc", "c.h5", False),
    # ** in the middle
    ("a/**/z.nc", "a/z.nc", True), ("a/**/z.nc", "a/b/c/z.nc", True),
    ("a/**/z.nc", "ab/z.nc", False), ("a/**/z.nc", "a/b/z.nc.bak", False),
    # ** at the end: everything below
    ("a/**", "a/b/c", True), ("a/**", "a/b", True), ("a/**", "b/c", False),
    ("**", "any/thing/at/all", True),
    # ** inside a segment is a *: it does not cross /
    ("a**.nc", "abc.nc", True), ("a**.nc", "a/b.nc", False), ("x/**.nc", "x/y/z.nc", False),
    # * and ? never cross /
    ("*/2020-*.nc", "x/2020-01.nc", True), ("*/2020-*.nc", "x/y/2020-01.nc", False),
    ("*.nc", "dir/a.nc", False), ("*", "a/b", False), ("d?y.nc", "day.nc", True),
    ("d?y.nc", "d/y.nc", False),
    # classes: ranges, negation, a ] first, never /
    ("day[0-9].nc", "day7.nc", True), ("day[0-9].nc", "dayx.nc", False),
    ("day[!0-9].nc", "day7.nc", False), ("day[!0-9].nc", "dayx.nc", True),
    ("day[^0-9].nc", "dayx.nc", True), ("d[!x]y", "d/y", False), ("d[/]y", "d/y", False),
    ("a[]]b", "a]b", True), ("a[!]]b", "a]b", False), ("a[z-a]b", "azb", False),
    ("a[-x]b", "a-b", True), ("a[x-]b", "a-b", True), ("a[.]b", "axb", False),
    # anything else is itself, an unclosed [ too
    ("a+b (1).nc", "a+b (1).nc", True), ("a.b", "axb", False), ("a[b", "a[b", True),
    ("é/ü.nc", "é/ü.nc", True), ("a$^{2}|c", "a$^{2}|c", True),
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


def test_a_local_file_is_itself_with_what_a_stat_says(tmp_path, local_engine, monkeypatch):
    a = touch(tmp_path / "a.nc", 3)
    monkeypatch.chdir(tmp_path)
    [found] = expand_sources(["a.nc"], local_engine)
    stat = run_sync(stat_local(str(a)))
    assert (found.url, found.size, found.etag, found.last_modified) == (
        str(a), 3, None, stat.last_modified)
    assert [s.url for s in expand_sources([f"file://{a}"], local_engine)] == [str(a)]


def test_a_local_directory_is_one_source_not_walked(tmp_path, local_engine):
    store = tmp_path / "store.zarr"
    touch(store / "zarr.json")
    assert [(s.url, s.size) for s in expand_sources([str(store)], local_engine)] == [
        (str(store), None)]


def test_local_globs_match_files_recursively_sorted(tmp_path, local_engine):
    b = touch(tmp_path / "sub" / "deep" / "b.nc")
    a = touch(tmp_path / "a.nc")
    c = touch(tmp_path / "sub" / "c.nc")
    touch(tmp_path / "sub" / "notes.txt")
    (tmp_path / "dir.nc").mkdir()  # a directory the glob matches: not a file
    found = expand_sources([str(tmp_path / "**" / "*.nc")], local_engine)
    assert [s.url for s in found] == [str(a), str(c), str(b)]  # sorted as strings
    assert all(s.size == 10 for s in found)
    assert [s.url for s in expand_sources([str(tmp_path / "sub" / "?.nc")], local_engine)] == [
        str(c)]


def test_a_path_that_exists_is_not_taken_for_a_glob(tmp_path, local_engine):
    bracketed = touch(tmp_path / "run[1].nc")
    touch(tmp_path / "run1.nc")
    assert [s.url for s in expand_sources([str(bracketed)], local_engine)] == [str(bracketed)]


def test_urls_are_taken_as_they_are(local_engine):
    urls = ["https://data.example.org/x.nc", "http://data.example.org/y.nc?v=1",
            "s3://bucket/key.nc"]
    found = expand_sources(urls, local_engine)
    assert [s.url for s in found] == urls
    assert all((s.size, s.etag, s.last_modified) == (None, None, None) for s in found)


def test_a_file_of_sources_skips_comments_and_blank_lines(tmp_path, local_engine):
    files = [touch(tmp_path / f"f{i}.nc") for i in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text(f"# header\n{files[2]}\n\n  {files[0]}  \n   # {files[1]}\n"
                       f"{tmp_path / 'f*.nc'}\n")
    found = expand_sources([str(files[1])], local_engine, from_file=str(listing))
    assert [s.url for s in found] == [str(files[1]), str(files[2]), str(files[0])]


def test_a_file_of_sources_may_be_standard_input(tmp_path, local_engine, monkeypatch):
    a = touch(tmp_path / "a.nc")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{a}\nhttps://h/x.nc\n"))
    assert [s.url for s in expand_sources([], local_engine, from_file="-")] == [
        str(a), "https://h/x.nc"]


def test_missing_things_are_errors_naming_them(tmp_path, local_engine):
    with pytest.raises(SourceNotFoundError, match=r"nothing-here/\*\.nc: no file matches"):
        expand_sources([str(tmp_path / "nothing-here" / "*.nc")], local_engine)
    with pytest.raises(SourceNotFoundError, match="absent.nc: no such file"):
        expand_sources([str(tmp_path / "absent.nc")], local_engine)
    with pytest.raises(SourceNotFoundError, match="list.txt: no such file"):
        expand_sources([], local_engine, from_file=str(tmp_path / "list.txt"))
    with pytest.raises(SourceNotFoundError, match="cannot read"):
        expand_sources([], local_engine, from_file=str(tmp_path))


@pytest.fixture
def bucket_tree(s3_env, s3_bucket):
    keys = ["2020/jan/a.nc", "2020/jan/b.h5", "2020/feb/c.nc", "2021/jan/d.nc", "readme.txt",
            "days/2020-01.nc", "days/2020-02.nc", "days/2021-01.nc", "days/x/2020-03.nc"]
    for key in keys:
        s3_env.put_bytes(key.encode(), s3_bucket, key)
    return f"s3://{s3_bucket}"


@pytest.fixture
def s3_engine(s3_env):
    engine = ReadEngine(ReadOptions())
    yield engine
    engine.close_sync()


def urls(specs, engine, **kwargs):
    return [s.url.split("/", 3)[3] for s in expand_sources(specs, engine, **kwargs)]


def test_an_s3_prefix_is_every_object_under_it_with_what_a_head_says(bucket_tree, s3_engine):
    assert urls([f"{bucket_tree}/2020/"], s3_engine) == [
        "2020/feb/c.nc", "2020/jan/a.nc", "2020/jan/b.h5"]
    [listed] = expand_sources([f"{bucket_tree}/2021/"], s3_engine)
    head = s3_engine.info_sync(listed.url)
    assert (listed.size, listed.etag, listed.last_modified) == (head.size, head.etag,
                                                                head.last_modified)


def test_a_bucket_alone_is_the_whole_bucket(bucket_tree, s3_engine):
    assert len(urls([bucket_tree], s3_engine)) == len(urls([f"{bucket_tree}/"], s3_engine)) == 9


@pytest.mark.parametrize(("pattern", "keys"), [
    ("**/*.nc", ["2020/feb/c.nc", "2020/jan/a.nc", "2021/jan/d.nc", "days/2020-01.nc",
                 "days/2020-02.nc", "days/2021-01.nc", "days/x/2020-03.nc"]),
    ("*/2020-*.nc", ["days/2020-01.nc", "days/2020-02.nc"]),
    ("days/**/2020-*.nc", ["days/2020-01.nc", "days/2020-02.nc", "days/x/2020-03.nc"]),
    ("*/jan/?.nc", ["2020/jan/a.nc", "2021/jan/d.nc"]),
    ("days/202[0-9]-0[!1].nc", ["days/2020-02.nc"]),
    ("20[0-9][0-9]/*/*.h5", ["2020/jan/b.h5"]),
])
def test_s3_globs(bucket_tree, s3_engine, pattern, keys):
    found = expand_sources([f"{bucket_tree}/{pattern}"], s3_engine)
    assert [s.url.split("/", 3)[3] for s in found] == keys
    assert all(s.size is not None and s.etag for s in found)


def test_an_s3_glob_lists_only_under_its_literal_folders(bucket_tree, s3_engine):
    expand_sources([f"{bucket_tree}/days/x/*.nc"], s3_engine)
    assert s3_engine.stats.requests == 1  # one page: days/x/ holds one object


def test_s3_patterns_and_prefixes_that_match_nothing_are_errors(bucket_tree, s3_engine):
    with pytest.raises(SourceNotFoundError, match=r"\*\*/\*\.grib: no object matches"):
        expand_sources([f"{bucket_tree}/**/*.grib"], s3_engine)
    with pytest.raises(SourceNotFoundError, match="2019/: no objects under this prefix"):
        expand_sources([f"{bucket_tree}/2019/"], s3_engine)


def test_order_is_as_given_and_each_object_once(bucket_tree, s3_engine, tmp_path):
    b = bucket_tree
    local = touch(tmp_path / "z.nc")
    found = expand_sources([str(local), f"{b}/2021/", f"{b}/**/d.nc", f"{b}/2020/jan/",
                            f"{b}/2020/jan/a.nc", str(local)], s3_engine)
    assert [s.url for s in found] == [str(local), f"{b}/2021/jan/d.nc", f"{b}/2020/jan/a.nc",
                                      f"{b}/2020/jan/b.h5"]
    assert found[2].etag  # the listing's, not the bare URL named later
    assert os.path.isabs(found[0].url)


def test_all_listings_of_one_call_run_at_once(bucket_tree, s3_env, fault_proxy):
    fault_proxy.latency = 0.3
    engine = ReadEngine(ReadOptions(endpoint_url=fault_proxy.url))
    specs = [f"{bucket_tree}/{prefix}/" for prefix in ("2020", "2021", "days")]
    run_sync(expand_sources_async(specs, engine))
    assert fault_proxy.max_in_flight == 3
    engine.close_sync()


def test_the_first_failure_ends_the_call(bucket_tree, s3_engine, tmp_path):
    with pytest.raises(SourceNotFoundError, match="nope"):
        expand_sources([f"{bucket_tree}/2020/", str(tmp_path / "nope" / "*.nc")], s3_engine)
