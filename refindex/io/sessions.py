"""One aiohttp session and one concurrency limit per event loop, never used on another loop,
and per loop one in-flight limiter per host, shared by every engine of the process.

zarr-python runs its own loop in a thread, the sync edge runs another, and xarray or Dask may
call from more; an aiohttp session and an asyncio semaphore belong to the loop that made them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import socket
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from refindex import __version__
from refindex.io.loop import at_shutdown
from refindex.io.options import ReadOptions
from refindex.io.policy import policy_for
from refindex.io.throttle import HostLimiter, HostThrottle

# Every pool alive in this process, so their sessions on the I/O loop close at exit.
_pools: weakref.WeakSet[LoopResourcePool] = weakref.WeakSet()

# Per event loop, the in-flight limiter of each host it has talked to. Not per engine: a
# host's capacity, and its throttling, do not depend on which engine asks.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, HostLimiter]] = (
    weakref.WeakKeyDictionary()
)
_limiters_lock = threading.Lock()


def host_limiter(host: str, ceiling: int) -> HostLimiter:
    """The running loop's limiter of ``host`` (``scheme://host:port``), made on first use
    with ``ceiling`` requests in flight at most (later callers may raise it)."""
    loop = asyncio.get_running_loop()
    with _limiters_lock:
        by_host = _limiters.setdefault(loop, {})
        limiter = by_host.get(host)
        if limiter is None:
            limiter = by_host[host] = HostLimiter(host, HostThrottle(ceiling))
        return limiter


class LoopResources:
    """What one event loop needs to read: a limit on requests in flight and, made on first
    use (local reads need none), an HTTP session."""

    def __init__(self, options: ReadOptions) -> None:
        self._options = options
        self.limit = asyncio.Semaphore(options.max_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._guard: AsyncGenerator[None, None] | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The loop's aiohttp session (only touch it from that loop)."""
        if self._session is None or self._session.closed:
            self._session = _new_session(self._options)
            if self._guard is None:
                self._guard = _call_at_loop_shutdown(self._close_session)
        return self._session

    async def close(self) -> None:
        """Close the session, if one was made (from the owning loop)."""
        guard, self._guard = self._guard, None
        await self._close_session()
        if guard is not None:
            await guard.aclose()

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()

    def drop(self) -> None:
        """Mark the session closed without awaiting: its loop is gone."""
        if self._session is not None:
            _drop(self._session)


class LoopResourcePool:
    """Makes ``LoopResources`` lazily, one set per running event loop, and closes them."""

    def __init__(self, options: ReadOptions) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopResources] = {}
        _pools.add(self)
        # An engine dropped without close() still closes its sessions, each on its own loop.
        finalizer = weakref.finalize(self, _close_abandoned, self._by_loop)
        finalizer.atexit = False  # at exit, the I/O loop's shutdown hook does it

    def get(self) -> LoopResources:
        """The resources of the running loop, made on first use (must run inside a loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            resources = self._by_loop.get(loop)
            if resources is None:
                self._forget_closed_loops()
                resources = self._by_loop[loop] = LoopResources(self._options)
            return resources

    async def close(self) -> None:
        """Close the sessions of this loop and of other loops that still run."""
        current = asyncio.get_running_loop()
        with self._lock:
            owned = dict(self._by_loop)
            self._by_loop.clear()
        for loop, resources in owned.items():
            if loop is current:
                await resources.close()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(resources.close(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(future), timeout=5)
            else:
                resources.drop()

    async def close_this_loop(self) -> None:
        """Close only the running loop's session (the others may still be in use)."""
        with self._lock:
            resources = self._by_loop.pop(asyncio.get_running_loop(), None)
        if resources is not None:
            await resources.close()

    def _forget_closed_loops(self) -> None:
        # A loop that has closed (asyncio.run finished) can no longer close its session.
        for loop in [loop for loop in self._by_loop if loop.is_closed()]:
            self._by_loop.pop(loop).drop()


# Tasks that close abandoned sessions, referenced until done so they are not collected.
_closing: set[asyncio.Task[None]] = set()


def _close_abandoned(by_loop: dict[asyncio.AbstractEventLoop, LoopResources]) -> None:
    """Close the resources of a pool nobody references any more (runs in any thread)."""
    for loop, resources in list(by_loop.items()):
        if loop.is_running():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_start_closing, loop, resources)
        else:
            resources.drop()
    by_loop.clear()


def _start_closing(loop: asyncio.AbstractEventLoop, resources: LoopResources) -> None:
    task = loop.create_task(resources.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _call_at_loop_shutdown(
    close: Callable[[], Awaitable[None]],
) -> AsyncGenerator[None, None]:
    """Arrange for ``close()`` to run when the running loop shuts down its async generators.

    ``asyncio.run`` does that just before closing its loop, so an engine used inside
    ``asyncio.run`` without ``await engine.close()`` still closes its connections on the loop
    that owns them. Keep the returned generator referenced; ``aclose()`` it to cancel.
    """

    async def guard() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await close()

    generator = guard()
    # Advance the generator to its yield without awaiting: this registers it with the
    # running loop's async-generator hooks, which is all that is needed.
    with contextlib.suppress(StopIteration):
        generator.__anext__().send(None)
    return generator


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver, whose answers the source policy checks before any connection:
    a name that resolves to a metadata address, or to a network the policy does not allow,
    is refused (a ``SourcePolicyError``, which aiohttp passes on unchanged)."""

    def __init__(self, options: ReadOptions) -> None:
        self._resolver = DefaultResolver()
        self._policy = policy_for(options)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        self._policy.check_resolved(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._resolver.close()


def _new_session(options: ReadOptions) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=options.max_concurrency, ttl_dns_cache=300,
                                     resolver=PolicyResolver(options))
    # No total: a slow body that keeps moving may take as long as it needs (the fetcher
    # bounds each read by its deadline); a silent socket is cut after stall_timeout.
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=options.timeout, sock_read=options.stall_timeout
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        # Byte ranges address the stored bytes: never let a transfer encoding change them.
        auto_decompress=False,
        headers={"User-Agent": f"refindex/{__version__}", "Accept-Encoding": "identity"},
    )


def _drop(session: aiohttp.ClientSession) -> None:
    """Mark a session of a dead loop closed without awaiting anything on that loop."""
    connector = session.connector
    session.detach()
    # The public close() schedules a task on the connector's loop, which is closed; the
    # synchronous part is all that can run, and it stops aiohttp warning about the leak.
    close_now = getattr(connector, "_close", None)
    if close_now is not None:
        with contextlib.suppress(Exception):
            close_now()


async def _close_pools_on_exit() -> None:
    for pool in list(_pools):
        await pool.close_this_loop()


at_shutdown(_close_pools_on_exit)


def _close_other_loops_at_exit() -> None:
    """At interpreter exit, close sessions on loops refindex does not own (zarr's I/O loop,
    a user's) while they still run, so nothing reports an unclosed session."""
    for pool in list(_pools):
        with pool._lock:
            owned = dict(pool._by_loop)
            pool._by_loop.clear()
        for loop, resources in owned.items():
            if loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(resources.close(), loop)
                with contextlib.suppress(Exception):
                    future.result(timeout=2)
            else:
                resources.drop()


# Registered after zarr is imported, so it runs before zarr stops its loop (atexit is LIFO).
atexit.register(_close_other_loops_at_exit)
