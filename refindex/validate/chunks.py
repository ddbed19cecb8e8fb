"""The deep check: read a sample of each array's chunks through the store and decode them.

The sample is chosen by :func:`sample_chunks` (deterministic for a seed); the chunks are read
through zarr and the :class:`~refindex.store.ReferenceStore`, so they take the path every
reader takes: the I/O engine's identity checks, then the array's codecs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import zarr.api.asynchronous as zarr_async

from refindex.index import ABSENT, ArrayNode, ChunkTable
from refindex.store import ReferenceStore
from refindex.validate.report import ArrayCheck, ChunkFailure
from refindex.validate.workers import run_bounded

_WINDOW = 4096  # chunk positions looked at at once when searching a table for present chunks


def sample_chunks(table: ChunkTable, count: int, seed: int | str = 0) -> list[int]:
    """Flat positions (sorted) of up to ``count`` chunks of ``table`` that exist: the first
    and the last, then chunks drawn by ``random.Random(seed)`` (a random position, moved on
    to the next chunk that exists). The same table, count and seed give the same sample.

    Only the parts of a lazily loaded table that the search touches are decoded.
    """
    if count < 1 or len(table) == 0:
        return []
    first = _next_present(table, 0, len(table))
    if first is None:
        return []
    last = _last_present(table)
    picks = {first, last} if count > 1 else {first}
    rng = random.Random(seed)
    for _ in range(4 * count):  # sparse or small tables: stop after a few repeated draws
        if len(picks) >= count:
            break
        picks.add(_next_present(table, rng.randint(first, last), last + 1))
    return sorted(picks)


async def read_samples(
    store: ReferenceStore, count: int, seed: int, failed_sources: set[int]
) -> tuple[ArrayCheck, ...]:
    """Read and decode ``count`` sampled chunks of every array of ``store`` (seeded per array
    with ``"{seed}:{path}"``), ``store.options.max_concurrency`` at a time; chunks of the
    sources in ``failed_sources`` are counted as skipped, not read."""
    samples = [_Sample.of(path, node, count, seed, failed_sources)
               for path, node in sorted(store.index.arrays.items())]
    arrays = {}
    for sample in samples:
        if sample.chunks:
            try:  # metadata only, from the index in memory
                arrays[sample.path] = await zarr_async.open_array(
                    store=store, path=sample.path, mode="r", zarr_format=2)
            except Exception as error:  # noqa: BLE001 - reported with every chunk of it
                arrays[sample.path] = error
    jobs = [lambda sample=sample, key=key, region=region: _read_chunk(
                arrays[sample.path], sample.path, key, region)
            for sample in samples for key, region in sample.chunks]
    failures: dict[str, list[ChunkFailure]] = {}
    for failure in await run_bounded(jobs, store.options.max_concurrency):
        if failure is not None:
            failures.setdefault(failure.array, []).append(failure)
    checks = []
    for sample in samples:
        bad = failures.get(sample.path, [])
        keys = {failure.key for failure in bad}
        read = tuple(key for key, _ in sample.chunks if key not in keys)
        checks.append(ArrayCheck(sample.path, read, sample.skipped, tuple(bad)))
    return tuple(checks)


@dataclass(frozen=True)
class _Sample:
    """The sampled chunks of one array to read (key, region), and how many were skipped."""

    path: str
    chunks: tuple[tuple[str, tuple[slice, ...]], ...]
    skipped: int

    @classmethod
    def of(cls, path: str, node: ArrayNode, count: int, seed: int, failed_sources: set[int]
           ) -> _Sample:
        chunks, skipped = [], 0
        for flat in sample_chunks(node.chunks, count, f"{seed}:{path}"):
            if node.chunks.get(flat).source in failed_sources:
                skipped += 1
                continue
            coords = node.chunks.coords(flat)
            chunks.append((node.chunk_key(coords), node.chunk_grid.region(coords)))
        return cls(path, tuple(chunks), skipped)


async def _read_chunk(array, path: str, key: str, region: tuple[slice, ...]
                      ) -> ChunkFailure | None:
    """None if chunk ``key`` reads and decodes, else the failure."""
    try:
        if isinstance(array, Exception):
            raise array
        await array.getitem(region)
    except Exception as error:  # noqa: BLE001 - codecs raise anything on corrupt bytes
        return ChunkFailure(path, key, _describe(error))
    return None


def _next_present(table: ChunkTable, start: int, stop: int) -> int | None:
    """The first position in ``[start, stop)`` whose chunk exists, or None."""
    while start < stop:
        end = min(start + _WINDOW, stop)
        hits = np.flatnonzero(table.columns(start, end)[0] != ABSENT)
        if hits.size:
            return start + int(hits[0])
        start = end
    return None


def _last_present(table: ChunkTable) -> int | None:
    """The last position whose chunk exists, or None."""
    stop = len(table)
    while stop > 0:
        start = max(stop - _WINDOW, 0)
        hits = np.flatnonzero(table.columns(start, stop)[0] != ABSENT)
        if hits.size:
            return start + int(hits[-1])
        stop = start
    return None


def _describe(error: Exception) -> str:
    """``Type: message``, the type qualified unless it is Python's or refindex's own
    (``zlib.error: Error -3 while decompressing data``)."""
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ != "builtins" and not kind.__module__.startswith("refindex"):
        name = f"{kind.__module__}.{name}"
    return f"{name}: {error}"
