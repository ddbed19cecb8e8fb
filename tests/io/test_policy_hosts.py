"""The source policy's host classes: a remote sidecar names sources no more internal than the
host it came from (public < private networks < loopback), and a host name is judged by the
addresses it resolves to, before any connection."""

from __future__ import annotations

import socket

import pytest
import ujson
import zarr

import refindex
import refindex.io.sessions
import refindex.store.reference
from refindex.errors import SourcePolicyError
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.io.policy import SourcePolicy, host_class, policy_for, sidecar_host_class


def _document(url: str) -> dict:
    """A kerchunk sidecar with one 16-byte chunk of ``url``."""
    zarray = ('{"chunks":[16],"compressor":null,"dtype":"|u1","fill_value":0,"filters":null,'
              '"order":"C","shape":[16],"zarr_format":2}')
    return {"version": 1, "refs": {".zgroup": '{"zarr_format":2}', "x/.zarray": zarray,
                                   "x/0": [url, 0, 16]}}


def _read_x(store) -> bytes:
    return zarr.open_group(store, mode="r", zarr_format=2)["x"][:].tobytes()


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", "any"), ("127.8.9.10", "any"), ("::1", "any"), ("localhost", "any"),
    ("LocalHost.", "any"), ("0x7f000001", "any"), ("10.1.2.3", "private"),
    ("172.20.0.1", "private"), ("192.168.1.1", "private"), ("100.64.0.1", "private"),
    ("fd12::1", "private"), ("::ffff:10.0.0.1", "private"), ("8.8.8.8", "public"),
    ("2001:db8::1", "public"), ("data.example.org", None),
])
def test_the_class_of_a_host(host, expected):
    assert host_class(host) == expected


def test_a_public_policy_refuses_private_and_loopback_addresses():
    policy = SourcePolicy(source_hosts="public")
    policy.check("https://8.8.8.8/data.h5")
    with pytest.raises(SourcePolicyError, match="10.0.0.5 is a private-network address"):
        policy.check("http://10.0.0.5/data.h5")
    with pytest.raises(SourcePolicyError, match="127.0.0.1 is a loopback address"):
        policy.check("http://127.0.0.1:9000/data.h5")
    with pytest.raises(SourcePolicyError, match="loopback"):
        policy.check("http://localhost/data.h5")


def test_a_private_policy_allows_private_networks_but_not_loopback():
    policy = SourcePolicy(source_hosts="private")
    policy.check("http://10.0.0.5/data.h5")
    with pytest.raises(SourcePolicyError, match="source_hosts='any'"):
        policy.check("http://127.0.0.1/data.h5")


def test_hosts_named_by_allowed_sources_or_the_endpoint_are_always_allowed():
    SourcePolicy(("http://127.0.0.1:9000/",), source_hosts="public").check(
        "http://127.0.0.1:9000/data.h5")
    options = ReadOptions(endpoint_url="http://10.0.0.9:8333", source_hosts="public")
    policy_for(options).check("http://10.0.0.9:8333/bucket/data.h5")


def test_a_sidecar_is_of_the_class_of_its_host():
    assert sidecar_host_class("http://127.0.0.1:8000/x.json", ReadOptions()) == "any"
    assert sidecar_host_class("https://10.2.3.4/x.json", ReadOptions()) == "private"
    assert sidecar_host_class("https://1.2.3.4/x.json", ReadOptions()) == "public"
    assert sidecar_host_class("s3://bucket/x.json", ReadOptions()) == "public"
    loopback_s3 = ReadOptions(endpoint_url="http://127.0.0.1:8333")
    assert sidecar_host_class("s3://bucket/x.json", loopback_s3) == "any"


def test_a_sidecar_on_loopback_may_name_loopback_sources(http_server):
    data = http_server.put("data.bin", bytes(range(16)))
    sidecar = http_server.put("refs.json", ujson.dumps(_document(data)).encode())
    assert _read_x(refindex.open_store(sidecar)) == bytes(range(16))


def test_a_sidecar_from_a_public_host_may_not_name_loopback_sources(http_server, monkeypatch):
    # As if the sidecar came from the internet: its host's class is what open_store asks.
    monkeypatch.setattr(refindex.store.reference, "sidecar_host_class",
                        lambda location, options: "public")
    data = http_server.put("data.bin", bytes(range(16)))
    sidecar = http_server.put("refs.json", ujson.dumps(_document(data)).encode())
    store = refindex.open_store(sidecar)
    with pytest.raises(SourcePolicyError) as caught:
        _read_x(store)
    message = str(caught.value)
    assert sidecar in message and data in message and "loopback address" in message
    assert "/data.bin" not in [path for _, path, _ in http_server.log]  # never asked


def test_source_hosts_given_by_the_caller_allows_more(http_server, monkeypatch):
    monkeypatch.setattr(refindex.store.reference, "sidecar_host_class",
                        lambda location, options: "public")
    data = http_server.put("data.bin", bytes(range(16)))
    sidecar = http_server.put("refs.json", ujson.dumps(_document(data)).encode())
    assert _read_x(refindex.open_store(sidecar, source_hosts="any")) == bytes(range(16))


class _FixedResolver:
    """DNS for a test without DNS: every name resolves to ``address``."""

    address = "169.254.169.254"

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": self.address, "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self):
        pass


def test_a_name_that_resolves_to_a_metadata_address_is_refused_before_connecting(
        monkeypatch):
    monkeypatch.setattr(refindex.io.sessions, "DefaultResolver", _FixedResolver)
    engine = ReadEngine(ReadOptions(retries=0))
    with pytest.raises(SourcePolicyError, match=r"http://innocent\.test/data\.h5: innocent\.test "
                                                r"resolves to 169\.254\.169\.254.*metadata"):
        engine.read_sync([RangeRequest("http://innocent.test/data.h5", 0, 16)])
    assert engine.stats.total("bytes_fetched") == 0


def test_a_name_that_resolves_to_loopback_is_refused_for_a_public_policy(monkeypatch):
    monkeypatch.setattr(_FixedResolver, "address", "127.0.0.1")
    monkeypatch.setattr(refindex.io.sessions, "DefaultResolver", _FixedResolver)
    engine = ReadEngine(ReadOptions(retries=0, source_hosts="public"))
    with pytest.raises(SourcePolicyError, match="resolves to 127.0.0.1.*loopback"):
        engine.read_sync([RangeRequest("http://innocent.test/data.h5", 0, 16)])


def test_source_hosts_comes_from_the_environment_and_is_checked():
    assert ReadOptions.from_env({"REFINDEX_SOURCE_HOSTS": "private"}).source_hosts == "private"
    assert ReadOptions.from_env({}).source_hosts is None
    with pytest.raises(ValueError, match="source_hosts must be one of"):
        ReadOptions(source_hosts="intranet")
