"""``/metrics``: what the server did, in the Prometheus text format (version 0.0.4) — requests
by status, a latency histogram, requests in flight and refused, slow clients cut off, the
engines' upstream requests, bytes, merged ranges and cache hits, and the transcoding cache's
hits.

Every counter lives in one row of numbers per worker process (``MetricsBoard``): with
``--workers N`` the rows are shared memory made by the parent, each worker writes its own
and a scrape sums them all, so whichever worker takes the connection answers for the whole
server."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

import numpy as np

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

# The place of each number in a worker's row.
_STATUSES = range(100, 600)
_BUCKETS = len(_STATUSES)
_SCALARS = len(_STATUSES) + len(LATENCY_BUCKETS) + 1
_NAMES = ("latency_sum", "in_flight", "refused", "bytes_sent", "header_timeouts",
          *(f"upstream_{name}" for name, _ in _UPSTREAM),
          "transcode_hits", "transcode_misses", "transcode_bytes")
_AT = {name: _SCALARS + n for n, name in enumerate(_NAMES)}
ROW_SIZE = _SCALARS + len(_NAMES)
"""Numbers (float64) in one worker's row."""


class MetricsBoard:
    """Every worker's row of counters: ``rows`` is a float64 array of ``workers × ROW_SIZE``
    over ``buffer`` (shared memory for several processes; private memory by default)."""

    def __init__(self, workers: int = 1, buffer=None) -> None:
        self.buffer = buffer if buffer is not None else bytearray(8 * workers * ROW_SIZE)
        self.rows = np.frombuffer(self.buffer, dtype=np.float64).reshape(workers, ROW_SIZE)

    @classmethod
    def shared(cls, context, workers: int) -> MetricsBoard:
        """A board in shared memory of ``context`` (a multiprocessing context), to hand to
        ``workers`` processes."""
        return cls(workers, context.RawArray("d", workers * ROW_SIZE))

    def __reduce__(self):
        return MetricsBoard, (len(self.rows), self.buffer)


def _row_number(name: str) -> property:
    """A counter of the worker's row, read and written as an int."""
    index = _AT[name]

    def get(self) -> int:
        return int(self._row[index])

    def set_(self, value: int) -> None:
        self._row[index] = value

    return property(get, set_)


class ServerMetrics:
    """The counters of one worker (row ``row`` of ``board``), and the rendering of the
    whole board. Thread-safe within the worker; a row is written by its worker only."""

    def __init__(self, board: MetricsBoard | None = None, row: int = 0) -> None:
        self.board = board or MetricsBoard()
        self._row = self.board.rows[row]
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether other workers read this board (and so this worker's row)."""
        return len(self.board.rows) > 1

    in_flight = _row_number("in_flight")
    refused = _row_number("refused")
    header_timeouts = _row_number("header_timeouts")

    def observe(self, status: int, seconds: float, sent: int) -> None:
        """Count one answered request: its status, time taken and body bytes."""
        row = self._row
        with self._lock:
            if 100 <= status < 600:
                row[status - 100] += 1
            row[_BUCKETS + bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            row[_AT["latency_sum"]] += seconds
            row[_AT["bytes_sent"]] += sent

    def publish(self, engines: Iterable[ReadStats], transcoded_hits: int,
                transcoded_misses: int, transcoded_bytes: int) -> None:
        """Copy what the engines and the transcoding cache counted into this worker's row
        (they keep their own counters: copied after each request and before a scrape)."""
        totals = dict.fromkeys((name for name, _ in _UPSTREAM), 0)
        for stats in engines:
            for counts in stats.by_scheme().values():
                for name in totals:
                    totals[name] += getattr(counts, name)
        row = self._row
        with self._lock:
            for name, value in totals.items():
                row[_AT[f"upstream_{name}"]] = value
            row[_AT["transcode_hits"]] = transcoded_hits
            row[_AT["transcode_misses"]] = transcoded_misses
            row[_AT["transcode_bytes"]] = transcoded_bytes

    def render(self) -> str:
        """The metrics of every worker together, as Prometheus text."""
        rows = self.board.rows
        total = rows.sum(axis=0)
        statuses = [(s, int(total[s - 100])) for s in _STATUSES if total[s - 100]]
        lines = _family("refindex_serve_requests_total", "counter",
                        "Requests answered, by HTTP status.",
                        [(f'{{status="{s}"}}', n) for s, n in statuses])
        cumulative, histogram = 0, []
        for n, bound in enumerate((*LATENCY_BUCKETS, "+Inf")):
            cumulative += int(total[_BUCKETS + n])
            histogram.append((f'_bucket{{le="{bound}"}}', cumulative))
        histogram += [("_sum", round(float(total[_AT["latency_sum"]]), 6)),
                      ("_count", cumulative)]
        lines += _family("refindex_serve_request_seconds", "histogram",
                         "Time from request to answer (seconds).", histogram)

        def one(name: str, kind: str, help_text: str, field: str) -> list[str]:
            return _family(name, kind, help_text, [("", int(total[_AT[field]]))])

        lines += one("refindex_serve_in_flight", "gauge", "Requests being answered.",
                     "in_flight")
        lines += one("refindex_serve_refused_total", "counter",
                     "Requests refused with 503 because too many were in flight.", "refused")
        lines += one("refindex_serve_header_timeouts_total", "counter",
                     "Connections closed because a request's headers came too slowly.",
                     "header_timeouts")
        lines += one("refindex_serve_sent_bytes_total", "counter", "Body bytes sent.",
                     "bytes_sent")
        lines += _family("refindex_serve_workers", "gauge",
                         "Worker processes whose counters these are.", [("", len(rows))])
        for name, help_text in _UPSTREAM:
            lines += one(f"refindex_upstream_{name}_total", "counter",
                         f"I/O engine: {help_text}.", f"upstream_{name}")
        lines += one("refindex_transcode_cache_hits_total", "counter",
                     "Re-encoded chunks answered from the cache.", "transcode_hits")
        lines += one("refindex_transcode_cache_misses_total", "counter",
                     "Re-encoded chunks not in the cache.", "transcode_misses")
        lines += one("refindex_transcode_cache_bytes", "gauge",
                     "Bytes of re-encoded chunks cached.", "transcode_bytes")
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, rows: list[tuple[str, object]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
            *(f"{name}{suffix} {value}" for suffix, value in rows)]
