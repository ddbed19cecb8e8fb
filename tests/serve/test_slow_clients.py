"""Slow clients: a connection whose request headers trickle in is closed once
``header_timeout`` seconds have passed since their first byte, and counted; clients that
send their headers in time — in pieces, after idling on a kept-alive connection, or
pipelined — are answered."""

from __future__ import annotations

import socket
import time

from tests.serve.conftest import dataset, serving
from tests.serve.test_http import ask

TIMEOUT = 0.6


def connect(server) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 5 s pass)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_client_trickling_its_headers_is_cut_off(files):
    with serving(dataset("standard", files["standard"]), header_timeout=TIMEOUT) as running:
        connection = connect(running)
        started = time.monotonic()
        closed_after = None
        try:
            connection.sendall(b"GET /standard/.zgroup HTTP/1.1\r\nHost: x\r\n")
            for n in range(40):  # one header every 0.1 s: 4 s if nothing stopped it
                time.sleep(0.1)
                connection.sendall(f"X-Slow-{n}: {n}\r\n".encode())
        except OSError:  # reset: the server closed the connection
            closed_after = time.monotonic() - started
        else:
            assert read_all(connection) == b""  # nothing answered, then closed
            closed_after = time.monotonic() - started
        finally:
            connection.close()
        assert closed_after < 3, closed_after
        metrics = ask(running, "/metrics").body.decode()
        assert "refindex_serve_header_timeouts_total 1" in metrics


def test_a_silent_connection_after_its_first_bytes_is_closed(files):
    with serving(dataset("standard", files["standard"]), header_timeout=TIMEOUT) as running:
        connection = connect(running)
        started = time.monotonic()
        connection.sendall(b"GET /standard/.zgroup HT")
        assert read_all(connection) == b""
        assert TIMEOUT <= time.monotonic() - started < 3
        connection.close()


def test_headers_sent_in_pieces_within_the_limit_are_answered(files):
    with serving(dataset("standard", files["standard"]), header_timeout=TIMEOUT) as running:
        connection = connect(running)
        for piece in (b"GET /standard/.zgroup HTTP/1.1\r\n", b"Host: x\r\n", b"Connection:",
                      b" close\r\n\r", b"\n"):
            connection.sendall(piece)
            time.sleep(0.05)
        answer = read_all(connection)
        connection.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"zarr_format" in answer


def test_a_kept_alive_connection_may_idle_longer_than_the_limit(files):
    with serving(dataset("standard", files["standard"]), header_timeout=TIMEOUT) as running:
        connection = connect(running)
        request = b"GET /standard/.zgroup HTTP/1.1\r\nHost: x\r\n\r\n"
        connection.sendall(request)
        first = connection.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        time.sleep(2 * TIMEOUT)  # idle between requests: aiohttp's keep-alive, not ours
        connection.sendall(request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
        second = read_all(connection)
        connection.close()
        assert second.startswith(b"HTTP/1.1 200")


def test_pipelined_requests_are_answered(files):
    with serving(dataset("standard", files["standard"]), header_timeout=TIMEOUT) as running:
        connection = connect(running)
        connection.sendall(b"GET /standard/.zgroup HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /standard/.zmetadata HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: close\r\n\r\n")
        answers = read_all(connection)
        connection.close()
        assert answers.count(b"HTTP/1.1 200") == 2


def test_no_limit_when_the_timeout_is_zero(files):
    with serving(dataset("standard", files["standard"]), header_timeout=0) as running:
        connection = connect(running)
        connection.sendall(b"GET /standard/.zgroup HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.0)
        connection.sendall(b"Connection: close\r\n\r\n")
        answer = read_all(connection)
        connection.close()
        assert answer.startswith(b"HTTP/1.1 200")
