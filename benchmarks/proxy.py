"""A counting, latency- and bandwidth-emulating TCP proxy on 127.0.0.1 for benchmarks.

It sits between a client and a server, counts HTTP requests (request lines sent by the
client) and the bytes each way, adds a fixed delay per request (one emulated round trip)
and caps the bandwidth of all responses together, so that every tool measured through it
is measured the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from dataclasses import dataclass

_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(?:GET|HEAD|PUT|POST|DELETE) \S+ HTTP/1\.[01]\r\n")


@dataclass
class ProxyCounters:
    """Requests and bytes that crossed the proxy since the last ``reset``."""

    requests: int = 0
    bytes_down: int = 0
    bytes_up: int = 0

    def reset(self) -> None:
        self.requests = self.bytes_down = self.bytes_up = 0


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


class CountingProxy:
    """Forwards 127.0.0.1:<port> to ``target_host:target_port`` in a background thread.

    ``delay`` (seconds) is added before forwarding each request, emulating a round trip;
    ``bandwidth`` (bytes per second, None = unlimited) caps all responses together.
    """

    def __init__(self, target_host: str, target_port: int, delay: float = 0.0,
                 bandwidth: float | None = None) -> None:
        self.target = (target_host, target_port)
        self.delay = delay
        self.pacer = _Pacer(bandwidth)
        self.counters = ProxyCounters()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def configure(self, delay: float | None = None, bandwidth: float | None = None) -> None:
        """Change the emulated round trip (seconds) and bandwidth (bytes/s) between runs."""
        if delay is not None:
            self.delay = delay
        self.pacer = _Pacer(bandwidth)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        # Connections still open when the benchmark ends are dropped, their pipes cancelled.
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        # Cancelled when the proxy shuts down: the connection just ends.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._pipe(client_reader, server_writer, upstream=True),
                                 self._pipe(server_reader, client_writer, upstream=False),
                                 return_exceptions=True)

    async def _pipe(self, reader, writer, upstream: bool) -> None:
        try:
            while data := await reader.read(1 << 16):
                if upstream:
                    requests = len(_REQUEST_LINE.findall(data))
                    self.counters.requests += requests
                    self.counters.bytes_up += len(data)
                    if requests and self.delay:
                        await asyncio.sleep(self.delay)
                else:
                    self.counters.bytes_down += len(data)
                    await self.pacer.wait(len(data))
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
