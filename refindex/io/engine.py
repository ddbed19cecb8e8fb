"""ReadEngine: exact byte ranges of local files, HTTP(S) and S3 objects, bounded and retried.

The engine is async at its core (``read``, ``info``) with a sync edge (``read_sync``,
``info_sync``) that runs on a private event-loop thread. It pickles as its options only and
opens sessions lazily in whichever process and event loop uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from refindex.errors import RefindexError
from refindex.io.fetcher import HttpFetcher
from refindex.io.local import read_local, stat_local
from refindex.io.loop import run_sync
from refindex.io.options import ReadOptions
from refindex.io.requests import ObjectInfo, RangeRequest
from refindex.io.resolver import UrlResolver
from refindex.io.sessions import LoopResourcePool
from refindex.io.stats import ReadStats
from refindex.io.urls import scheme_of


class ReadEngine:
    """Reads byte ranges of sources, at most ``options.max_concurrency`` at once per loop."""

    def __init__(self, options: ReadOptions | None = None) -> None:
        self.options = options if options is not None else ReadOptions()
        self.stats = ReadStats()
        self._resources = LoopResourcePool(self.options)
        self._http = HttpFetcher(
            self.options, self.stats, UrlResolver(self.options), self._resources
        )

    async def read(self, requests: Sequence[RangeRequest]) -> list[bytes]:
        """The bytes of each request, in order; raises the first error (others cancelled)."""
        requests = list(requests)
        results: list[bytes] = [b""] * len(requests)
        pending = iter(enumerate(requests))

        # A fixed set of workers, not a task per request: a million small requests must not
        # become a million tasks.
        async def worker() -> None:
            for index, request in pending:
                results[index] = await self._read_one(request)

        count = min(len(requests), self.options.max_concurrency)
        workers = [asyncio.ensure_future(worker()) for _ in range(count)]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return results

    async def info(self, url: str) -> ObjectInfo:
        """Size (bytes), ETag and last modification of ``url`` (HEAD, or stat for files)."""
        scheme = scheme_of(url)
        self.stats.add(scheme, requests=1)
        try:
            if scheme == "file":
                return await stat_local(url)
            return await self._http.head(url, scheme)
        except RefindexError:
            self.stats.add(scheme, failures=1)
            raise

    async def close(self) -> None:
        """Close the HTTP sessions this engine opened; it reopens them if used again."""
        await self._resources.close()

    def read_sync(self, requests: Sequence[RangeRequest]) -> list[bytes]:
        """``read`` from synchronous code (runs on refindex's I/O thread)."""
        return run_sync(self.read(requests))

    def info_sync(self, url: str) -> ObjectInfo:
        """``info`` from synchronous code (runs on refindex's I/O thread)."""
        return run_sync(self.info(url))

    def close_sync(self) -> None:
        """``close`` from synchronous code."""
        run_sync(self.close())

    async def __aenter__(self) -> ReadEngine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __reduce__(self):
        # Sessions, loops and counters belong to one process: ship the options only.
        return (type(self), (self.options,))

    def __repr__(self) -> str:
        return f"ReadEngine({self.options!r})"

    async def _read_one(self, request: RangeRequest) -> bytes:
        scheme = scheme_of(request.url)
        self.stats.add(scheme, requests=1)
        if request.length == 0:
            return b""
        try:
            if scheme == "file":
                async with self._resources.get().limit:
                    data = await read_local(request)
            else:
                data = await self._http.get(request, scheme)
        except RefindexError:
            self.stats.add(scheme, failures=1)
            raise
        self.stats.add(scheme, bytes=len(data))
        return data
