"""An HTTP object server on 127.0.0.1 (aiohttp) whose misbehaviour tests can script; its
fixtures are made available to every test by tests/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class ScriptedHttpServer:
    """Serves ``objects`` with Range, ETag and If-Match like S3; can fail, stall or ignore Range.

    ``fail_next(n, status)`` makes the next ``n`` requests answer ``status``;
    ``stall_seconds`` delays every body after the headers; ``ignore_range`` answers 200 with
    the whole object. ``log`` holds ``(method, path, Range header)`` of every request and
    ``max_in_flight`` the most requests it ever served at once.
    """

    objects: dict[str, bytes] = field(default_factory=dict)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    stall_seconds: float = 0.0
    ignore_range: bool = False
    delay_seconds: float = 0.0
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    port: int = 0

    def url(self, name: str) -> str:
        """``http://127.0.0.1:<port>/<name>``."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def put(self, name: str, data: bytes) -> str:
        """Serve ``data`` at ``/name``; returns its URL."""
        self.objects[name] = data
        return self.url(name)

    def fail_next(self, count: int, status: int = 503, headers: dict[str, str] | None = None):
        """Answer the next ``count`` requests with ``status`` (and ``headers``)."""
        self.failures.extend([(status, headers or {})] * count)

    def reset(self) -> None:
        """Forget objects, scripted failures, the log and counters."""
        self.objects.clear()
        self.failures.clear()
        self.log.clear()
        self.stall_seconds = self.delay_seconds = 0.0
        self.ignore_range = False
        self.in_flight = self.max_in_flight = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.log.append((request.method, request.path, request.headers.get("Range")))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.failures:
            status, headers = self.failures.pop(0)
            return web.Response(status=status, headers=headers, text="scripted failure")
        data = self.objects.get(request.path.lstrip("/"))
        if data is None:
            return web.Response(status=404, text="no such object")
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        if_match = request.headers.get("If-Match")
        if if_match is not None and if_match != etag:
            return web.Response(status=412)
        headers = {"ETag": etag, "Accept-Ranges": "bytes"}
        body, status = data, 200
        match = _RANGE.match(request.headers.get("Range", ""))
        if match and not self.ignore_range:
            first = int(match.group(1))
            last = min(int(match.group(2) or len(data) - 1), len(data) - 1)
            if first >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return web.Response(status=416, headers=headers)
            body, status = data[first : last + 1], 206
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=status, headers=headers)
        return await self._send(request, status, headers, body)

    async def _send(self, request, status, headers, body) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        if self.stall_seconds:
            await asyncio.sleep(self.stall_seconds)
        await response.write(body)
        await response.write_eof()
        return response


@contextlib.contextmanager
def serve_in_thread(app: web.Application, name: str) -> Iterator[int]:
    """Run ``app`` on 127.0.0.1 (a free port, yielded) in a thread with its own event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    runner = web.AppRunner(app, access_log=None)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner.addresses[0][1]

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="session")
def _http_server_process() -> Iterator[ScriptedHttpServer]:
    server = ScriptedHttpServer()
    app = web.Application()
    app.router.add_route("*", "/{name:.*}", server.handle)
    with serve_in_thread(app, "test-http-server") as port:
        server.port = port
        yield server


@pytest.fixture
def http_server(_http_server_process: ScriptedHttpServer) -> Iterator[ScriptedHttpServer]:
    """The scripted HTTP server, reset for this test."""
    _http_server_process.reset()
    yield _http_server_process
    _http_server_process.reset()
