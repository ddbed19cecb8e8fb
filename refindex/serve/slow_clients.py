"""Slow clients (slowloris): a connection whose request line and headers have not all come
within ``header_timeout`` seconds of their first byte is closed. aiohttp has no such limit
(its keep-alive timeout is for idle connections, and each byte a client trickles in keeps
one alive), so every connection's protocol is wrapped in ``HeaderDeadline``, and the server
listens through ``HeaderTimeoutSite``.

The end of a request's head is found by its blank line (``\\r\\n\\r\\n``); the clock starts
at the first byte of each request, so idle keep-alive connections are left to aiohttp, and a
request whose answer takes long (a slow source) is not cut off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

_HEAD_END = b"\r\n\r\n"


class HeaderDeadline(asyncio.Protocol):
    """aiohttp's protocol ``inner`` with a deadline on each request's head: ``timeout``
    seconds from its first byte, after which ``on_timeout()`` is called and the connection
    closed."""

    def __init__(self, inner: asyncio.Protocol, timeout: float,
                 on_timeout: Callable[[], None]) -> None:
        self.inner, self.timeout, self.on_timeout = inner, timeout, on_timeout
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes of an unfinished head (a blank line may span reads)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._watch(data)
        self.inner.data_received(data)

    def _watch(self, data: bytes) -> None:
        if self._timer is None:
            self._arm()
        seen = self._tail + data
        end = seen.rfind(_HEAD_END)
        if end < 0:
            self._tail = seen[-(len(_HEAD_END) - 1):]
            return
        self._disarm()
        rest = seen[end + len(_HEAD_END):]  # the start of the next request (pipelined)
        self._tail = rest[-(len(_HEAD_END) - 1):]
        if rest:
            self._arm()

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self.on_timeout()
            self._transport.close()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class HeaderTimeoutSite(web.TCPSite):
    """A TCP site whose connections get ``HeaderDeadline`` (no deadline when
    ``header_timeout`` is 0)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 header_timeout: float, on_timeout: Callable[[], None],
                 reuse_port: bool | None = None) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self.header_timeout, self.on_timeout = header_timeout, on_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        factory = self._runner.server
        if self.header_timeout > 0:
            def wrapped() -> HeaderDeadline:
                return HeaderDeadline(factory(), self.header_timeout, self.on_timeout)
        else:
            wrapped = factory
        self._server = await asyncio.get_running_loop().create_server(
            wrapped, self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
