"""A counting, latency- and bandwidth-emulating TCP proxy on 127.0.0.1 for benchmarks.

It sits between a client and a server, counts HTTP requests (request lines sent by the
client) and the bytes each way, adds a fixed delay per request (one emulated round trip)
and caps the bandwidth of each direction (all responses together, and all request bodies
together, each at the configured rate: a full-duplex link), so that every tool measured
through it is measured the same way, reading or writing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re

_REQUEST_LINE = re.compile(rb"(?:^|\r\n)((?:GET|HEAD|PUT|POST|DELETE) \S+ HTTP/1\.[01]\r\n)")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
_HEAD_LIMIT = 1 << 16  # bytes of request head beyond which framing is given up
_LINE_LIMIT = 1 << 13  # bytes of a request line, at most, looked for across two reads


class ProxyCounters:
    """Requests and bytes that crossed the proxy since the last ``reset`` (shared with the
    proxy's process)."""

    def __init__(self, context) -> None:
        self._requests = context.Value("q", 0)
        self._bytes_down = context.Value("q", 0)
        self._bytes_up = context.Value("q", 0)

    @property
    def requests(self) -> int:
        return self._requests.value

    @property
    def bytes_down(self) -> int:
        return self._bytes_down.value

    @property
    def bytes_up(self) -> int:
        return self._bytes_up.value

    def reset(self) -> None:
        for value in (self._requests, self._bytes_down, self._bytes_up):
            with value.get_lock():
                value.value = 0

    def add(self, requests: int = 0, down: int = 0, up: int = 0) -> None:
        for value, amount in ((self._requests, requests), (self._bytes_down, down),
                              (self._bytes_up, up)):
            if amount:
                with value.get_lock():
                    value.value += amount


class _Settings:
    """Round trip and bandwidth, set by the benchmark and read by the proxy per request."""

    def __init__(self, context, delay: float, bandwidth: float | None) -> None:
        self.delay = context.Value("d", delay, lock=False)
        self.bandwidth = context.Value("d", bandwidth or 0.0, lock=False)
        self.generation = context.Value("q", 0, lock=False)


class _Pacer:
    """A shared bandwidth cap: bytes leave no faster than ``rate`` bytes per second."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0

    async def wait(self, size: int) -> None:
        if not self.rate:
            return
        loop = asyncio.get_running_loop()
        start = max(loop.time(), self._next)
        self._next = start + size / self.rate
        delay = self._next - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)


class _RequestFramer:
    """Finds the requests in one connection's upstream bytes by following HTTP/1.1 framing
    (a head, then ``Content-Length`` bytes of body), so request bodies are skipped, not
    scanned (scanning costs ~8 s of CPU a GB). A body of unknown length (chunked) is
    scanned for the next request line instead."""

    def __init__(self) -> None:
        self._head = b""  # the part of a request head seen so far (or, unframed, the end of
        # the last bytes scanned)
        self._body = 0  # bytes of body still to come
        self._unframed = False

    def feed(self, data: bytes) -> int:
        """How many requests start in ``data``, the next bytes of the connection."""
        requests, at = 0, 0
        while at < len(data):
            if self._body:
                step = min(self._body, len(data) - at)
                self._body -= step
                at += step
                continue
            if self._unframed:
                # The bytes kept from the last call: a request line may straddle the two.
                seen = self._head + data[at:]
                found = _REQUEST_LINE.search(seen)
                if found is None:
                    self._head = seen[-_LINE_LIMIT:]
                    return requests
                self._head, self._unframed = b"", False
                return requests + self.feed(seen[found.start(1):])
            if not self._head:
                requests += 1
            piece = self._head + data[at:at + _HEAD_LIMIT]
            end = piece.find(b"\r\n\r\n")
            if end < 0:
                self._head = piece
                if len(piece) >= _HEAD_LIMIT:
                    self._head, self._unframed = b"", True
                return requests
            at += end + 4 - len(self._head)
            head, self._head = piece[:end + 2], b""
            length = _CONTENT_LENGTH.search(head)
            self._body = int(length.group(1)) if length else 0
            self._unframed = _CHUNKED.search(head) is not None
        return requests


class CountingProxy:
    """Forwards 127.0.0.1:<port> to ``target_host:target_port`` from a process of its own
    (the emulated network must not take the measured client's CPU or GIL).

    ``delay`` (seconds) is added before forwarding each request, emulating a round trip;
    ``bandwidth`` (bytes per second, None = unlimited) caps all responses together, and
    separately all requests (with their bodies) together.
    """

    def __init__(self, target_host: str, target_port: int, delay: float = 0.0,
                 bandwidth: float | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.target = (target_host, target_port)
        self.counters = ProxyCounters(context)
        self._settings = _Settings(context, delay, bandwidth)
        self._port = context.Value("i", 0, lock=False)
        self._ready = context.Event()
        self._process = context.Process(
            target=_serve_forever, name="counting-proxy", daemon=True,
            args=(self.target, self.counters, self._settings, self._port, self._ready))

    @property
    def port(self) -> int:
        return self._port.value

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CountingProxy:
        self._process.start()
        if not self._ready.wait(60):
            raise RuntimeError("the counting proxy did not start")
        return self

    def __exit__(self, *exc_info) -> None:
        self._process.terminate()
        self._process.join(5)

    def configure(self, delay: float | None = None, bandwidth: float | None = None) -> None:
        """Change the emulated round trip (seconds) and bandwidth (bytes/s) between runs."""
        if delay is not None:
            self._settings.delay.value = delay
        self._settings.bandwidth.value = bandwidth or 0.0
        self._settings.generation.value += 1  # a fresh pacer: no debt from the last run


def _serve_forever(target, counters: ProxyCounters, settings: _Settings, port, ready) -> None:
    asyncio.run(_Proxy(target, counters, settings).run(port, ready))


class _Proxy:
    def __init__(self, target, counters: ProxyCounters, settings: _Settings) -> None:
        self.target, self.counters, self.settings = target, counters, settings
        # One pacer per direction: the link is full duplex, so uploads do not slow responses.
        self._pacers, self._generation = (_Pacer(None), _Pacer(None)), -1

    async def run(self, port, ready) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    def pacer(self, upstream: bool) -> _Pacer:
        """The pacer of requests (``upstream``) or of responses, fresh after ``configure``."""
        if self.settings.generation.value != self._generation:
            self._generation = self.settings.generation.value
            rate = self.settings.bandwidth.value or None
            self._pacers = (_Pacer(rate), _Pacer(rate))
        return self._pacers[upstream]

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, server_writer, upstream=True),
                             self._pipe(server_reader, client_writer, upstream=False),
                             return_exceptions=True)

    async def _pipe(self, reader, writer, upstream: bool) -> None:
        framer = _RequestFramer()
        try:
            while data := await reader.read(1 << 16):
                if upstream:
                    requests = framer.feed(data)
                    self.counters.add(requests=requests, up=len(data))
                    delay = self.settings.delay.value
                    if requests and delay:
                        await asyncio.sleep(delay)
                else:
                    self.counters.add(down=len(data))
                await self.pacer(upstream).wait(len(data))
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
