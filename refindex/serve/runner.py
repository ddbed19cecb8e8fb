"""Running the application: in the foreground until a signal (``serve_forever``, what the
CLI does), or on a thread of its own (``BackgroundServer``, for notebooks and tests)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

from aiohttp import web

from refindex.io import ReadOptions
from refindex.serve.app import STATE, build_app
from refindex.serve.config import ServeConfig
from refindex.serve.slow_clients import HeaderTimeoutSite

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
    if config.workers > 1:
        from refindex.serve.workers import serve_with_workers

        serve_with_workers(config, read_options,
                           lambda workers: announce(f"{address} ({workers})"))
        return
    run_until_signal(build_app(config, read_options), lambda: announce(address))


def run_until_signal(app: web.Application, announce: Callable[[], None] | None = None,
                     reuse_port: bool = False) -> None:
    """Serve ``app`` on its configuration's host and port until SIGINT or SIGTERM, then
    finish the requests being answered (up to ``SHUTDOWN_TIMEOUT``) and clean up."""
    asyncio.run(_serve(app, announce, reuse_port))


async def _serve(app: web.Application, announce: Callable[[], None] | None,
                 reuse_port: bool) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    runner = make_runner(app)
    await runner.setup()
    try:
        await start_site(runner, app, reuse_port)
        if announce is not None:
            announce()
        await stopping.wait()
    finally:
        await runner.cleanup()


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner of ``app``: the access log, and the grace time of a shutdown."""
    return web.AppRunner(app, access_log=ACCESS_LOG, access_log_format=ACCESS_FORMAT,
                         shutdown_timeout=SHUTDOWN_TIMEOUT, handle_signals=False)


async def start_site(runner: web.AppRunner, app: web.Application,
                     reuse_port: bool = False) -> HeaderTimeoutSite:
    """Listen on the configuration's host and port, slow clients cut off after its
    ``header_timeout`` (counted in the metrics)."""
    state = app[STATE]

    def timed_out() -> None:
        state.metrics.header_timeouts += 1

    site = HeaderTimeoutSite(runner, state.config.host, state.config.port,
                             header_timeout=state.config.header_timeout,
                             on_timeout=timed_out, reuse_port=reuse_port or None)
    await site.start()
    return site


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
        self._runner = make_runner(self.app)
        await self._runner.setup()
        site = await start_site(self._runner, self.app)
        self.port = site.port

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
