"""The one attempt loop that reads and uploads share: retries with backoff, one refresh on a
refusal, a deadline, and one wording of failures (against the scripted HTTP server)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from refindex.errors import FetchError, UploadError
from refindex.io.attempts import AttemptEvents, AttemptLoop
from refindex.io.resolver import ResolvedUrl
from refindex.io.retry import RetryPolicy
from refindex.io.validation import check_status

FAST = RetryPolicy(retries=5, backoff_base=0.01, backoff_max=0.02, deadline=10)


class Recorded(AttemptEvents):
    def __init__(self) -> None:
        self.attempts, self.backoffs = 0, []

    def attempted(self) -> None:
        self.attempts += 1

    def retrying(self, backoff: float) -> None:
        self.backoffs.append(backoff)


def get_through_the_loop(url: str, loop: AttemptLoop, refresh=None,
                         events: AttemptEvents | None = None) -> bytes:
    """The body of ``url``, each attempt a GET through ``loop``."""
    async def run() -> bytes:
        async with aiohttp.ClientSession() as session:
            async def resolve() -> ResolvedUrl:
                return ResolvedUrl(url)

            async def send(target, headers) -> bytes:
                async with session.get(target, headers=dict(headers)) as response:
                    await check_status(response, url, None)
                    return await response.read()

            return await loop.run(url, resolve, send, refresh=refresh,
                                  events=events or AttemptEvents())

    return asyncio.run(run())


def test_503_is_retried_after_a_backoff(http_server):
    url = http_server.put("a.bin", b"abc")
    http_server.fail_next(2, 503)
    events = Recorded()

    assert get_through_the_loop(url, AttemptLoop(FAST, 4), events=events) == b"abc"

    assert events.attempts == 3 and len(events.backoffs) == 2
    assert all(0 <= wait <= 0.02 for wait in events.backoffs)


def test_a_refusal_is_refreshed_once_then_the_request_goes_on(http_server):
    url = http_server.put("a.bin", b"abc")
    http_server.fail_next(1, 403)
    refused: list[ResolvedUrl | None] = []

    def refresh(stale):
        refused.append(stale)
        return True

    assert get_through_the_loop(url, AttemptLoop(FAST, 4), refresh) == b"abc"
    assert [stale.url for stale in refused] == [url]


def test_a_second_refusal_names_where_the_cause_and_the_attempts(http_server):
    url = http_server.put("a.bin", b"abc")
    http_server.fail_next(2, 403)

    with pytest.raises(FetchError, match=rf"^{url}: access denied \(HTTP 403\): scripted failure "
                                         r"\(gave up after 2 attempts, the last one resolved "
                                         r"and signed anew\)$"):
        get_through_the_loop(url, AttemptLoop(FAST, 4), lambda stale: True)


def test_a_refusal_nothing_can_refresh_fails_at_once(http_server):
    url = http_server.put("a.bin", b"abc")
    http_server.fail_next(1, 401)

    with pytest.raises(FetchError, match=r"HTTP 401.*\(gave up after 1 attempt\)$"):
        get_through_the_loop(url, AttemptLoop(FAST, 4), lambda stale: False)


def test_retries_end_at_the_deadline_with_the_last_cause(http_server):
    url = http_server.put("a.bin", b"abc")
    http_server.fail_next(10_000, 503)
    policy = RetryPolicy(retries=10_000, backoff_base=0.01, backoff_max=0.05, deadline=0.5)
    started = time.monotonic()

    with pytest.raises(FetchError, match=r"HTTP 503: scripted failure \(gave up after \d+ "
                                         r"attempts, at the deadline of 0.5 s\)"):
        get_through_the_loop(url, AttemptLoop(policy, 4))

    assert time.monotonic() - started < 1.5


def test_failures_are_the_callers_error_class_in_the_same_words(http_server):
    url = http_server.put("a.bin", b"abc")
    http_server.fail_next(3, 500)

    with pytest.raises(UploadError, match=rf"{url}: HTTP 500.*\(gave up after 3 attempts\)"):
        get_through_the_loop(url, AttemptLoop(RetryPolicy(retries=2, backoff_base=0.01),
                                              4, UploadError))


def test_a_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="retries must be >= 0"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="deadline must be > 0 or None"):
        RetryPolicy(deadline=0)
