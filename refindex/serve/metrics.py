"""``/metrics``: what the server did, in the Prometheus text format (version 0.0.4) — requests
by status, a latency histogram, requests in flight and refused, the engines' upstream
requests, bytes, merged ranges and cache hits, and the transcoding cache's hits."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable

from refindex.io.stats import ReadStats

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram's buckets."""

_UPSTREAM = (
    ("requests", "ranges asked of the I/O engine"),
    ("fetches", "reads sent to sources after merging and caching"),
    ("bytes_fetched", "bytes received from sources"),
    ("merged", "ranges merged into a neighbour's read"),
    ("retries", "retried reads"),
    ("failures", "reads that failed"),
    ("memory_hits", "ranges answered by the engine's memory cache"),
    ("disk_hits", "ranges answered by the engine's disk cache"),
)


class ServerMetrics:
    """Counters of the requests a server answered (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_status: Counter[int] = Counter()
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.in_flight = 0
        self.refused = 0
        self.bytes_sent = 0

    def observe(self, status: int, seconds: float, sent: int) -> None:
        """Count one answered request: its status, time taken and body bytes."""
        with self._lock:
            self.by_status[status] += 1
            self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.latency_sum += seconds
            self.bytes_sent += sent

    def render(self, engines: Iterable[ReadStats], transcoded_hits: int,
               transcoded_misses: int, transcoded_bytes: int) -> str:
        """The metrics as Prometheus text."""
        with self._lock:
            statuses = dict(self.by_status)
            buckets, total = list(self.buckets), sum(self.buckets)
            lines = _family("refindex_serve_requests_total", "counter",
                            "Requests answered, by HTTP status.",
                            [(f'{{status="{s}"}}', n) for s, n in sorted(statuses.items())])
            cumulative, rows = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), buckets, strict=True):
                cumulative += count
                rows.append((f'_bucket{{le="{bound}"}}', cumulative))
            rows += [("_sum", round(self.latency_sum, 6)), ("_count", total)]
            lines += _family("refindex_serve_request_seconds", "histogram",
                             "Time from request to answer (seconds).", rows)
            lines += _family("refindex_serve_in_flight", "gauge", "Requests being answered.",
                             [("", self.in_flight)])
            lines += _family("refindex_serve_refused_total", "counter",
                             "Requests refused with 503 because too many were in flight.",
                             [("", self.refused)])
            lines += _family("refindex_serve_sent_bytes_total", "counter",
                             "Body bytes sent.", [("", self.bytes_sent)])
        stats = list(engines)
        for field, help_text in _UPSTREAM:
            lines += _family(f"refindex_upstream_{field}_total", "counter",
                             f"I/O engine: {help_text}.",
                             [("", sum(s.total(field) for s in stats))])
        lines += _family("refindex_transcode_cache_hits_total", "counter",
                         "Re-encoded chunks answered from the cache.", [("", transcoded_hits)])
        lines += _family("refindex_transcode_cache_misses_total", "counter",
                         "Re-encoded chunks not in the cache.", [("", transcoded_misses)])
        lines += _family("refindex_transcode_cache_bytes", "gauge",
                         "Bytes of re-encoded chunks cached.", [("", transcoded_bytes)])
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, rows: list[tuple[str, object]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
            *(f"{name}{suffix} {value}" for suffix, value in rows)]
