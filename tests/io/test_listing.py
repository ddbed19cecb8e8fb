"""Listing S3 prefixes (ListObjectsV2) through the engine, against the SeaweedFS test server."""

from __future__ import annotations

import time

import pytest

from refindex.errors import FetchError, SourceNotFoundError
from refindex.io import ReadEngine, ReadOptions
from refindex.io.listing import parse_page
from refindex.io.loop import run_sync

FAST = ReadOptions(retries=3, backoff_base=0.01, backoff_max=0.05, timeout=10)


def listed(engine: ReadEngine, url: str, page_size: int = 1000):
    return run_sync(engine.list_objects(url, page_size))


@pytest.fixture
def engine(s3_env):
    engine = ReadEngine(FAST)
    yield engine
    engine.close_sync()


def test_a_prefix_lists_every_object_with_what_a_head_says(engine, s3_env, s3_bucket):
    for i in range(3):
        s3_env.put_bytes(b"x" * (100 + i), s3_bucket, f"daily/d{i}.nc")
    s3_env.put_bytes(b"elsewhere", s3_bucket, "monthly/m0.nc")
    found = listed(engine, f"s3://{s3_bucket}/daily/")
    assert [o.url for o in found] == [f"s3://{s3_bucket}/daily/d{i}.nc" for i in range(3)]
    for info in found:
        head = engine.info_sync(info.url)
        assert (info.size, info.etag, info.last_modified) == (head.size, head.etag,
                                                              head.last_modified)


def test_pages_are_followed_to_the_end(engine, s3_env, s3_bucket):
    for i in range(7):
        s3_env.put_bytes(b"y", s3_bucket, f"p/{i}")
    before = engine.stats.total("requests")
    found = listed(engine, f"s3://{s3_bucket}/p/", page_size=2)
    assert [o.url.rsplit("/", 1)[-1] for o in found] == [str(i) for i in range(7)]
    assert engine.stats.total("requests") - before == 4


def test_nested_prefixes_and_keys_that_need_escaping(engine, s3_env, s3_bucket):
    keys = ["a/b/c.nc", "a/b c/d+e.nc", "a/é/ü.nc", "a/x&y=z.nc"]
    for key in keys:
        s3_env.put_bytes(key.encode(), s3_bucket, key)
    assert sorted(o.url for o in listed(engine, f"s3://{s3_bucket}/a/")) == sorted(
        f"s3://{s3_bucket}/{k}" for k in keys)
    assert [o.url for o in listed(engine, f"s3://{s3_bucket}/a/b c/")] == [
        f"s3://{s3_bucket}/a/b c/d+e.nc"]
    assert engine.read_sync([_whole(o) for o in listed(engine, f"s3://{s3_bucket}/a/é/")]) == [
        b"a/\xc3\xa9/\xc3\xbc.nc"]


def _whole(info):
    from refindex.io import RangeRequest

    return RangeRequest(info.url, 0, info.size, etag=info.etag, size=info.size)


def test_an_empty_prefix_lists_nothing(engine, s3_bucket):
    assert listed(engine, f"s3://{s3_bucket}/none/") == []


def test_a_missing_bucket_is_an_error_naming_it(engine):
    with pytest.raises((SourceNotFoundError, FetchError), match="s3://no-such-bucket-x/p/"):
        listed(engine, "s3://no-such-bucket-x/p/")


def test_a_listing_answered_with_slowdowns_still_completes(s3_env, s3_bucket, fault_proxy):
    for i in range(5):
        s3_env.put_bytes(b"z", s3_bucket, f"f/{i}")
    engine = ReadEngine(FAST.replace(endpoint_url=fault_proxy.url))
    fault_proxy.force("slowdown", 2)
    found = listed(engine, f"s3://{s3_bucket}/f/", page_size=2)
    assert len(found) == 5 and fault_proxy.injected["slowdown"] == 2
    assert engine.stats.total("retries") == 2


def test_an_unreachable_endpoint_fails_quickly_naming_the_prefix(s3_env, s3_bucket):
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine = ReadEngine(ReadOptions(endpoint_url=f"http://127.0.0.1:{port}", retries=1,
                                    backoff_base=0.01, timeout=2))
    started = time.monotonic()
    with pytest.raises(FetchError, match=f"s3://{s3_bucket}/p/"):
        listed(engine, f"s3://{s3_bucket}/p/")
    assert time.monotonic() - started < 10


def test_a_malformed_answer_is_an_error():
    with pytest.raises(FetchError, match="not XML"):
        parse_page(b"<oops", "b", "s3://b/p/")
    with pytest.raises(FetchError, match="unexpected listing answer"):
        parse_page(b"<Error><Code>X</Code></Error>", "b", "s3://b/p/")
    truncated = (b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
    with pytest.raises(FetchError, match="no continuation token"):
        parse_page(truncated, "b", "s3://b/p/")
