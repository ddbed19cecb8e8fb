"""Listing S3 prefixes (ListObjectsV2) through the engine, against the SeaweedFS test server."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest

from refindex.errors import FetchError, SourceNotFoundError, SourcePolicyError
from refindex.io import ReadEngine, ReadOptions
from refindex.io.listing import list_objects, list_objects_sync, parse_page

FAST = ReadOptions(retries=3, backoff_base=0.01, backoff_max=0.05, timeout=10)


@pytest.fixture
def engine(s3_env):
    engine = ReadEngine(FAST)
    yield engine
    engine.close_sync()


def keys_of(found, bucket):
    return [info.url.removeprefix(f"s3://{bucket}/") for info in found]


def test_a_prefix_lists_every_object_with_what_a_head_says(engine, s3_env, s3_bucket):
    bodies = {f"daily/d{i}.nc": b"x" * (100 + i) for i in range(3)}
    for key, body in bodies.items():
        s3_env.put_bytes(body, s3_bucket, key)
    s3_env.put_bytes(b"elsewhere", s3_bucket, "monthly/m0.nc")
    found = list_objects_sync(engine, f"s3://{s3_bucket}/daily/")
    assert keys_of(found, s3_bucket) == list(bodies)
    for info, body in zip(found, bodies.values(), strict=True):
        head = engine.info_sync(info.url)
        assert info.size == head.size == len(body)
        assert info.etag == head.etag == f'"{hashlib.md5(body).hexdigest()}"'
        assert info.last_modified == head.last_modified
        assert info.last_modified.endswith(" GMT")


def test_the_whole_bucket_is_listed_under_an_empty_prefix(engine, s3_env, s3_bucket):
    for key in ("b", "a/x", "c/d/e"):
        s3_env.put_bytes(b"1", s3_bucket, key)
    assert keys_of(list_objects_sync(engine, f"s3://{s3_bucket}/"), s3_bucket) == [
        "a/x", "b", "c/d/e"]


def test_folder_markers_are_left_out(engine, s3_env, s3_bucket):
    s3_env.put_bytes(b"", s3_bucket, "m/folder/")
    s3_env.put_bytes(b"", s3_bucket, "m/empty.nc")
    s3_env.put_bytes(b"data", s3_bucket, "m/folder/x.nc")
    assert keys_of(list_objects_sync(engine, f"s3://{s3_bucket}/m/"), s3_bucket) == [
        "m/empty.nc", "m/folder/x.nc"]


def test_pages_are_followed_to_the_end_one_request_each(engine, s3_env, s3_bucket):
    for i in range(7):
        s3_env.put_bytes(b"y", s3_bucket, f"p/{i}")
    found = list_objects_sync(engine, f"s3://{s3_bucket}/p/", page_size=2)
    assert keys_of(found, s3_bucket) == [f"p/{i}" for i in range(7)]
    counts = engine.stats.by_scheme()["s3"]
    assert (counts.requests, counts.fetches, counts.retries) == (4, 4, 0)


def test_nested_prefixes_list_only_what_is_under_them(engine, s3_env, s3_bucket):
    for key in ("n/a/1", "n/a/b/2", "n/ab/3", "n/b/4"):
        s3_env.put_bytes(b"z", s3_bucket, key)
    assert keys_of(list_objects_sync(engine, f"s3://{s3_bucket}/n/a/"), s3_bucket) == [
        "n/a/1", "n/a/b/2"]
    assert keys_of(list_objects_sync(engine, f"s3://{s3_bucket}/n/a"), s3_bucket) == [
        "n/a/1", "n/a/b/2", "n/ab/3"]


def test_keys_that_need_escaping_are_listed_as_they_are(engine, s3_env, s3_bucket):
    keys = ["e/b c/d+e.nc", "e/é/ü.nc", "e/x&y=z.nc", "e/p%41.nc", "e/plus+.nc", "e/~t!'()*.nc"]
    for key in keys:
        s3_env.put_bytes(key.encode(), s3_bucket, key)
    found = list_objects_sync(engine, f"s3://{s3_bucket}/e/")
    assert keys_of(found, s3_bucket) == sorted(keys)
    for info in found:
        assert engine.info_sync(info.url).etag == info.etag
    assert keys_of(list_objects_sync(engine, f"s3://{s3_bucket}/e/b c/"), s3_bucket) == [
        "e/b c/d+e.nc"]
    assert keys_of(list_objects_sync(engine, f"s3://{s3_bucket}/e/é/"), s3_bucket) == [
        "e/é/ü.nc"]


def test_an_empty_prefix_lists_nothing(engine, s3_bucket):
    assert list_objects_sync(engine, f"s3://{s3_bucket}/none/") == []


def test_a_missing_bucket_is_an_error_naming_it(engine):
    with pytest.raises(SourceNotFoundError, match=r"s3://no-such-bucket-x/p/.*NoSuchBucket"):
        list_objects_sync(engine, "s3://no-such-bucket-x/p/")


def test_anonymous_listing_of_a_public_bucket(s3_server, s3_bucket):
    s3_server.put_bytes(b"open", s3_bucket, "pub/a.nc")
    s3_server.client().put_bucket_acl(Bucket=s3_bucket, ACL="public-read")
    engine = ReadEngine(FAST.replace(anon=True, endpoint_url=s3_server.endpoint_url))
    found = list_objects_sync(engine, f"s3://{s3_bucket}/pub/")
    assert [(info.url, info.size) for info in found] == [(f"s3://{s3_bucket}/pub/a.nc", 4)]
    engine.close_sync()


def test_anonymous_listing_of_a_private_bucket_is_access_denied(s3_server, s3_bucket):
    engine = ReadEngine(FAST.replace(anon=True, endpoint_url=s3_server.endpoint_url))
    with pytest.raises(FetchError, match=rf"s3://{s3_bucket}/p/: access denied \(HTTP 403\)"):
        list_objects_sync(engine, f"s3://{s3_bucket}/p/")
    engine.close_sync()


@pytest.mark.parametrize("fault", ["slowdown", "throttle", "reset", "truncate"])
def test_a_listing_met_with_transient_failures_still_completes(s3_env, s3_bucket, fault_proxy,
                                                               fault):
    for i in range(5):
        s3_env.put_bytes(b"z" * i, s3_bucket, f"f/{i}")
    engine = ReadEngine(FAST.replace(endpoint_url=fault_proxy.url))
    fault_proxy.retry_after = "0"
    fault_proxy.force(fault, 2)
    found = list_objects_sync(engine, f"s3://{s3_bucket}/f/", page_size=2)
    assert [(info.url, info.size) for info in found] == [
        (f"s3://{s3_bucket}/f/{i}", i) for i in range(5)]
    assert fault_proxy.injected[fault] == 2
    retries = engine.stats.total("retries")
    # aiohttp itself may resend a GET whose reused connection was reset
    assert retries == 2 or (fault == "reset" and retries == 1)
    engine.close_sync()


def test_retries_exhausted_is_an_error_naming_the_prefix_and_cause(s3_env, s3_bucket,
                                                                   fault_proxy):
    engine = ReadEngine(FAST.replace(endpoint_url=fault_proxy.url, retries=1))
    fault_proxy.force("slowdown", 5)
    with pytest.raises(FetchError, match=rf"s3://{s3_bucket}/f/: HTTP 503 SlowDown.*gave up"):
        list_objects_sync(engine, f"s3://{s3_bucket}/f/")
    engine.close_sync()


def test_an_unreachable_endpoint_fails_quickly_naming_the_prefix(s3_env, s3_bucket):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    engine = ReadEngine(ReadOptions(endpoint_url=f"http://127.0.0.1:{port}", retries=1,
                                    backoff_base=0.01, timeout=2))
    started = time.monotonic()
    with pytest.raises(FetchError, match=f"s3://{s3_bucket}/p/"):
        list_objects_sync(engine, f"s3://{s3_bucket}/p/")
    assert time.monotonic() - started < 5


def test_the_source_policy_is_checked_before_any_request(engine, s3_bucket):
    fenced = ReadEngine(FAST.replace(allowed_sources=("s3://elsewhere/",)))
    with pytest.raises(SourcePolicyError, match=f"s3://{s3_bucket}/p/"):
        list_objects_sync(fenced, f"s3://{s3_bucket}/p/")
    assert fenced.stats.requests == 0


def test_the_async_form_and_the_engines_method_agree(engine, s3_env, s3_bucket):
    from refindex.io.loop import run_sync

    s3_env.put_bytes(b"1", s3_bucket, "q/one")
    url = f"s3://{s3_bucket}/q/"
    assert run_sync(list_objects(engine, url)) == run_sync(engine.list_objects(url)) == (
        list_objects_sync(engine, url))


@pytest.mark.parametrize("url", ["https://host/p/", "s3:///p/"])
def test_only_s3_prefixes_can_be_listed(engine, url):
    with pytest.raises(FetchError, match="s3://"):
        list_objects_sync(engine, url)


@pytest.mark.parametrize("page_size", [0, 1001])
def test_page_sizes_are_those_s3_answers(engine, page_size):
    with pytest.raises(ValueError, match="page_size"):
        list_objects_sync(engine, "s3://b/p/", page_size=page_size)


def page(contents: str, *, encoded: bool = False, truncated: str = "") -> bytes:
    encoding = "<EncodingType>url</EncodingType>" if encoded else ""
    return (f'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{encoding}'
            f"{truncated or '<IsTruncated>false</IsTruncated>'}{contents}"
            "</ListBucketResult>").encode()


def item(key: str, size: int = 1, modified: str = "2026-12-04T02:26:42.000Z") -> str:
    return (f"<Contents><Key>{key}</Key><Size>{size}</Size><ETag>&quot;abc&quot;</ETag>"
            f"<LastModified>{modified}</LastModified></Contents>")


def test_aws_times_become_http_dates_of_whole_seconds():
    objects, token = parse_page(page(item("k", modified="2026-12-04T02:26:42.789Z")), "b", "u")
    assert token is None
    assert (objects[0].etag, objects[0].last_modified) == ('"abc"', "Fri, 04 Dec 2026 02:26:42 GMT")


def test_keys_are_decoded_only_when_the_answer_says_it_encoded_them():
    encoded, _ = parse_page(page(item("a+b%2Bc%25.nc"), encoded=True), "b", "u")
    raw, _ = parse_page(page(item("a+b%2Bc%25.nc")), "b", "u")
    assert [o.url for o in encoded + raw] == ["s3://b/a b+c%.nc", "s3://b/a+b%2Bc%25.nc"]


def test_a_truncated_page_gives_its_continuation_token():
    truncated = ("<IsTruncated>true</IsTruncated>"
                 "<NextContinuationToken>next/1</NextContinuationToken>")
    assert parse_page(page(item("k"), truncated=truncated), "b", "u")[1] == "next/1"


def test_a_malformed_answer_is_an_error_naming_the_prefix():
    with pytest.raises(FetchError, match="s3://b/p/: the listing is not XML"):
        parse_page(b"<oops", "b", "s3://b/p/")
    with pytest.raises(FetchError, match="unexpected listing answer"):
        parse_page(b"<Error><Code>X</Code></Error>", "b", "s3://b/p/")
    with pytest.raises(FetchError, match="no continuation token"):
        parse_page(page("", truncated="<IsTruncated>true</IsTruncated>"), "b", "s3://b/p/")
    with pytest.raises(FetchError, match="no size"):
        parse_page(page("<Contents><Key>k</Key></Contents>"), "b", "s3://b/p/")
