"""The range planner: merging, splitting and handing every caller exactly its bytes back."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refindex.io import RangeRequest
from refindex.io.plan import plan_reads, request_size, split_results

SOURCES = {f"s3://bucket/{name}": random.Random(name).randbytes(size)
           for name, size in (("a", 5000), ("b", 3000), ("c", 800))}


def fetch(read: RangeRequest) -> bytes:
    data = SOURCES[read.url]
    return data if read.length == -1 else data[read.offset : read.offset + read.length]


def serve(requests, **limits):
    plan = plan_reads(requests, **limits)
    return plan, split_results(plan, [fetch(read) for read in plan.reads])


@st.composite
def request_lists(draw):
    """Random ranges (duplicates, overlaps, whole objects, empty ones) over random sources."""
    count = draw(st.integers(0, 40))
    requests = []
    for _ in range(count):
        url = draw(st.sampled_from(sorted(SOURCES)))
        size = len(SOURCES[url])
        if draw(st.integers(0, 20)) == 0:
            requests.append(RangeRequest(url, 0, -1))
            continue
        offset = draw(st.integers(0, size))
        requests.append(RangeRequest(url, offset, draw(st.integers(0, size - offset))))
    return requests


limits = st.fixed_dictionaries({
    "max_gap": st.integers(0, 600),
    "max_request": st.integers(1, 2000),
    "split_size": st.integers(1, 3000),
})


@settings(max_examples=150, deadline=None)
@given(request_lists(), limits)
def test_every_caller_gets_exactly_its_bytes(requests, limits):
    _, results = serve(requests, **limits)
    assert results == [fetch(request) for request in requests]


@settings(max_examples=150, deadline=None)
@given(request_lists(), limits)
def test_planned_reads_of_one_source_never_overlap(requests, limits):
    plan = plan_reads(requests, **limits)
    by_url: dict[str, list[tuple[int, int]]] = {}
    for read in plan.reads:
        if read.length != -1:
            by_url.setdefault(read.url, []).append((read.offset, read.offset + read.length))
    for spans in by_url.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


@settings(max_examples=150, deadline=None)
@given(request_lists(), limits)
def test_no_read_exceeds_max_request_unless_one_range_does(requests, limits):
    plan = plan_reads(requests, **limits)
    longest = max((r.length for r in requests), default=0)
    for read in plan.reads:
        if read.length == -1:
            continue
        if read.length > limits["max_request"]:
            # Only a single caller range longer than max_request makes such a read, and then
            # only up to split_size.
            assert longest > limits["max_request"]
            assert read.length <= limits["split_size"]


@settings(max_examples=100, deadline=None)
@given(request_lists(), limits)
def test_reads_never_mix_sources_and_whole_reads_stay_whole(requests, limits):
    plan = plan_reads(requests, **limits)
    for read, users in zip(plan.reads, plan.users, strict=True):
        assert users, "a read nobody needs (a split part inside a merged gap)"
        assert {requests[i].url for i in users} == {read.url}
        if read.length == -1:
            assert all(requests[i].length == -1 for i in users)


@given(st.integers(1, 50), st.integers(1, 100), st.integers(0, 100), st.integers(1, 5000))
def test_merging_is_minimal_for_evenly_spaced_ranges(count, length, gap, max_request):
    """``count`` ranges of ``length`` bytes, ``gap`` apart: with a gap within max_gap they
    need ceil(count / per_read) reads, where per_read ranges fit in max_request."""
    url = "s3://bucket/a"
    requests = [RangeRequest(url, k * (length + gap), length) for k in range(count)]
    plan = plan_reads(requests, max_gap=gap, max_request=max_request, split_size=10**9)
    per_read = max(1, (max_request + gap) // (length + gap))
    assert len(plan.reads) == math.ceil(count / per_read)
    assert plan.merged == count - len(plan.reads)


def test_gaps_beyond_max_gap_are_not_merged():
    url = "s3://bucket/a"
    requests = [RangeRequest(url, 0, 10), RangeRequest(url, 20, 10), RangeRequest(url, 41, 10)]
    plan = plan_reads(requests, max_gap=10, max_request=1000, split_size=1000)
    assert [(r.offset, r.length) for r in plan.reads] == [(0, 30), (41, 10)]


def test_a_long_range_is_split_into_equal_parallel_parts():
    url = "s3://bucket/a"
    plan, results = serve([RangeRequest(url, 100, 4000)], max_gap=0, max_request=1000,
                          split_size=1500)
    assert [r.length for r in plan.reads] == [1333, 1333, 1334]
    assert plan.split == 2
    assert results == [SOURCES[url][100:4100]]


def test_duplicates_and_nested_ranges_share_one_read():
    url = "s3://bucket/b"
    requests = [RangeRequest(url, 10, 100), RangeRequest(url, 10, 100), RangeRequest(url, 20, 5)]
    plan, results = serve(requests, max_gap=0, max_request=100, split_size=1000)
    assert [(r.offset, r.length) for r in plan.reads] == [(10, 100)]
    assert plan.merged == 2
    assert results == [fetch(r) for r in requests]


def test_identity_is_part_of_the_source():
    url = "s3://bucket/a"
    requests = [RangeRequest(url, 0, 10, etag='"1"'), RangeRequest(url, 10, 10, etag='"2"')]
    plan = plan_reads(requests, max_gap=100, max_request=1000, split_size=1000)
    assert len(plan.reads) == 2
    assert [r.etag for r in plan.reads] == ['"1"', '"2"']


def test_a_caller_that_is_a_whole_read_gets_the_fetched_bytes_without_a_copy():
    url = "s3://bucket/a"
    plan = plan_reads([RangeRequest(url, 5, 50)], max_gap=0, max_request=100, split_size=100)
    fetched = [fetch(plan.reads[0])]
    assert split_results(plan, fetched)[0] is fetched[0]


MiB = 2**20


@pytest.mark.parametrize(("total", "expected"), [
    (8 * 680_000, 1 * MiB),  # a small region: its 680 KB chunks are read side by side
    (1_600_000, 1 * MiB),  # a plane of tiny chunks: still merged into MiB-sized reads
    (32 * 2 * MiB, 2 * MiB),  # spread evenly over the 32 connections
    (680_000_000, 4 * MiB),  # a full read: max_request
    (0, 1 * MiB),
])
def test_request_size_spreads_small_batches_over_parallel_requests(total, expected):
    assert request_size(total, 32, min_request=MiB, max_request=4 * MiB) == expected


def test_a_small_batch_of_large_adjacent_ranges_is_not_merged_into_one_read():
    size = 680_000
    requests = [RangeRequest("s3://b/k", i * size, size) for i in range(8)]
    limit = request_size(8 * size, 32, min_request=MiB, max_request=4 * MiB)
    plan = plan_reads(requests, max_gap=MiB, max_request=limit, split_size=32 * MiB)
    assert len(plan.reads) == 8
    assert split_results(plan, [bytes(r.length) for r in plan.reads]) == [bytes(size)] * 8
