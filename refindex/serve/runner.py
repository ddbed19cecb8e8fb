"""Running the application: in the foreground until a signal (``serve_forever``, what the
CLI does), or on a thread of its own (``BackgroundServer``, for notebooks and tests)."""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from refindex.io import ReadOptions
from refindex.serve.app import build_app
from refindex.serve.config import ServeConfig

ACCESS_LOG = logging.getLogger("refindex.serve.access")
ACCESS_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'
SHUTDOWN_TIMEOUT = 10.0
"""Seconds requests being answered get to finish on SIGINT/SIGTERM."""


def serve_forever(config: ServeConfig, read_options: ReadOptions | None = None,
                  announce=print) -> None:
    """Serve ``config`` on its host and port until SIGINT or SIGTERM, then finish the
    requests being answered (up to ``SHUTDOWN_TIMEOUT``) and close the engines; from
    ``config.workers`` processes when more than one (``refindex.serve.workers``)."""
    names = ", ".join(f"/{d.name}/" for d in config.datasets)
    address = f"refindex serve: {names} on http://{config.host}:{config.port}"
    run_options = {"access_log": ACCESS_LOG, "access_log_format": ACCESS_FORMAT,
                   "shutdown_timeout": SHUTDOWN_TIMEOUT}
    if config.workers > 1:
        from refindex.serve.workers import serve_with_workers

        serve_with_workers(config, read_options,
                           lambda workers: announce(f"{address} ({workers})"), run_options)
        return
    web.run_app(build_app(config, read_options), host=config.host, port=config.port,
                print=lambda _: announce(address), **run_options)


class BackgroundServer:
    """``config`` served on a thread with its own event loop; ``url`` is its address (port
    0 in the config picks a free one). A context manager: leaving it stops the server."""

    def __init__(self, config: ServeConfig, read_options: ReadOptions | None = None) -> None:
        self.config, self.read_options = config, read_options
        self.app: web.Application | None = None
        self.port = config.port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="refindex-serve")
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self.app = build_app(self.config, self.read_options)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=ACCESS_LOG,
                                     access_log_format=ACCESS_FORMAT,
                                     shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
