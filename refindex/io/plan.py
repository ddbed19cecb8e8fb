"""Range planning: few, large reads for many small ranges, and each caller's exact bytes back.

Pure functions, lists in and lists out. ``plan_reads`` groups the requested ranges by source,
merges ranges of one source whose gap is at most ``max_gap`` bytes into reads of at most
``max_request`` bytes, and splits any read longer than ``split_size`` bytes into equal parallel
parts. ``assemble`` / ``split_results`` hand every caller exactly its bytes from what was
fetched. Planned reads of one source never overlap, so no byte is fetched twice.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from refindex.io.requests import RangeRequest

SourceKey = tuple[str, str | None, int | None, str | None]
"""A source version: (url, ETag, size, last modified) of the object a request reads."""

Piece = tuple[int, int, int | None]
"""Where a part of a caller's bytes sits: (planned read index, start, stop) within the bytes
of that read; ``stop`` is None for "to the end" (whole-object reads)."""


@dataclass(frozen=True)
class ReadPlan:
    """The reads to fetch for a list of requests and how to give each request its bytes.

    ``reads[j]`` is a planned read; ``pieces[i]`` lists, in order, the slices of planned reads
    whose concatenation is request ``i``'s bytes (empty for a zero-length request).
    ``users[j]`` are the requests that need read ``j``; ``first_part[j]`` is False for the
    second and later parts of a split read.
    """

    reads: list[RangeRequest]
    pieces: list[tuple[Piece, ...]]
    users: list[list[int]]
    first_part: list[bool]

    @property
    def merged(self) -> int:
        """Requests that needed no read of their own (merged into another's, or duplicates)."""
        return sum(1 for p in self.pieces if p) - sum(self.first_part)

    @property
    def split(self) -> int:
        """Extra reads made by splitting long reads into parts."""
        return len(self.reads) - sum(self.first_part)


def plan_reads(
    requests: Sequence[RangeRequest], *, max_gap: int, max_request: int, split_size: int
) -> ReadPlan:
    """Plan the reads that fetch ``requests`` (gap, request and split sizes in bytes).

    Ranges of one source (same URL, ETag and size) whose gap is at most ``max_gap`` merge
    while the merged read stays within ``max_request`` (a range longer than that is read on
    its own); reads longer than ``split_size`` are split into ``ceil(length / split_size)``
    equal parts. Whole-object reads (``length == -1``) are never merged with ranges; identical
    ones share one read. Sources are never mixed.
    """
    reads: list[RangeRequest] = []
    first_part: list[bool] = []
    pieces: list[tuple[Piece, ...]] = [()] * len(requests)
    for members in _by_source(requests).values():
        whole = [i for i in members if requests[i].length == -1]
        ranged = [i for i in members if requests[i].length > 0]
        if whole:
            for i in whole:
                pieces[i] = ((len(reads), 0, None),)
            reads.append(requests[whole[0]])
            first_part.append(True)
        if not ranged:
            continue
        spans = [(requests[i].offset, requests[i].offset + requests[i].length) for i in ranged]
        merged_blocks = _merge(sorted(spans), max_gap, max_request)
        blocks = [_split(block, split_size) for block in merged_blocks]
        parts = [part for block in blocks for part in block]
        first_part.extend(k == 0 for block in blocks for k in range(len(block)))
        first = len(reads)
        template = requests[ranged[0]]
        reads.extend(
            dataclasses.replace(template, offset=start, length=stop - start)
            for start, stop in parts
        )
        starts = [start for start, _ in parts]
        for i, (start, stop) in zip(ranged, spans, strict=True):
            pieces[i] = _pieces_of(start, stop, parts, starts, first)
    users: list[list[int]] = [[] for _ in reads]
    for i, caller_pieces in enumerate(pieces):
        for read_index in dict.fromkeys(piece[0] for piece in caller_pieces):
            users[read_index].append(i)
    plan = ReadPlan(reads=reads, pieces=pieces, users=users, first_part=first_part)
    return _without_unused(plan) if not all(users) else plan


def request_size(total: int, parallel: int, *, min_request: int, max_request: int) -> int:
    """The largest merged read for a batch of ``total`` bytes: ``max_request``, unless the
    batch is small enough to spread over ``parallel`` requests of at least ``min_request``
    bytes each, so that its ranges arrive side by side rather than one after the other in a
    long read (a few large chunks read as one request would wait for each other to decode)."""
    return max(1, min(max_request, max(min_request, -(-total // max(parallel, 1)))))


def assemble(pieces: Sequence[Piece], fetched: Mapping[int, bytes] | Sequence[bytes]) -> bytes:
    """One caller's bytes from the fetched bytes of the planned reads (``fetched[j]``)."""
    if len(pieces) == 1:
        read_index, start, stop = pieces[0]
        data = fetched[read_index]
        # A caller that is a whole read gets the fetched object itself, without a copy.
        if start == 0 and (stop is None or stop == len(data)):
            return data
        return data[start:stop]
    return b"".join(fetched[j][start:stop] for j, start, stop in pieces)


def split_results(plan: ReadPlan, fetched: Sequence[bytes]) -> list[bytes]:
    """Every caller's bytes, in request order, from the bytes of all planned reads."""
    return [assemble(caller_pieces, fetched) for caller_pieces in plan.pieces]


def source_of(request: RangeRequest) -> SourceKey:
    """The source version ``request`` reads: ranges of one source version may be merged."""
    return (request.url, request.etag, request.size, request.last_modified)


def _by_source(requests: Sequence[RangeRequest]) -> dict[SourceKey, list[int]]:
    """Request indices grouped by source version, in order of first appearance."""
    groups: dict[SourceKey, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(source_of(request), []).append(i)
    return groups


def _merge(spans: list[tuple[int, int]], max_gap: int, max_request: int) -> list[list[int]]:
    """Sorted ``(start, stop)`` spans -> disjoint ``[start, stop]`` blocks (greedy, which is
    minimal for consecutive grouping under a gap and a size limit)."""
    blocks: list[list[int]] = []
    for start, stop in spans:
        if blocks:
            block = blocks[-1]
            if stop <= block[1]:
                continue  # inside the block already: a duplicate or a nested range
            if start - block[1] <= max_gap and stop - block[0] <= max_request:
                block[1] = stop
                continue
            # A range overlapping a full block: fetch only its part past the block's end.
            start = max(start, block[1])
        blocks.append([start, stop])
    return blocks


def _split(block: list[int], split_size: int) -> list[tuple[int, int]]:
    """``block`` as ``ceil(length / split_size)`` adjacent parts of (nearly) equal length."""
    start, stop = block
    count = -(-(stop - start) // split_size)
    if count <= 1:
        return [(start, stop)]
    bounds = [start + (stop - start) * k // count for k in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _without_unused(plan: ReadPlan) -> ReadPlan:
    """``plan`` without the parts of split reads that fall wholly in a merged gap."""
    kept = [j for j, users in enumerate(plan.users) if users]
    new_index = {old: new for new, old in enumerate(kept)}
    return ReadPlan(
        reads=[plan.reads[j] for j in kept],
        pieces=[tuple((new_index[j], a, b) for j, a, b in p) for p in plan.pieces],
        users=[plan.users[j] for j in kept],
        first_part=[plan.first_part[j] for j in kept],
    )


def _pieces_of(
    start: int, stop: int, parts: list[tuple[int, int]], starts: list[int], first: int
) -> tuple[Piece, ...]:
    """The slices of the (sorted, disjoint) ``parts`` that make up ``[start, stop)``;
    ``first`` is the read index of ``parts[0]``."""
    k = bisect.bisect_right(starts, start) - 1
    found: list[Piece] = []
    while start < stop:
        part_start, part_stop = parts[k]
        end = min(stop, part_stop)
        found.append((first + k, start - part_start, end - part_start))
        start = end
        k += 1
    return tuple(found)
