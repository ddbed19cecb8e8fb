"""Run many small async jobs with a bound on how many are in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

_T = TypeVar("_T")


async def run_bounded(jobs: Sequence[Callable[[], Awaitable[_T]]], limit: int) -> list[_T]:
    """The results of ``jobs``, in order, run by at most ``limit`` workers at once (a fixed
    set of workers, not a task per job: a sidecar may have many thousands of sources)."""
    results: list = [None] * len(jobs)
    pending = iter(enumerate(jobs))

    async def worker() -> None:
        for i, job in pending:
            results[i] = await job()

    await asyncio.gather(*(worker() for _ in range(min(len(jobs), max(limit, 1)))))
    return results
