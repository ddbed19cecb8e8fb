"""Read-ahead of in-order chunk walks."""

from __future__ import annotations

from refindex.index import ArrayNode, ChunkTable
from refindex.store.readahead import ChunkReadahead


def node(chunks: int = 1000, length: int = 100) -> ArrayNode:
    table = ChunkTable((chunks,))
    for flat in range(chunks):
        table.set(flat, 0, flat * length, length)
    return ArrayNode("a", {}, {}, table)


def walk(readahead: ChunkReadahead, array: ArrayNode, positions) -> list[int]:
    """A walk of one read at a time (as zarr's ``get``s when they trickle in)."""
    fetched: list[int] = []
    for flat in positions:
        fetched += readahead.after(array, flat)
        readahead.done(array)
    return fetched


def test_an_in_order_walk_is_read_ahead():
    fetched = walk(ChunkReadahead(10**9), node(), range(100))
    assert fetched and fetched == sorted(set(fetched))
    assert max(fetched) > 99  # ahead of the walk


def test_read_ahead_never_exceeds_the_chunks_walked():
    """A walk that stops wastes at most about as much as it read."""
    for stop in (10, 50, 300):
        fetched = walk(ChunkReadahead(10**9), node(), range(stop))
        assert len([f for f in fetched if f >= stop]) <= stop + 8


def test_no_read_ahead_while_many_reads_of_the_array_are_in_flight():
    """zarr asking for many chunks at once is reading ahead already."""
    readahead = ChunkReadahead(10**9)
    array = node()
    assert [readahead.after(array, flat) for flat in range(200)][40:] == [[]] * 160


def test_a_strided_walk_is_not_read_ahead():
    assert walk(ChunkReadahead(10**9), node(), range(0, 1000, 40)) == []


def test_a_short_walk_is_not_read_ahead():
    assert walk(ChunkReadahead(10**9), node(), range(5)) == []


def test_each_read_ahead_stays_within_the_byte_budget():
    readahead = ChunkReadahead(budget=1000)  # ten chunks of 100 bytes
    array = node()
    for flat in range(500):
        assert len(readahead.after(array, flat)) <= 10


def test_read_ahead_stops_at_the_last_chunk_and_skips_absent_ones():
    array = node(chunks=30)
    array.chunks.source[20:25] = -1  # absent
    fetched = walk(ChunkReadahead(10**9), array, range(30))
    assert fetched and max(fetched) < 30
    assert not set(fetched) & set(range(20, 25))
