"""A fault-injecting HTTP proxy on 127.0.0.1 for tests and benchmarks; its fixture is made
available to every test by tests/conftest.py.

It forwards HTTP/1.1 requests unchanged (the ``Host`` header too, so presigned S3 URLs
made for the proxy's address stay valid) to an upstream server, and answers a chosen share
of them with a fault instead::

    with FaultProxy(s3.endpoint_url, rate=0.05, faults=("slowdown",), seed=1) as proxy:
        engine = ReadEngine(ReadOptions(endpoint_url=proxy.url))
        ...
        proxy.requests, proxy.injected["slowdown"]
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

FAULTS = ("slowdown", "throttle", "reset", "truncate", "stall")
"""``slowdown``: 503 with an S3 ``SlowDown`` error; ``throttle``: 429 with ``Retry-After``;
``reset``: the connection is reset instead of answered; ``truncate``: half the body, then the
connection closes; ``stall``: half the body, then nothing for ``stall_seconds``, then close."""

_SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message>"
    b"<RequestId>fault-proxy</RequestId></Error>"
)


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream`` (``http://host:port``), injecting faults.

    Each request whose method is in ``methods`` gets a fault with probability ``rate``, the
    fault drawn from ``faults`` by a ``random.Random(seed)``; ``force(fault, count)`` makes
    the next ``count`` such requests get that fault whatever the rate. ``latency`` seconds
    are added before each answer; bodies are forwarded in pieces of ``piece_size`` bytes,
    ``piece_interval`` seconds apart (a slow but moving stream when > 0).

    ``truncate`` and ``stall`` only act on answers with a body. Request bodies must come
    with a ``Content-Length`` (not chunked). The settings are plain attributes and may be
    changed while it runs. It counts ``requests`` (and ``by_method``, a Counter by HTTP
    method), ``injected`` faults (a Counter by name), and ``in_flight`` / ``max_in_flight``
    requests; ``reset()`` clears the counts, forced faults and the RNG.
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 0,
        stall_seconds: float = 2.0,
        retry_after: str = "1",
        latency: float = 0.0,
        piece_size: int = 64 * 1024,
        piece_interval: float = 0.0,
        methods: tuple[str, ...] = ("GET",),
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError(f"upstream must be http://127.0.0.1:<port>, got {upstream!r}")
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.upstream = (parts.hostname, parts.port)
        self.rate = rate
        self.faults = faults
        self.seed = seed
        self.stall_seconds = stall_seconds
        self.retry_after = retry_after
        self.latency = latency
        self.piece_size = piece_size
        self.piece_interval = piece_interval
        self.methods = methods
        self.port = 0
        self.requests = 0
        self.by_method: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._forced: list[str] = []
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: use as ``endpoint_url`` or URL prefix."""
        return f"http://127.0.0.1:{self.port}"

    def force(self, fault: str, count: int = 1) -> None:
        """Give the next ``count`` requests (of ``methods``) ``fault``, whatever the rate."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULTS}")
        self._forced.extend([fault] * count)

    def reset(self) -> None:
        """Zero the counters, drop forced faults and restart the RNG from ``seed``."""
        self.requests = self.max_in_flight = 0
        self.by_method.clear()
        self.injected.clear()
        self._forced.clear()
        self._rng = random.Random(self.seed)

    def start(self) -> FaultProxy:
        """Listen on a free port of 127.0.0.1, serving from a background thread."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        upstream = _Upstream(self.upstream)
        try:
            while await self._serve_one(reader, writer, upstream):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away, or sent something that is not HTTP/1.1
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio logs a cancelled connection handler)
        finally:
            self._handlers.discard(task)
            upstream.close()
            writer.close()

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: _Upstream
    ) -> bool:
        """Answer one request; False when the client connection is to be closed."""
        head = await _read_head(reader)
        if head is None:
            return False
        method, headers = _parse_request(head)
        body = await reader.readexactly(int(_header(headers, "content-length") or 0))
        self.requests += 1
        self.by_method[method] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            fault = self._choose(method)
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault == "reset":
                _reset(writer)
                return False
            if fault in ("slowdown", "throttle"):
                writer.write(self._refusal(fault))
                await writer.drain()
                return True
            status_head, response_headers, stream = await upstream.exchange(head + body, method)
            keep_open = await self._relay(writer, status_head, response_headers, stream, fault)
            upstream.finish()
            return keep_open
        finally:
            self.in_flight -= 1

    def _choose(self, method: str) -> str | None:
        if method not in self.methods:
            return None
        fault = None
        if self._forced:
            fault = self._forced.pop(0)
        elif self.rate and self._rng.random() < self.rate:
            fault = self._rng.choice(self.faults)
        if fault is not None:
            self.injected[fault] += 1
        return fault

    def _refusal(self, fault: str) -> bytes:
        if fault == "slowdown":
            status, extra = "503 Slow Down", "Content-Type: application/xml\r\n"
            body = _SLOWDOWN_BODY
        else:
            status, extra = "429 Too Many Requests", f"Retry-After: {self.retry_after}\r\n"
            body = b"too many requests"
        head = f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    async def _relay(self, writer, status_head, headers, stream, fault) -> bool:
        """Send the upstream's answer, or the part of it that ``fault`` lets through."""
        writer.write(status_head)
        length = stream.length
        if fault in ("truncate", "stall") and length:
            await self._forward(writer, stream, length // 2)
            if fault == "stall":
                await asyncio.sleep(self.stall_seconds)
            writer.transport.abort()
            return False
        await self._forward(writer, stream, length)
        # A buffered body was re-framed without the upstream's "Connection: close".
        return stream.buffered or not _wants_close(headers)

    async def _forward(self, writer: asyncio.StreamWriter, stream: _Body, count: int) -> None:
        sent = 0
        while sent < count:
            piece = await stream.read(min(self.piece_size, count - sent))
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
            if self.piece_interval and sent < count:
                await asyncio.sleep(self.piece_interval)


class _Upstream:
    """The proxy's keep-alive connection to the upstream for one client connection."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._closing = False

    async def exchange(self, request: bytes, method: str) -> tuple[bytes, list, _Body]:
        """Send ``request``; the response head to relay, its headers and its body."""
        for fresh in (self._connection is None, True):
            if self._connection is None:
                self._connection = await asyncio.open_connection(*self.address)
            reader, writer = self._connection
            try:
                writer.write(request)
                await writer.drain()
                head = await _read_head(reader)
            except ConnectionError:
                head = None
            if head is not None:
                break
            self.close()  # an idle keep-alive connection the upstream had closed
            if fresh:
                raise ConnectionError("upstream closed the connection")
        status, headers = _parse_response(head)
        body = await _Body.of(reader, method, status, headers)
        if body.buffered:
            head = _with_length(head, body.length)
        if body.buffered or _wants_close(headers):
            self._closing = True
        return head, headers, body

    def finish(self) -> None:
        """The answer has been relayed: drop the connection if it cannot carry another."""
        if self._closing:
            self.close()

    def close(self) -> None:
        self._closing = False
        if self._connection is not None:
            self._connection[1].close()
            self._connection = None


class _Body:
    """A response body of a known ``length``, streamed from the upstream or buffered."""

    def __init__(self, reader: asyncio.StreamReader, length: int, data: bytes | None) -> None:
        self._reader = reader
        self.length = length
        self._data = data
        self.buffered = data is not None

    @classmethod
    async def of(cls, reader, method: str, status: int, headers: list) -> _Body:
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return cls(reader, 0, None)
        length = _header(headers, "content-length")
        if length is not None:
            return cls(reader, int(length), None)
        # Chunked or close-delimited answers are rare here (S3 error bodies): read them
        # whole and relay them with a Content-Length.
        if "chunked" in (_header(headers, "transfer-encoding") or "").lower():
            data = await _read_chunked(reader)
        else:
            data = await reader.read()
        return cls(reader, len(data), data)

    async def read(self, count: int) -> bytes:
        if self._data is None:
            return await self._reader.readexactly(count)
        piece, self._data = self._data[:count], self._data[count:]
        return piece


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
        pass
    return b"".join(parts)


def _with_length(head: bytes, length: int) -> bytes:
    """``head`` re-framed for a body of ``length`` bytes sent whole."""
    lines = head.decode("latin-1").split("\r\n")[:-2]
    dropped = ("transfer-encoding", "content-length", "connection")
    kept = [line for line in lines[1:] if line.split(":", 1)[0].strip().lower() not in dropped]
    return "\r\n".join([lines[0], *kept, f"Content-Length: {length}", "", ""]).encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    """A request or response head up to its blank line; None at a clean end of stream."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    except asyncio.LimitOverrunError:
        raise ValueError("HTTP head too long") from None


def _parse_request(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    return method, _parse_headers(lines[1:])


def _parse_response(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split(" ", 2)[1]), _parse_headers(lines[1:])


def _parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    headers = []
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    return headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _wants_close(headers: list[tuple[str, str]]) -> bool:
    return (_header(headers, "connection") or "").lower() == "close"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP reset rather than an orderly close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
def fault_proxy(s3_server) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the test S3 server, injecting nothing until told to (set
    ``rate`` and ``faults``, or ``force``); read through it with ``endpoint_url=proxy.url``."""
    with FaultProxy(s3_server.endpoint_url) as proxy:
        yield proxy
