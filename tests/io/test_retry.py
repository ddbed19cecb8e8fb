"""How long to wait before a retry: exponential backoff with full jitter, and Retry-After."""

import random
from datetime import UTC, datetime

import pytest

from refindex.io.retry import RetryPolicy, backoff_delay, is_throttle_status, parse_retry_after

POLICY = RetryPolicy(backoff_base=0.1, backoff_max=5.0)


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(0, 0.1), (1, 0.2), (3, 0.8), (6, 5.0), (500, 5.0)]
)
def test_backoff_is_drawn_up_to_an_exponential_ceiling(attempt, ceiling):
    rng = random.Random(0)
    delays = [backoff_delay(attempt, POLICY, rng=rng) for _ in range(2000)]
    assert 0 <= min(delays) < 0.05 * ceiling
    assert 0.95 * ceiling < max(delays) <= ceiling


def test_retry_after_is_waited_in_full_with_jitter_on_top():
    rng = random.Random(0)
    delays = [backoff_delay(0, POLICY, retry_after=30, rng=rng) for _ in range(100)]
    assert all(30 <= delay <= 30.1 for delay in delays)
    assert len(set(delays)) == 100


def test_retry_after_in_seconds():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-2") == 0.0


def test_retry_after_as_an_http_date():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 12:00:07 GMT", now) == 7.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "inf", "nan"])
def test_unusable_retry_after_is_ignored(value):
    assert parse_retry_after(value) is None


def test_429_and_503_are_throttling_500_is_not():
    assert is_throttle_status(429) and is_throttle_status(503)
    assert not is_throttle_status(500)
