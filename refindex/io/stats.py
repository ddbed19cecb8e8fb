"""ReadStats: what the engine did — requests, bytes, retries, failures — per URL scheme."""

from __future__ import annotations

import dataclasses
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
    fetches: int = 0
    """What was sent to sources after planning and caching: range GETs and HEADs (a retried
    one counts once) and local file reads and stats. Fewer than ``requests`` when ranges were
    merged or came from a cache."""
    bytes_fetched: int = 0
    """Bytes received from sources, gaps read by merging included."""
    merged: int = 0
    """Requested ranges that needed no read of their own (merged into a neighbour's read)."""
    split: int = 0
    """Extra reads made by splitting large ranges into parallel parts."""
    memory_hits: int = 0
    """Requested ranges answered by the in-memory cache."""
    memory_misses: int = 0
    """Requested ranges the in-memory cache did not have (counted only when it is on)."""
    disk_hits: int = 0
    """Requested ranges answered by the on-disk cache."""
    disk_misses: int = 0
    """Requested ranges the on-disk cache did not have (counted only when it is on)."""
    joined: int = 0
    """Requested ranges that another read was already fetching: they waited for its bytes."""
    throttled: int = 0
    """Answers that asked to slow down (429, 503 SlowDown); each is also a retry."""
    backoff_seconds: float = 0.0
    """Seconds requests spent waiting between attempts (summed over concurrent requests)."""
    resolutions: int = 0
    """Source URLs resolved to a fetchable URL (presigned, or followed through redirects and
    logins); once per source and lifetime, shared by the whole process."""
    logins: int = 0
    """Credentials exchanged for a session cookie while resolving."""
    redirects: int = 0
    """Redirects followed while resolving."""


class ReadStats:
    """Thread-safe counters of an engine's reads; ``str()`` gives a one-line summary."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schemes: dict[str, SchemeStats] = {}
        self._host_limits: dict[str, int] = {}

    def add(self, scheme: str, **counts: int) -> None:
        """Add to the counters of ``scheme``, named as the fields of ``SchemeStats``
        (``add("s3", requests=1, bytes=100)``)."""
        with self._lock:
            current = self._schemes.setdefault(scheme, SchemeStats())
            for name, value in counts.items():
                setattr(current, name, getattr(current, name) + value)

    def total(self, name: str) -> int:
        """The counter ``name`` (a field of ``SchemeStats``) summed over every scheme."""
        return sum(getattr(counts, name) for counts in self.by_scheme().values())

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

    @property
    def fetches(self) -> int:
        """All reads sent to sources after planning and caching, every scheme."""
        return self.total("fetches")

    @property
    def bytes_fetched(self) -> int:
        """All bytes received from sources, every scheme."""
        return self.total("bytes_fetched")

    @property
    def merged(self) -> int:
        """All requested ranges merged into another's read, every scheme."""
        return self.total("merged")

    @property
    def cache_hits(self) -> int:
        """Requested ranges answered from the memory or disk cache, every scheme."""
        return self.total("memory_hits") + self.total("disk_hits")

    @property
    def throttled(self) -> int:
        """All answers that asked to slow down, every scheme."""
        return self.total("throttled")

    @property
    def backoff_seconds(self) -> float:
        """Seconds spent waiting between attempts, every scheme."""
        return self.total("backoff_seconds")

    @property
    def host_limits(self) -> dict[str, int]:
        """The latest in-flight limit of each host this engine talked to (``max_per_host``
        unless the host has been throttling)."""
        with self._lock:
            return dict(self._host_limits)

    def note_host_limit(self, host: str, limit: int) -> None:
        """Record the current in-flight limit of ``host``."""
        with self._lock:
            self._host_limits[host] = limit

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._schemes.clear()
            self._host_limits.clear()

    def __str__(self) -> str:
        schemes = self.by_scheme()
        total = SchemeStats(**{
            field.name: sum(getattr(c, field.name) for c in schemes.values())
            for field in dataclasses.fields(SchemeStats)
        })
        parts = [f"{name}: {_line(counts, _SENT.get(name, _ANY))}"
                 for name, counts in sorted(schemes.items())]
        if len(parts) == 1:
            return _line(total, _SENT.get(next(iter(schemes)), _ANY))
        return _line(total, _ANY) + (f" ({'; '.join(parts)})" if parts else "")

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


# What a fetch is, said in the words of its scheme (one, many).
_HTTP = ("HTTP request", "HTTP requests")
_SENT = {"http": _HTTP, "https": _HTTP, "s3": _HTTP, "file": ("file read", "file reads")}
_ANY = ("request sent", "requests sent")


def _line(counts: SchemeStats, sent: tuple[str, str]) -> str:
    """E.g. ``151 ranges asked (3.2 MiB) -> 6 HTTP requests (3.3 MiB), 0 retries, 0 failures``:
    what callers asked for, then what went to the sources after merging and caching."""
    line = (
        f"{counts.requests} ranges asked ({format_bytes(counts.bytes)}) -> "
        f"{counts.fetches} {sent[counts.fetches != 1]} ({format_bytes(counts.bytes_fetched)}), "
        f"{counts.retries} retries, {counts.failures} failures"
    )
    if counts.merged:
        line += f", {counts.merged} merged into a neighbour's request"
    hits = counts.memory_hits + counts.disk_hits
    if hits:
        line += f", {hits} cache hits"
    if counts.throttled:
        line += f", {counts.throttled} throttled"
    if counts.backoff_seconds:
        line += f", {counts.backoff_seconds:.1f} s in backoff"
    if counts.resolutions:
        line += (f", {counts.resolutions} URLs resolved ({counts.redirects} redirects, "
                 f"{counts.logins} logins)")
    return line
