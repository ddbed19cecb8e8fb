"""ReadEngine over S3 (a real SeaweedFS on loopback): presigned range GETs and HEADs."""

import pytest

from refindex.errors import FetchError, SourceChangedError, SourceNotFoundError
from refindex.io import RangeRequest, ReadEngine, ReadOptions

FAST = ReadOptions(retries=2, backoff_base=0.01, backoff_max=0.05, timeout=10)


@pytest.fixture
def engine(s3_env):
    engine = ReadEngine(FAST)
    yield engine
    engine.close_sync()


@pytest.fixture
def s3_object(s3_server, s3_bucket, payload) -> str:
    return s3_server.put_bytes(payload, s3_bucket, "dir/data.bin")


def test_random_ranges_are_exact(engine, s3_object, payload, random_ranges):
    ranges = random_ranges(len(payload))
    results = engine.read_sync([RangeRequest(s3_object, off, length) for off, length in ranges])
    assert results == [payload[offset : offset + length] for offset, length in ranges]


def test_whole_object_read(engine, s3_object, payload):
    assert engine.read_sync([RangeRequest(s3_object, 0, -1)]) == [payload]


def test_info_gives_size_etag_and_last_modified(engine, s3_object, payload):
    info = engine.info_sync(s3_object)
    assert info.url == s3_object
    assert info.size == len(payload)
    assert info.etag and info.last_modified


def test_missing_key_raises_not_found_naming_url(engine, s3_bucket):
    url = f"s3://{s3_bucket}/absent.h5"
    with pytest.raises(SourceNotFoundError, match=url):
        engine.read_sync([RangeRequest(url, 0, 10)])


def test_info_of_missing_key_raises_not_found(engine, s3_bucket):
    with pytest.raises(SourceNotFoundError):
        engine.info_sync(f"s3://{s3_bucket}/absent.h5")


def test_range_past_end_raises_fetch_error(engine, s3_object, payload):
    with pytest.raises(FetchError, match="past the end"):
        engine.read_sync([RangeRequest(s3_object, len(payload) - 1, 2)])


def test_overwritten_object_raises_source_changed(engine, s3_server, s3_bucket, s3_object):
    info = engine.info_sync(s3_object)
    s3_server.put_bytes(b"something else entirely", s3_bucket, "dir/data.bin")
    with pytest.raises(SourceChangedError):
        engine.read_sync([RangeRequest(s3_object, 0, 5, etag=info.etag)])


def test_wrong_size_raises_source_changed(engine, s3_object, payload):
    with pytest.raises(SourceChangedError, match="size"):
        engine.read_sync([RangeRequest(s3_object, 0, 5, size=len(payload) * 2)])


def test_errors_name_the_s3_url_not_the_presigned_one(engine, s3_bucket):
    with pytest.raises(SourceNotFoundError) as caught:
        engine.read_sync([RangeRequest(f"s3://{s3_bucket}/absent.h5", 0, 10)])
    assert "Signature" not in str(caught.value)


def test_anonymous_read_of_private_bucket_is_access_denied(s3_env, s3_object):
    engine = ReadEngine(FAST.replace(anon=True))
    with pytest.raises(FetchError, match="403"):
        engine.read_sync([RangeRequest(s3_object, 0, 10)])
    engine.close_sync()


def test_endpoint_option_overrides_environment(s3_env, s3_object, payload, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    engine = ReadEngine(FAST.replace(endpoint_url=s3_env.endpoint_url))
    assert engine.read_sync([RangeRequest(s3_object, 0, 10)]) == [payload[:10]]
    engine.close_sync()


def test_stats_count_s3_requests(engine, s3_object):
    engine.read_sync([RangeRequest(s3_object, 0, 10), RangeRequest(s3_object, 10, 10)])
    engine.info_sync(s3_object)
    counts = engine.stats.by_scheme()["s3"]
    assert (counts.requests, counts.bytes, counts.failures) == (3, 20, 0)


@pytest.mark.parametrize("key", ["with space/and+plus.bin", "ünïcode/~tilde=eq&amp.bin"])
def test_keys_that_need_quoting_are_read_exactly(engine, s3_server, s3_bucket, payload, key):
    url = s3_server.put_bytes(payload, s3_bucket, key)
    assert engine.read_sync([RangeRequest(url, 100, 5000)]) == [payload[100:5100]]


def test_presigned_urls_on_aws_use_virtual_hosted_style_where_the_bucket_allows(monkeypatch):
    from refindex.io.s3 import S3Presigner

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    presigner = S3Presigner(ReadOptions(region="eu-west-1", presign_expires=600))
    url = presigner.sign("GET", "s3://my-bucket/a b/c.h5")
    assert url.startswith("https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c.h5?")
    assert "X-Amz-Expires=600" in url and "X-Amz-Signature=" in url
    dotted = presigner.sign("HEAD", "s3://my.dotted.bucket/k")
    assert dotted.startswith("https://s3.eu-west-1.amazonaws.com/my.dotted.bucket/k?")


def test_anonymous_urls_are_unsigned():
    from refindex.io.s3 import S3Presigner

    url = S3Presigner(ReadOptions(anon=True, region="us-west-2")).sign("GET", "s3://b-1/k")
    assert url == "https://b-1.s3.us-west-2.amazonaws.com/k"


def test_missing_credentials_are_a_clear_error():
    from refindex.io.s3 import S3Presigner

    with pytest.raises(FetchError, match=r"s3://b-1/k: cannot presign .*no AWS credentials"):
        S3Presigner(ReadOptions()).sign("GET", "s3://b-1/k")


def test_a_read_with_identity_answers_as_a_head_does(engine, s3_object, payload):
    data, info = engine.read_with_identity_sync(RangeRequest(s3_object, 100, 50))
    assert data == payload[100:150]
    head = engine.info_sync(s3_object)
    assert (info.size, info.etag, info.last_modified) == (head.size, head.etag,
                                                           head.last_modified)


def test_a_read_with_identity_of_a_local_file(engine, tmp_path, payload):
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    data, info = engine.read_with_identity_sync(RangeRequest(str(path), 10, 5))
    assert data == payload[10:15] and info.size == len(payload)


def test_a_read_with_identity_of_a_missing_key_is_not_found(engine, s3_bucket):
    with pytest.raises(SourceNotFoundError):
        engine.read_with_identity_sync(RangeRequest(f"s3://{s3_bucket}/absent.h5", 0, 10))
