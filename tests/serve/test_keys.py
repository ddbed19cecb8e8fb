"""Requests reach only the keys of configured datasets: every path trick is a clean 400
(or 404 for a well-formed key the dataset does not have), and nothing outside is read."""

from __future__ import annotations

import socket

import pytest

from refindex.serve.keys import BadKeyError, StoreKey, parse_target
from tests.serve.conftest import dataset, serving
from tests.serve.test_http import ask


@pytest.mark.parametrize(("target", "expected"), [
    ("/ds/.zgroup", StoreKey("ds", ".zgroup")),
    ("/ds/a/b/0.1?x=1", StoreKey("ds", "a/b/0.1")),
    ("/ds/caf%C3%A9%20x/.zarray", StoreKey("ds", "café x/.zarray")),
    ("/ds/", StoreKey("ds", "")),
    ("/ds", StoreKey("ds", "")),
])
def test_paths_name_a_dataset_and_a_key(target, expected):
    assert parse_target(target) == expected


@pytest.mark.parametrize("target", [
    "/ds/../other/.zgroup", "/ds/a/./b", "/ds/a//b", "/ds/%2e%2e/x", "/ds/a%2Fb/0.0",
    "/ds/a%5cb", "/ds/a\\b", "/ds/a%00b", "/ds/a%0d%0aSet-Cookie:x", "http://evil/ds/.zgroup",
    "//evil/ds/.zgroup", "*", "/../ds/.zgroup", "/%2e%2e/ds", "/ds/%ff%fe", "/ds/" + "a" * 2000,
])
def test_path_tricks_are_refused(target):
    with pytest.raises(BadKeyError):
        parse_target(target)


def raw_request(port: int, line: bytes) -> bytes:
    """The status line of the answer to ``line`` sent as it is."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.fixture(scope="module")
def server(files):
    with serving(dataset("standard", files["standard"]), dataset("other", files["layouts"])) \
            as running:
        yield running


@pytest.mark.parametrize("path", [
    "/standard/../other/.zgroup", "/standard/%2e%2e/other/.zgroup", "/standard/gzip%2F0.0",
    "/standard//gzip/0.0", "/standard/gzip/%00", "/%2e%2e/etc/passwd",
])
def test_traversal_over_http_is_400(server, path):
    answer = ask(server, path)
    assert answer.status == 400
    assert b"Traceback" not in answer.body


def test_an_absolute_form_request_target_is_refused(server):
    status = raw_request(server.port, b"GET http://127.0.0.1/standard/.zgroup HTTP/1.1")
    assert status.split()[1] == b"400"


def test_a_huge_header_is_refused_cleanly(server):
    answer = ask(server, "/standard/.zgroup", X_Filler="x" * 20000)
    assert answer.status in (400, 431)


def test_a_huge_request_line_is_refused_cleanly(server):
    status = raw_request(server.port, b"GET /standard/" + b"a" * 20000 + b" HTTP/1.1")
    assert status.split()[1] in (b"400", b"414")
