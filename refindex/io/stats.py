"""ReadStats: what the engine did — requests, bytes, retries, failures — per URL scheme."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class SchemeStats:
    """Counters of one scheme (``file``, ``http``, ``https``, ``s3``)."""

    requests: int = 0
    """Logical reads and HEADs asked of the engine (an attempt that is retried counts once)."""
    bytes: int = 0
    """Bytes delivered to callers."""
    retries: int = 0
    """Extra attempts after a failed one."""
    failures: int = 0
    """Requests that ended in an error."""


class ReadStats:
    """Thread-safe counters of an engine's reads; ``str()`` gives a one-line summary."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schemes: dict[str, SchemeStats] = {}

    def add(
        self, scheme: str, *, requests: int = 0, bytes: int = 0, retries: int = 0, failures: int = 0
    ) -> None:
        """Add to the counters of ``scheme``."""
        with self._lock:
            counts = self._schemes.setdefault(scheme, SchemeStats())
            counts.requests += requests
            counts.bytes += bytes
            counts.retries += retries
            counts.failures += failures

    def by_scheme(self) -> dict[str, SchemeStats]:
        """A snapshot of the counters, per scheme."""
        with self._lock:
            return {name: SchemeStats(**vars(counts)) for name, counts in self._schemes.items()}

    @property
    def requests(self) -> int:
        """All requests, every scheme."""
        return sum(counts.requests for counts in self.by_scheme().values())

    @property
    def bytes(self) -> int:
        """All bytes delivered, every scheme."""
        return sum(counts.bytes for counts in self.by_scheme().values())

    @property
    def retries(self) -> int:
        """All retries, every scheme."""
        return sum(counts.retries for counts in self.by_scheme().values())

    @property
    def failures(self) -> int:
        """All failed requests, every scheme."""
        return sum(counts.failures for counts in self.by_scheme().values())

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._schemes.clear()

    def __str__(self) -> str:
        schemes = self.by_scheme()
        total = SchemeStats(
            requests=sum(c.requests for c in schemes.values()),
            bytes=sum(c.bytes for c in schemes.values()),
            retries=sum(c.retries for c in schemes.values()),
            failures=sum(c.failures for c in schemes.values()),
        )
        parts = [f"{name}: {_line(counts)}" for name, counts in sorted(schemes.items())]
        detail = f" ({'; '.join(parts)})" if len(parts) > 1 else ""
        return _line(total) + detail

    def __repr__(self) -> str:
        return f"<ReadStats {self}>"


def format_bytes(count: int) -> str:
    """``count`` bytes in binary units, e.g. ``3.2 MiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _line(counts: SchemeStats) -> str:
    return (
        f"{counts.requests} requests, {format_bytes(counts.bytes)}, "
        f"{counts.retries} retries, {counts.failures} failures"
    )
