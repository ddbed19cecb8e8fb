"""Fixtures of the I/O tests: random ranges and payloads."""

from __future__ import annotations

import pytest


@pytest.fixture
def random_ranges():
    """``random_ranges(size, count, seed)``: ``count`` ``(offset, length)`` pairs inside an
    object of ``size`` bytes, including its first and last byte."""
    import random

    def make(size: int, count: int = 50, seed: int = 0) -> list[tuple[int, int]]:
        rng = random.Random(seed)
        ranges = [(0, 1), (size - 1, 1), (0, size)]
        for _ in range(count - len(ranges)):
            offset = rng.randrange(size)
            ranges.append((offset, rng.randint(1, size - offset)))
        return ranges

    return make


@pytest.fixture
def payload() -> bytes:
    """300 KiB of reproducible random bytes."""
    import random

    return random.Random(42).randbytes(300 * 1024)


@pytest.fixture
def clock(monkeypatch):
    """Move resolution's clock: ``clock.shift = seconds`` (ahead, or behind if negative)."""
    from refindex.io import lifetime

    class Clock:
        shift = 0.0

    real = lifetime.now
    monkeypatch.setattr(lifetime, "now", lambda: real() + Clock.shift)
    return Clock
