"""Per-host limits on requests in flight that back off while a host throttles (AIMD).

``HostThrottle`` is the rule, pure and clock-free so it can be tested exactly;
``HostLimiter`` is the asyncio gate that applies it to the requests of one host on one
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class HostThrottle:
    """The in-flight limit of one host: additive increase, multiplicative decrease.

    Each throttled answer (429, 503 SlowDown) lowers the limit by ``1 - decrease``, so a
    round trip in which every answer is throttled (as many answers as the limit) multiplies
    the limit by ``decrease``; it never goes below 1. Every ``increase_every`` successes
    raise it by 1, up to ``ceiling``.

    Spreading the decrease over the answers of a round trip, rather than halving on the
    first throttled one, keeps a server that throttles a few percent of requests at random
    from collapsing the limit (below a throttled share of ``1 / (1 + (1 - decrease) *
    increase_every)``, about 11% by default, the limit holds), while one that throttles
    most requests halves it every round trip.
    """

    def __init__(self, ceiling: int, *, decrease: float = 0.5, increase_every: int = 16) -> None:
        if ceiling < 1:
            raise ValueError(f"a host's in-flight limit must be >= 1, got {ceiling}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be between 0 and 1, got {decrease}")
        if increase_every < 1:
            raise ValueError(f"increase_every must be >= 1, got {increase_every}")
        self.ceiling = ceiling
        self.decrease = decrease
        self.increase_every = increase_every
        self._level = float(ceiling)

    @property
    def limit(self) -> int:
        """Requests the host may have in flight now (1 to ``ceiling``)."""
        return max(1, min(self.ceiling, int(self._level)))

    def raise_ceiling(self, ceiling: int) -> None:
        """Allow up to ``ceiling`` (a caller configured for more has arrived); never lowers."""
        if ceiling > self.ceiling:
            self._level += ceiling - self.ceiling
            self.ceiling = ceiling

    def throttled(self) -> None:
        """Record an answer that asked to slow down."""
        self._level = max(1.0, self._level - (1.0 - self.decrease))

    def succeeded(self) -> None:
        """Record a successful answer."""
        self._level = min(float(self.ceiling), self._level + 1.0 / self.increase_every)


class HostLimiter:
    """Admits a request to one host only while fewer than the host's limit are in flight.

    Each caller also brings its own ``ceiling`` (its ``max_per_host``), so engines with
    different settings share one count of the host's requests yet each keeps to its own
    setting. Waiters are admitted first come, first served. Only use it on one event loop.
    """

    def __init__(self, host: str, throttle: HostThrottle) -> None:
        self.host = host
        self.throttle = throttle
        self.in_flight = 0
        self._waiters: deque[tuple[asyncio.Future[None], int]] = deque()

    @contextlib.asynccontextmanager
    async def slot(self, ceiling: int) -> AsyncIterator[None]:
        """Hold one of the host's in-flight places for the body of the ``async with``."""
        await self._acquire(ceiling)
        try:
            yield
        finally:
            self._release()

    def throttled(self) -> None:
        """Record a throttled answer (lowers the limit)."""
        self.throttle.throttled()

    def succeeded(self) -> None:
        """Record a successful answer (may raise the limit and admit a waiter)."""
        self.throttle.succeeded()
        self._admit()

    async def _acquire(self, ceiling: int) -> None:
        self.throttle.raise_ceiling(ceiling)
        if not self._waiters and self.in_flight < self._allowed(ceiling):
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (waiter, ceiling)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # admitted just as it was cancelled: hand the place on
            else:
                with contextlib.suppress(ValueError):  # _admit may have dropped it already
                    self._waiters.remove(entry)
            raise

    def _release(self) -> None:
        self.in_flight -= 1
        self._admit()

    def _admit(self) -> None:
        while self._waiters:
            waiter, ceiling = self._waiters[0]
            if waiter.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if self.in_flight >= self._allowed(ceiling):
                return
            self._waiters.popleft()
            self.in_flight += 1
            waiter.set_result(None)

    def _allowed(self, ceiling: int) -> int:
        return min(ceiling, self.throttle.limit)
