"""When to retry an HTTP request, and how long to wait before doing so: ``RetryPolicy``, the
one value that reads (``ReadOptions.retry``) and uploads (``UploadOptions.retry``) are retried
by, in ``refindex.io.attempts``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Request Timeout, Too Many Requests and every 5xx except Not Implemented.
RETRY_STATUSES = frozenset({408, 429})

# Answers that mean "you are sending too much": S3 sends SlowDown as a 503.
THROTTLE_STATUSES = frozenset({429, 503})

# Doublings of the backoff beyond which the ceiling is backoff_max anyway (avoids overflow).
_MAX_DOUBLINGS = 60


@dataclass(frozen=True)
class RetryPolicy:
    """How one request is retried: ``retries`` extra attempts after failed ones, waits of
    exponential backoff with full jitter between them (``backoff_base`` seconds before the
    first retry, doubling, at most ``backoff_max``; a server's ``Retry-After`` in full), and
    ``deadline`` seconds for the whole, retries and waits included (None: no deadline). The
    deadline starts when the first attempt gets its place under the in-flight limits."""

    retries: int = 5
    backoff_base: float = 0.1
    backoff_max: float = 5.0
    deadline: float | None = 300.0

    def __post_init__(self) -> None:
        for name in ("retries", "backoff_base", "backoff_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"RetryPolicy.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"RetryPolicy.deadline must be > 0 or None, got {self.deadline!r}")


class RetryableError(Exception):
    """One attempt failed in a way another attempt may not: a 5xx, a reset, a stall.

    ``retry_after`` is the wait (seconds) the server asked for; ``throttled`` is true when
    the server asked to slow down (429, 503), which lowers the host's in-flight limit.
    """

    def __init__(
        self, reason: str, *, retry_after: float | None = None, throttled: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.throttled = throttled


def is_retryable_status(status: int) -> bool:
    """True for HTTP statuses that signal a transient failure."""
    return status in RETRY_STATUSES or (status >= 500 and status != 501)


def is_throttle_status(status: int) -> bool:
    """True for HTTP statuses that ask the client to send fewer requests."""
    return status in THROTTLE_STATUSES


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential, full jitter.

    The jittered wait is drawn from ``[0, min(backoff_max, backoff_base * 2**attempt))``.
    A server's ``Retry-After`` is honoured in full, with the jitter added on top so that
    requests told the same time do not all come back at once.
    """
    ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** min(attempt, _MAX_DOUBLINGS))
    # Full jitter spreads the retries of many requests that failed at once.
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay += retry_after
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates: HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def describe_error(error: BaseException) -> str:
    """A transport error (a reset, a timeout, ...) in a few words, for messages."""
    if isinstance(error, TimeoutError):
        detail = f": {error}" if str(error) else ""
        return f"timed out ({type(error).__name__}{detail})"
    return f"{type(error).__name__}: {error}"
