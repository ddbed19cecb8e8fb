"""The one attempt loop of every HTTP request refindex sends: range reads, HEADs and listings
(``refindex.io.fetcher``) and the requests of multipart uploads (``refindex.upload``).

Each attempt asks where to send (a cached resolution, a fresh signature), takes a place under
the host's in-flight limit (lowered while the host throttles) and the caller's own limit, and
sends. A transient failure (``RetryableError``: 5xx, 429, 408, ``SlowDown``, a broken
connection, a truncated or stalled body) is retried after a backoff with full jitter, as the
``RetryPolicy`` says; a refusal (401, 403: an expired signature or token, rotated
credentials) lets the caller refresh once (resolve anew, re-read credentials, re-sign) and try
again. The policy's deadline bounds the whole; it starts when the first attempt gets its
place, so a long queue of requests does not time out before it is served.

Every failure is the caller's error class with one wording: where (URL and range, or file
and part), the last cause, and the attempts made::

    s3://b/k bytes [0, 10): HTTP 503 SlowDown (gave up after 6 attempts)
    s3://b/k bytes [0, 10): HTTP 503 SlowDown (gave up after 9 attempts, at the deadline of 1 s)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import aiohttp
from yarl import URL

from refindex.errors import FetchError, RefindexError
from refindex.io.resolver import ResolvedUrl
from refindex.io.retry import RetryableError, RetryPolicy, backoff_delay, describe_error
from refindex.io.sessions import host_limiter
from refindex.io.throttle import HostLimiter
from refindex.io.validation import TRANSIENT_ERRORS, AccessDenied

_T = TypeVar("_T")

Send = Callable[[URL, Mapping[str, str]], Awaitable[_T]]
"""One attempt: send to the resolved URL with the headers (cookies, token) it needs."""

Refresh = Callable[[ResolvedUrl | None], bool]
"""Called once on a 401/403 with the refused resolution: make the next attempt resolve or
sign anew; False when nothing can change (a presigned URL handed out by someone else)."""


class AttemptEvents:
    """What the loop reports, for counters; override what you count (here nothing is)."""

    def attempted(self) -> None:
        """An attempt got its place and is being sent."""

    def retrying(self, backoff: float) -> None:
        """Another attempt follows, after ``backoff`` seconds (0 after a refresh)."""

    def throttled(self) -> None:
        """The host asked to slow down (429, 503 SlowDown)."""

    def host_limit(self, host: str, limit: int) -> None:
        """``host``'s in-flight limit is now ``limit`` (after an answer or a throttle)."""


_NOTHING_COUNTED = AttemptEvents()


class AttemptLoop:
    """Sends requests as ``policy`` says, at most ``per_host`` in flight to one host; failures
    are ``failure`` errors (``FetchError`` for reads, ``UploadError`` for uploads)."""

    def __init__(self, policy: RetryPolicy, per_host: int,
                 failure: type[RefindexError] = FetchError) -> None:
        self.policy = policy
        self.per_host = per_host
        self.failure = failure

    async def run(
        self,
        where: str,
        resolve: Callable[[], Awaitable[ResolvedUrl]],
        send: Send[_T],
        *,
        refresh: Refresh | None = None,
        limit: AbstractAsyncContextManager | None = None,
        events: AttemptEvents = _NOTHING_COUNTED,
        denied_hint: str = "",
    ) -> _T:
        """``send`` until it succeeds, each attempt to where ``resolve()`` says then; raises
        ``failure`` naming ``where``, the last cause and the attempts when it cannot.
        ``denied_hint`` is added to the cause of a refusal (what the user may do)."""
        loop = asyncio.get_running_loop()
        policy = self.policy
        attempts = failures = 0
        cause = "the attempt did not finish"
        resolved: ResolvedUrl | None = None
        refreshed = False
        deadline: float | None = None
        while True:
            attempts += 1
            try:
                async with asyncio.timeout_at(deadline) as scope:
                    resolved = await resolve()
                    target = URL(resolved.url, encoded=True)
                    limiter = host_limiter(str(target.origin()), self.per_host)
                    async with limiter.slot(self.per_host), limit or contextlib.nullcontext():
                        if deadline is None and policy.deadline is not None:
                            deadline = loop.time() + policy.deadline
                            scope.reschedule(deadline)
                        events.attempted()
                        return await self._attempt(limiter, events,
                                                   send(target, resolved.headers), where)
            except TimeoutError:
                if not scope.expired():
                    raise
                raise self._gave_up(where, cause, attempts, past_deadline=True) from None
            except AccessDenied as error:
                cause = f"{error}{denied_hint}"
                if refreshed or refresh is None or not refresh(resolved):
                    raise self._gave_up(where, cause, attempts, refreshed=refreshed) from None
                refreshed = True
                events.retrying(0.0)
            except RetryableError as error:
                cause = error.reason
                failures += 1
                if failures > policy.retries:
                    raise self._gave_up(where, cause, attempts) from error
                if deadline is None and policy.deadline is not None:
                    deadline = loop.time() + policy.deadline
                delay = backoff_delay(failures - 1, policy, error.retry_after)
                if deadline is not None and loop.time() + delay >= deadline:
                    raise self._gave_up(where, cause, attempts, past_deadline=True) from error
                events.retrying(delay)
                await asyncio.sleep(delay)

    async def _attempt(self, limiter: HostLimiter, events: AttemptEvents,
                       attempt: Awaitable[_T], where: str) -> _T:
        """One attempt, transport errors sorted (retryable or not), its outcome reported to
        the host's throttle."""
        try:
            result = await attempt
        except RetryableError as error:
            if error.throttled:
                limiter.throttled()
                events.throttled()
                events.host_limit(limiter.host, limiter.throttle.limit)
            raise
        except TRANSIENT_ERRORS as error:
            raise RetryableError(describe_error(error)) from error
        except aiohttp.ClientError as error:
            raise self.failure(f"{where}: {describe_error(error)}") from error
        limiter.succeeded()
        events.host_limit(limiter.host, limiter.throttle.limit)
        return result

    def _gave_up(self, where: str, cause: str, attempts: int, *, past_deadline: bool = False,
                 refreshed: bool = False) -> RefindexError:
        plural = "" if attempts == 1 else "s"
        how = ""
        if past_deadline:
            how = f", at the deadline of {self.policy.deadline:g} s"
        elif refreshed:
            how = ", the last one resolved and signed anew"
        return self.failure(f"{where}: {cause} (gave up after {attempts} attempt{plural}{how})")
