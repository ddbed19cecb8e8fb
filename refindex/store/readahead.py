"""Read-ahead for readers that walk an array's chunks in grid order.

zarr reads at most ``async.concurrency`` chunks at once, each as soon as a slot frees up, so
a long in-order walk (a plane, a time series) would cost one round trip per few chunks. Once
a walk is seen, the chunks just ahead of it are fetched too (merged into the same requests by
the planner, kept by the engine's cache, joined by the ``get``s that arrive while they are in
flight). The window doubles as the walk goes on but never exceeds the chunks walked so far nor
a byte budget, so a walk that stops early wastes at most about as much as it read. When many
reads of the array are in flight at once, zarr is already asking far enough ahead (its
concurrency was raised, by refindex's own reads or ``refindex.tune_zarr``): then nothing is
read ahead, and nothing is wasted. At zarr's default of 10 it is the read-ahead that keeps
the requests large.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from refindex.index import WHOLE, ArrayNode

_FIRST_WINDOW = 8  # chunks fetched ahead by the first read-ahead of a walk
_MIN_STREAK = 8  # in-order chunks seen before a walk is trusted
_SLACK = 16  # chunks a concurrent reader may arrive out of order by and still be in order
_BUSY = 32  # reads of one array in flight from which zarr is asking far enough ahead itself


@dataclass
class _Walk:
    last: int  # highest chunk position read so far
    streak: int  # chunks read in order so far
    ahead_until: int  # highest chunk position fetched ahead so far
    window: int  # chunks the next read-ahead fetches


class ChunkReadahead:
    """Per array, follows the chunk positions being read and says which to fetch ahead;
    at most ``budget`` bytes per read-ahead. Thread-safe."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._walks: dict[str, _Walk] = {}
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def after(self, node: ArrayNode, flat: int) -> list[int]:
        """Positions of the chunks of ``node`` to fetch ahead now that chunk ``flat`` is
        being read (usually none). Call ``done(node)`` when that read is over."""
        with self._lock:
            busy = self._in_flight.get(node.path, 0)
            self._in_flight[node.path] = busy + 1
            walk = self._walks.get(node.path)
            if walk is None or not walk.last - _SLACK <= flat <= walk.last + _SLACK:
                self._walks[node.path] = _Walk(flat, 1, flat, _FIRST_WINDOW)
                return []
            if flat <= walk.last:
                return []  # a straggler of the walk
            walk.streak += flat - walk.last
            walk.last = flat
            if (walk.streak < _MIN_STREAK or busy >= _BUSY
                    or walk.ahead_until - flat > walk.window // 2):
                return []
            start = max(walk.ahead_until, flat) + 1
            chosen = self._chunks_from(node, start, walk.window)
            walk.ahead_until = start + walk.window - 1
            walk.window = min(2 * walk.window, max(walk.streak, _FIRST_WINDOW))
            return chosen

    def done(self, node: ArrayNode) -> None:
        """A read announced to ``after`` is over."""
        with self._lock:
            left = self._in_flight.get(node.path, 1) - 1
            if left:
                self._in_flight[node.path] = left
            else:
                self._in_flight.pop(node.path, None)

    def _chunks_from(self, node: ArrayNode, start: int, count: int) -> list[int]:
        """The referenced chunks among ``count`` from ``start``, cut at ``budget`` bytes."""
        table = node.chunks
        stop = min(start + count, len(table))
        if start >= stop:
            return []
        sources, _, lengths = table.columns(start, stop)  # decodes only the parts walked
        wanted = (sources >= 0) & (lengths != WHOLE) & (lengths > 0)
        positions = np.flatnonzero(wanted)
        within = np.cumsum(lengths[positions]) <= self.budget
        return (positions[within] + start).tolist()
