"""The HTTP of ``refindex serve``, request by request: ETags and 304, byte ranges (206, 416),
HEAD, gzip of metadata, 404 for absent chunks and unknown datasets, 405 for writes, CORS
(preflight included), bearer tokens, 503 when saturated, /healthz and /metrics."""

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import dataclass

import h5py
import pytest

import refindex
from refindex.io import ReadOptions
from refindex.serve import BackgroundServer, DatasetConfig
from refindex.serve.app import STATE
from refindex.serve.config import make_config
from refindex.sidecar import write_index
from tests.serve.conftest import dataset, serving


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def ask(server, path: str, method: str = "GET", **headers: str) -> Answer:
    """One request, sent as written (no client normalises the path)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, headers={k.replace("_", "-"): v
                                                  for k, v in headers.items()})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(files):
    with serving(dataset("standard", files["standard"], transcode="off"),
                 dataset("layouts", files["layouts"]),
                 dataset("filters", files["filters"])) as running:
        yield running


def stored_chunk(files, name: str, coords: tuple[int, ...]) -> bytes:
    with h5py.File(files["standard"].source) as f:
        return f[name].id.read_direct_chunk(coords)[1]


def upstream_fetches(server) -> int:
    text = ask(server, "/metrics").body.decode()
    line = next(row for row in text.splitlines() if row.startswith("refindex_upstream_fetches"))
    return int(line.split()[-1])


def test_a_chunk_is_the_stored_bytes_with_a_strong_etag(server, files):
    answer = ask(server, "/standard/zstd/0.1")
    assert answer.status == 200
    assert answer.body == stored_chunk(files, "zstd", (0, 16))
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.headers["Content-Length"] == str(len(answer.body))
    assert answer.headers["ETag"].startswith('"') and answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["Cache-Control"] == "public, max-age=3600"


def test_head_answers_the_headers_of_get_without_a_body(server):
    get, head = ask(server, "/standard/zstd/0.0"), ask(server, "/standard/zstd/0.0", "HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers["Content-Length"] == str(len(get.body))
    assert head.headers["ETag"] == get.headers["ETag"]


def test_if_none_match_is_304_without_reading_the_source(server):
    etag = ask(server, "/standard/gzip/1.1").headers["ETag"]
    before = upstream_fetches(server)
    answer = ask(server, "/standard/gzip/1.1", If_None_Match=etag)
    assert answer.status == 304 and answer.body == b""
    assert answer.headers["ETag"] == etag
    assert upstream_fetches(server) == before
    assert ask(server, "/standard/gzip/1.1", If_None_Match='"other"').status == 200


def test_etags_differ_between_keys_and_between_codecs(server):
    tags = {ask(server, path).headers["ETag"]
            for path in ("/standard/gzip/0.0", "/standard/gzip/0.1", "/filters/gzip/0.0",
                         "/standard/.zgroup")}
    assert len(tags) == 4


@pytest.mark.parametrize(("header", "part"), [
    ("bytes=10-19", slice(10, 20)), ("bytes=5-", slice(5, None)), ("bytes=-7", slice(-7, None)),
    ("bytes=0-999999", slice(0, None)),
])
def test_a_range_is_206_with_its_bytes(server, header, part):
    whole = ask(server, "/standard/zstd/1.0").body
    answer = ask(server, "/standard/zstd/1.0", Range=header)
    assert answer.status == 206 and answer.body == whole[part]
    start = part.start if part.start >= 0 else len(whole) + part.start
    assert answer.headers["Content-Range"] == f"bytes {start}-{start + len(answer.body) - 1}/" \
                                              f"{len(whole)}"


@pytest.mark.parametrize("header", ["bytes=999999-", "bytes=abc", "bytes=9-3", "lines=1-2",
                                    "bytes=-0"])
def test_an_unsatisfiable_or_malformed_range_is_416(server, header):
    answer = ask(server, "/standard/zstd/1.0", Range=header)
    assert answer.status == 416
    assert answer.headers["Content-Range"].startswith("bytes */")


def test_several_ranges_or_a_stale_if_range_get_the_whole_body(server):
    whole = ask(server, "/standard/zstd/1.0").body
    assert ask(server, "/standard/zstd/1.0", Range="bytes=0-1,4-5").body == whole
    stale = ask(server, "/standard/zstd/1.0", Range="bytes=0-1", If_Range='"old"')
    assert stale.status == 200 and stale.body == whole


def test_metadata_is_gzipped_for_clients_that_accept_it(server):
    plain = ask(server, "/standard/.zmetadata", Accept_Encoding="identity")
    packed = ask(server, "/standard/.zmetadata", Accept_Encoding="gzip")
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert json.loads(plain.body)["metadata"]["zstd/.zarray"]["compressor"]["id"] == "zstd"


def test_absent_chunks_and_unknown_keys_are_404(server):
    assert ask(server, "/layouts/chunked_sparse/0.0").status == 200
    for path in ("/layouts/chunked_sparse/1.1", "/layouts/chunked_sparse/9.9",
                 "/layouts/chunked_sparse/x.y", "/layouts/nothing/0.0", "/layouts/zarr.json",
                 "/layouts/chunked_sparse/%C2%B2.0",  # a superscript 2 is no chunk number
                 "/layouts/", "/layouts"):
        assert ask(server, path).status == 404, path


def test_an_unknown_dataset_is_404(server):
    answer = ask(server, "/elsewhere/.zgroup")
    assert answer.status == 404 and b"elsewhere" in answer.body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_writes_are_405(server, method):
    answer = ask(server, "/standard/zstd/0.0", method)
    assert answer.status == 405 and answer.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_answers_carry_cors_headers_and_preflights_are_answered(server):
    answer = ask(server, "/standard/.zgroup", Origin="https://viewer.example")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in answer.headers["Access-Control-Expose-Headers"]
    preflight = ask(server, "/standard/zstd/0.0", "OPTIONS", Origin="https://viewer.example",
                    Access_Control_Request_Method="GET",
                    Access_Control_Request_Headers="range")
    assert preflight.status == 204
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Range" in preflight.headers["Access-Control-Allow-Headers"]


def test_a_public_page_may_reach_the_server_on_loopback_when_its_origin_is_allowed(files):
    asks = {"Access_Control_Request_Method": "GET",
            "Access_Control_Request_Private_Network": "true"}
    with serving(dataset("standard", files["standard"]),
                 cors_origins=("https://ok.example",)) as running:
        allowed = ask(running, "/standard/zstd/0.0", "OPTIONS", Origin="https://ok.example",
                      **asks)
        assert allowed.headers["Access-Control-Allow-Private-Network"] == "true"
        other = ask(running, "/standard/zstd/0.0", "OPTIONS", Origin="https://evil.example",
                    **asks)
        assert "Access-Control-Allow-Private-Network" not in other.headers
        plain = ask(running, "/standard/zstd/0.0", "OPTIONS", Origin="https://ok.example",
                    Access_Control_Request_Method="GET")
        assert "Access-Control-Allow-Private-Network" not in plain.headers


def test_only_configured_origins_are_allowed(files):
    with serving(dataset("standard", files["standard"]),
                 cors_origins=("https://ok.example",)) as running:
        allowed = ask(running, "/standard/.zgroup", Origin="https://ok.example")
        assert allowed.headers["Access-Control-Allow-Origin"] == "https://ok.example"
        assert "Origin" in allowed.headers["Vary"]
        other = ask(running, "/standard/.zgroup", Origin="https://evil.example")
        assert other.status == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_tokens_guard_datasets_but_not_health_or_preflights(files):
    with serving(dataset("open", files["standard"]),
                 dataset("closed", files["layouts"], token="dataset-secret"),
                 token=None) as running:
        assert ask(running, "/open/.zgroup").status == 200
        refused = ask(running, "/closed/.zgroup")
        assert refused.status == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
        assert ask(running, "/closed/.zgroup", Authorization="Bearer wrong").status == 401
        granted = ask(running, "/closed/.zgroup", Authorization="Bearer dataset-secret")
        assert granted.status == 200 and granted.headers["Cache-Control"].startswith("private")
    with serving(dataset("open", files["standard"]), token="server-secret") as running:
        assert ask(running, "/open/.zgroup").status == 401
        assert ask(running, "/metrics").status == 401
        assert ask(running, "/open/.zgroup", Authorization="Bearer server-secret").status == 200
        assert ask(running, "/healthz").status == 200
        assert ask(running, "/open/.zgroup", "OPTIONS", Origin="https://x.example").status == 204


def test_saturation_is_503_with_retry_after(files):
    with serving(dataset("standard", files["standard"]), max_in_flight=2) as running:
        state = running.app[STATE]
        state.metrics.in_flight = 2  # two requests being answered, as far as the gate knows
        answer = ask(running, "/standard/.zgroup")
        assert answer.status == 503 and answer.headers["Retry-After"] == "1"
        assert ask(running, "/healthz").status == 200  # monitoring still gets through
        state.metrics.in_flight = 0
        assert ask(running, "/standard/.zgroup").status == 200
        assert 'refindex_serve_refused_total 1' in ask(running, "/metrics").body.decode()


def test_a_source_the_policy_refuses_is_403_naming_no_source(files):
    config = make_config([dataset("standard", files["standard"])], port=0)
    with BackgroundServer(config, ReadOptions(allowed_sources=("s3://elsewhere/",))) as running:
        assert ask(running, "/standard/.zgroup").status == 200
        answer = ask(running, "/standard/zstd/0.0")
        assert answer.status == 403
        assert str(files["standard"].source).encode() not in answer.body
        assert ask(running, "/standard/zstd/0.1", "HEAD").status == 403


def test_health_and_metrics(server):
    health = ask(server, "/healthz")
    assert health.status == 200 and health.body == b"ok\n"
    ask(server, "/standard/zstd/2.2")
    ask(server, "/standard/nothing/0.0")
    metrics = ask(server, "/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.body.decode()
    for expected in ('refindex_serve_requests_total{status="200"}',
                     'refindex_serve_requests_total{status="404"}',
                     'refindex_serve_request_seconds_bucket{le="+Inf"}',
                     "refindex_upstream_bytes_fetched_total", "refindex_upstream_merged_total",
                     "refindex_transcode_cache_hits_total"):
        assert expected in text, expected


def test_a_chunk_that_does_not_decode_is_502_not_a_traceback(files, tmp_path):
    index = refindex.scan(files["standard"].source).index
    table = index.arrays["shuffle_gzip"].chunks
    ref = table.get(0)
    table.set(0, ref.source, 0, ref.length)  # the file's superblock, not a zlib stream
    write_index(index, tmp_path / "broken.refs.json")
    with serving(DatasetConfig("broken", str(tmp_path / "broken.refs.json"))) as running:
        answer = ask(running, "/broken/shuffle_gzip/0.0")
        assert answer.status == 502 and b"Traceback" not in answer.body
        assert ask(running, "/broken/shuffle_gzip/0.1").status == 200


def test_vary_names_both_encoding_and_origin(files):
    with serving(dataset("standard", files["standard"]),
                 cors_origins=("https://ok.example",)) as running:
        answer = ask(running, "/standard/.zmetadata", Origin="https://ok.example",
                     Accept_Encoding="gzip")
        assert answer.headers["Vary"] == "Accept-Encoding, Origin"
