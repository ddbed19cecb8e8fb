"""Indexes for sidecar tests: small ones built by hand, and the exact comparison of two."""

from __future__ import annotations

import numpy as np

from refindex.index import WHOLE, ArrayNode, ChunkTable, Index, Source


def zarray(shape: list[int], chunks: list[int], dtype: str = "<i4") -> dict:
    return {"zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype,
            "compressor": None, "filters": None, "fill_value": 0, "order": "C"}


def random_table(grid: tuple[int, ...], sources: int, rng: np.random.Generator) -> ChunkTable:
    """Absent, inline, whole-object and plain references, plain ones often back to back."""
    table = ChunkTable(grid)
    kinds = rng.choice(4, size=len(table), p=rng.dirichlet(np.ones(4)))
    lengths = rng.integers(0, 2**31, len(table)) if rng.random() < 0.3 else rng.integers(
        0, 200, len(table))
    ends = rng.integers(0, 2**45, sources)
    for flat, kind in enumerate(kinds.tolist()):
        source = int(rng.integers(0, sources))
        if kind == 1:
            offset = int(ends[source]) if rng.random() < 0.7 else int(rng.integers(0, 2**45))
            table.set(flat, source, offset, int(lengths[flat]))
            ends[source] = offset + int(lengths[flat])
        elif kind == 2:
            table.set(flat, source, 0, WHOLE)
        elif kind == 3:
            table.set_inline(flat, rng.bytes(int(rng.integers(0, 20))))
    return table


def grid_index(count: int, sources: int = 1, paths: tuple[str, ...] = ("a",)) -> Index:
    """Arrays of ``count`` chunks of 10 bytes, chunk i at offset 10 * i of source 0."""
    index = Index(sources=[Source("s3://bucket/data.h5", 10**9, '"abc"')] + [
        Source(f"s3://bucket/more{i}.h5") for i in range(1, sources)],
        generator={"name": "refindex", "scanned_at": "2026-01-02T03:04:05Z"})
    for path in paths:
        table = ChunkTable((count,))
        table.source[:] = 0
        table.offset[:] = np.arange(count) * 10
        table.length[:] = 10
        index.arrays[path] = ArrayNode(path, zarray([count * 10], [10], "|u1"), {}, table)
    return index


def assert_same_index(actual: Index, expected: Index) -> None:
    """Every source, group, attribute, extra key and chunk reference is the same."""
    assert actual.sources == expected.sources
    assert actual.groups == expected.groups
    assert actual.generator == expected.generator
    assert actual.extra == expected.extra
    assert set(actual.arrays) == set(expected.arrays)
    for path, node in expected.arrays.items():
        other = actual.arrays[path]
        assert (other.zarray, other.attrs, other.attr_dtypes) == (
            node.zarray, node.attrs, node.attr_dtypes)
        assert other.chunks.grid == node.chunks.grid
        np.testing.assert_array_equal(other.chunks.source, node.chunks.source)
        referenced = node.chunks.source >= 0
        np.testing.assert_array_equal(other.chunks.offset[referenced],
                                      node.chunks.offset[referenced])
        np.testing.assert_array_equal(other.chunks.length[referenced],
                                      node.chunks.length[referenced])
        assert other.chunks.inline == node.chunks.inline
