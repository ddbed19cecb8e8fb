"""When to retry an HTTP request, and how long to wait before doing so."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from refindex.io.options import ReadOptions

# Request Timeout, Too Many Requests and every 5xx except Not Implemented.
RETRY_STATUSES = frozenset({408, 429})


class RetryableError(Exception):
    """One attempt failed in a way another attempt may not: a 5xx, a reset, a stall."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def is_retryable_status(status: int) -> bool:
    """True for HTTP statuses that signal a transient failure."""
    return status in RETRY_STATUSES or (status >= 500 and status != 501)


def backoff_delay(attempt: int, options: ReadOptions, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): full-jitter exponential.

    A server's ``Retry-After`` is honoured up to ``options.backoff_max`` seconds.
    """
    ceiling = min(options.backoff_max, options.backoff_base * 2**attempt)
    # Full jitter spreads the retries of many requests that failed at once.
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, options.backoff_max))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
