"""ChunkGrid and AxisChunks: regular and irregular chunk grids, and the regions they cover."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refindex.assemble import pieces_of
from refindex.grid import AxisChunks, ChunkGrid


def test_a_regular_axis_cuts_the_last_chunk_short():
    axis = AxisChunks.regular(10, 4)
    assert axis.edges.tolist() == [0, 4, 8, 10] and axis.stored.tolist() == [4, 4, 4]
    assert axis.regular_chunk() == 4


def test_members_of_uneven_lengths_make_an_irregular_axis():
    axis = AxisChunks.concatenated([AxisChunks.regular(365, 30), AxisChunks.regular(366, 30)])
    assert axis.count == 26 and axis.length == 731
    assert axis.regular_chunk() is None
    assert axis.to_runs() == [[12, 30, 30], [1, 5, 30], [12, 30, 30], [1, 6, 30]]


def test_members_that_fill_their_chunks_stay_regular():
    axis = AxisChunks.concatenated([AxisChunks.regular(1, 1)] * 5)
    assert axis.regular_chunk() == 1
    grid = ChunkGrid((axis, AxisChunks.regular(7, 3)))
    assert grid.regular_chunks() == (1, 3) and grid.shape == (5, 7)


@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 12)), min_size=1, max_size=8))
def test_runs_round_trip(members):
    axis = AxisChunks.concatenated([AxisChunks.regular(n, c) for n, c in members])
    again = AxisChunks.from_runs(axis.to_runs())
    assert again.edges.tolist() == axis.edges.tolist()
    assert again.stored.tolist() == axis.stored.tolist()


@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 7)), min_size=1, max_size=6),
       st.data())
def test_pieces_cover_a_region_exactly_once(members, data):
    axis = AxisChunks.concatenated([AxisChunks.regular(n, c) for n, c in members])
    grid = ChunkGrid((axis, AxisChunks.regular(5, 2)))
    start = data.draw(st.integers(0, axis.length - 1))
    stop = data.draw(st.integers(start + 1, axis.length))
    covered = np.zeros((stop - start, 5), dtype=int)
    for piece in pieces_of(grid, (slice(start, stop), slice(0, 5))):
        region = grid.region(piece.coords)
        # the piece's source lies within the chunk's own elements, not its padding
        for s, r in zip(piece.source, region, strict=True):
            assert 0 <= s.start < s.stop <= r.stop - r.start
        covered[piece.target] += 1
    assert (covered == 1).all()


@pytest.mark.parametrize(("start", "stop", "expected"),
                         [(0, 1, [0]), (29, 31, [0, 1]), (30, 35, [1]), (34, 36, [1, 2]),
                          (0, 0, [])])
def test_overlapping_chunks(start, stop, expected):
    axis = AxisChunks.concatenated([AxisChunks.regular(35, 30), AxisChunks.regular(10, 30)])
    assert list(axis.overlapping(start, stop)) == expected
