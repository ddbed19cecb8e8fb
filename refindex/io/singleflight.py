"""SingleFlight: values made once and shared by every task, thread and event loop of a
process until they go stale; callers that arrive while one is being made wait for it.

The cache and the record of what is in flight sit behind one ``threading.Lock`` (held for a
few dictionary operations, never across an ``await``). A flight is a
``concurrent.futures.Future``, which any thread may complete and any event loop may await,
so a resolution led on zarr's loop thread also serves callers on refindex's own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from refindex.io import lifetime

_V = TypeVar("_V")

# Every SingleFlight of the process, so that a forked child can forget the flights of its
# parent, which no thread of the child will ever complete.
_instances: weakref.WeakSet[SingleFlight] = weakref.WeakSet()


class _Abandoned(Exception):
    """The caller making a value was cancelled: another waiting caller takes over."""


class SingleFlight(Generic[_V]):
    """``await get(key, make)``: the fresh value of ``key``, made by ``make`` at most once
    at a time in the whole process. Values stay fresh until the time ``make`` gives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[_V, float]] = {}
        self._flights: dict[Hashable, concurrent.futures.Future[_V]] = {}
        _instances.add(self)

    async def get(
        self,
        key: Hashable,
        make: Callable[[], Awaitable[tuple[_V, float]]],
        patience: float,
    ) -> _V:
        """The value of ``key``; ``make()`` returns a new one and when it goes stale
        (seconds since the epoch). An error of ``make`` is raised to every caller waiting
        for it. A caller that waited ``patience`` seconds makes the value itself."""
        while True:
            with self._lock:
                cached = self._values.get(key)
                if cached is not None and lifetime.now() < cached[1]:
                    return cached[0]
                flight = self._flights.get(key)
                leading = flight is None
                if flight is None:
                    flight = self._flights[key] = concurrent.futures.Future()
            if leading:
                return await self._lead(key, flight, make)
            try:
                # shield: a waiter that is cancelled must not cancel the flight of the others.
                return await asyncio.wait_for(
                    asyncio.shield(asyncio.wrap_future(flight)), patience
                )
            except _Abandoned:
                continue
            except TimeoutError:
                # The leader's loop may be stuck or gone: stop waiting for it.
                self._land(key, flight)

    def invalidate(self, key: Hashable, stale: _V | None = None) -> None:
        """Forget the value of ``key`` (only if it is still ``stale``, when given, so that
        many callers reporting the same stale value cause one new flight, not many)."""
        with self._lock:
            cached = self._values.get(key)
            if cached is not None and (stale is None or cached[0] is stale):
                del self._values[key]

    def clear(self) -> None:
        """Forget every value (flights in progress still complete)."""
        with self._lock:
            self._values.clear()

    async def _lead(
        self,
        key: Hashable,
        flight: concurrent.futures.Future[_V],
        make: Callable[[], Awaitable[tuple[_V, float]]],
    ) -> _V:
        try:
            value, stale_at = await make()
        except BaseException as error:
            self._land(key, flight)
            # Cancellation (or exit) of this caller is not the others' failure.
            shared = error if isinstance(error, Exception) else _Abandoned()
            flight.set_exception(shared)
            raise
        with self._lock:
            self._values[key] = (value, stale_at)
        self._land(key, flight)
        flight.set_result(value)
        return value

    def _land(self, key: Hashable, flight: concurrent.futures.Future[_V]) -> None:
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def _forget_flights(self) -> None:
        self._lock = threading.Lock()
        self._flights.clear()


def _after_fork_in_child() -> None:
    for instance in list(_instances):
        instance._forget_flights()


os.register_at_fork(after_in_child=_after_fork_in_child)
