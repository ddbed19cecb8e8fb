"""The source policy: what a sidecar may make refindex read, refused before any request."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
import ujson
import zarr

import refindex
from refindex.errors import SourcePolicyError
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.io.policy import SourcePolicy, is_metadata_host

METADATA_URL = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


@pytest.fixture
def requests_sent(monkeypatch) -> list[str]:
    """Every URL an aiohttp session of this process is asked for during the test."""
    sent: list[str] = []
    original = aiohttp.ClientSession._request

    def spy(self, method, url, *args, **kwargs):
        sent.append(str(url))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", spy)
    return sent


def _document(url: str) -> dict:
    """A kerchunk sidecar with one 16-byte chunk of ``url``."""
    zarray = ('{"chunks":[16],"compressor":null,"dtype":"|u1","fill_value":0,"filters":null,'
              '"order":"C","shape":[16],"zarr_format":2}')
    return {"version": 1, "refs": {".zgroup": '{"zarr_format":2}', "x/.zarray": zarray,
                                   "x/0": [url, 0, 16]}}


def _read_x(store) -> bytes:
    return zarr.open_group(store, mode="r", zarr_format=2)["x"][:].tobytes()


def test_metadata_address_in_a_sidecar_is_refused_without_a_request(requests_sent):
    store = refindex.open_store(_document(METADATA_URL))
    with pytest.raises(SourcePolicyError) as caught:
        _read_x(store)
    message = str(caught.value)
    assert "x/0" in message and METADATA_URL in message and "link-local" in message
    assert requests_sent == []


def test_engine_refuses_metadata_address_before_any_request(requests_sent):
    engine = ReadEngine()
    with pytest.raises(SourcePolicyError, match="169.254.169.254"):
        engine.read_sync([RangeRequest(METADATA_URL, 0, 10)])
    with pytest.raises(SourcePolicyError, match="169.254.169.254"):
        engine.info_sync(METADATA_URL)
    assert requests_sent == []
    assert engine.stats.requests == 0


@pytest.mark.parametrize("host", [
    "169.254.169.254", "169.254.0.1", "[fd00:ec2::254]", "[fe80::1]", "100.100.100.200",
    "metadata.google.internal", "METADATA.Google.Internal.", "metadata.goog", "metadata",
    "instance-data", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518",
    "[::ffff:169.254.169.254]", "[64:ff9b::a9fe:a9fe]",
])
def test_every_spelling_of_a_metadata_address_is_refused(host):
    assert is_metadata_host(host.strip("[]"))
    with pytest.raises(SourcePolicyError, match="link-local or cloud-metadata"):
        SourcePolicy().check(f"http://{host}/latest/meta-data")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "example.com", "10.0.0.1",
                                  "[::1]", "metadata.example.com", "cafe"])
def test_ordinary_hosts_are_allowed(host):
    assert not is_metadata_host(host.strip("[]"))
    SourcePolicy().check(f"https://{host}/data.h5")


def test_allowed_sources_naming_the_metadata_host_allows_it():
    SourcePolicy(("http://169.254.169.254/",)).check(METADATA_URL)


def test_a_broad_prefix_does_not_allow_the_metadata_host():
    with pytest.raises(SourcePolicyError, match="allowed_sources names it"):
        SourcePolicy(("http://", "https://")).check(METADATA_URL)


def test_local_file_named_by_a_remote_sidecar_is_refused(http_server, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 16)
    sidecar = http_server.put("refs.json", ujson.dumps(_document(str(secret))).encode())
    with pytest.raises(SourcePolicyError, match="local file named by a sidecar"):
        _read_x(refindex.open_store(sidecar))


def test_local_file_named_by_a_local_sidecar_is_read(tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(16)))
    sidecar = tmp_path / "refs.json"
    sidecar.write_text(ujson.dumps(_document(str(data))))
    assert _read_x(refindex.open_store(sidecar)) == bytes(range(16))


def test_file_url_from_a_remote_sidecar_is_refused():
    policy = SourcePolicy(local_sources=False)
    with pytest.raises(SourcePolicyError, match="local file"):
        policy.check("file:///etc/passwd")
    with pytest.raises(SourcePolicyError, match="local file"):
        policy.check("/etc/passwd")


def test_file_url_naming_another_host_is_refused():
    with pytest.raises(SourcePolicyError, match="local path"):
        SourcePolicy().check("file://fileserver/share/data.h5")


def test_allowed_sources_can_let_a_remote_sidecar_read_one_local_directory(tmp_path):
    policy = SourcePolicy((f"{tmp_path}/",), local_sources=False)
    policy.check(str(tmp_path / "data.h5"))
    policy.check(f"file://{tmp_path}/data.h5")
    with pytest.raises(SourcePolicyError, match="allowed_sources"):
        policy.check("/etc/passwd")


def test_allowed_sources_narrows_to_one_bucket(s3_env, s3_server, s3_bucket, payload):
    allowed, other = s3_bucket, s3_server.create_bucket(f"other-{uuid.uuid4().hex[:12]}")
    good = s3_server.put_bytes(payload, allowed, "data.bin")
    bad = s3_server.put_bytes(payload, other, "data.bin")
    engine = ReadEngine(ReadOptions(allowed_sources=[f"s3://{allowed}/"]))
    assert engine.read_sync([RangeRequest(good, 0, 8)]) == [payload[:8]]
    with pytest.raises(SourcePolicyError, match=rf"{bad}: .*allowed_sources"):
        engine.read_sync([RangeRequest(bad, 0, 8)])
    with pytest.raises(SourcePolicyError):
        engine.read_sync([RangeRequest(f"s3://{allowed}-evil/data.bin", 0, 8)])
    engine.close_sync()


def test_prefixes_match_at_a_boundary():
    policy = SourcePolicy(("s3://bucket/dir",))
    policy.check("s3://bucket/dir/x.h5")
    policy.check("S3://bucket/dir")
    with pytest.raises(SourcePolicyError):
        policy.check("s3://bucket/directory/x.h5")


def test_redirect_to_a_metadata_address_is_refused(archive_server, archive_netrc,
                                                   requests_sent):
    archive_server.moved_to = METADATA_URL
    source = f"http://127.0.0.1:{archive_server.port}/moved"
    engine = ReadEngine(ReadOptions(retries=0))
    with pytest.raises(SourcePolicyError, match=rf"{source}: redirected to {METADATA_URL}"):
        engine.read_sync([RangeRequest(source, 0, 8)])
    assert not any("169.254" in url for url in requests_sent)
    engine.close_sync()


def test_redirect_to_a_local_file_is_refused(archive_server):
    archive_server.moved_to = "file:///etc/passwd"
    engine = ReadEngine(ReadOptions(retries=0))
    with pytest.raises(SourcePolicyError, match="redirects may only lead to http"):
        engine.read_sync([RangeRequest(f"http://127.0.0.1:{archive_server.port}/moved", 0, 8)])
    engine.close_sync()


def test_allowed_sources_from_the_environment_is_a_list_of_prefixes():
    options = ReadOptions.from_env({"REFINDEX_ALLOWED_SOURCES": "s3://a/, https://b.org/"})
    assert options.allowed_sources == ("s3://a/", "https://b.org/")
