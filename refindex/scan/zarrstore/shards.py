"""The chunk table of a sharded array: every shard's index read (batched through the I/O
engine: one range per shard at a known place, merged and fetched in parallel) and turned into
one reference per inner chunk, into the shard's own file or the archive holding it."""

from __future__ import annotations

import math

import numpy as np

from refindex.errors import UnsupportedFeatureError
from refindex.index import ChunkTable
from refindex.io import ReadEngine
from refindex.scan.zarrstore.arrays import ArraySpec
from refindex.scan.zarrstore.chunks import StoredChunks
from refindex.scan.zarrstore.members import STORED, MemberTable, method_name, read_ranges
from refindex.scan.zarrstore.sharding import ShardLayout

_INNER_PER_BATCH = 1 << 20  # inner chunks whose index entries are read in one engine call


def sharded_chunk_table(spec: ArraySpec, stored: StoredChunks, table: MemberTable,
                        source_ids: np.ndarray, engine: ReadEngine) -> ChunkTable:
    """The inner chunks of every stored shard of ``spec``, given the index's ids of the
    table's sources; chunks of absent shards and empty inner chunks are absent."""
    layout = spec.shard
    if layout is None:
        raise ValueError(f"array {spec.path!r} is not sharded")
    _check_stored(spec, stored, table)
    chunks = ChunkTable(spec.chunk_grid)
    per_shard = math.prod(layout.chunks_per_shard)
    batch = max(1, _INNER_PER_BATCH // per_shard)
    for start in range(0, len(stored.rows), batch):
        part = StoredChunks(stored.rows[start:start + batch], stored.coords[start:start + batch])
        offsets, lengths = _read_indexes(layout, part, table, engine)
        _place(chunks, layout, part, table, source_ids, offsets, lengths)
    return chunks


def _check_stored(spec: ArraySpec, stored: StoredChunks, table: MemberTable) -> None:
    methods = table.column("method")[stored.rows]
    if np.any(methods != STORED):
        row = int(stored.rows[np.flatnonzero(methods != STORED)[0]])
        raise UnsupportedFeatureError(
            table.where, spec.path,
            f"shard {table.keys[row]!r} is a zip member with "
            f"{method_name(int(table.column('method')[row]))}",
            "inner chunks of a compressed shard cannot be referenced; store shards "
            "uncompressed in the zip (zip -0)")


def _read_indexes(layout: ShardLayout, shards: StoredChunks, table: MemberTable,
                  engine: ReadEngine) -> tuple[np.ndarray, np.ndarray]:
    """Offsets within each shard and lengths of its inner chunks, (shards, chunks per
    shard) each, -1 where a chunk is empty."""
    sizes = table.column("size")[shards.rows]
    spans = []
    for row, size in zip(shards.rows.tolist(), sizes.tolist(), strict=True):
        start, length = layout.index_span(size)
        if start < 0:  # too small to hold an index: decode() reports it, naming the shard
            start, length = 0, size
        spans.append((int(table.column("source")[row]),
                      int(table.column("offset")[row]) + start, length))
    data = read_ranges(table, spans, engine)
    decoded = [layout.decode(raw, size, table.describe(row))
               for raw, size, row in zip(data, sizes.tolist(), shards.rows.tolist(),
                                         strict=True)]
    return np.stack([d[0] for d in decoded]), np.stack([d[1] for d in decoded])


def _place(chunks: ChunkTable, layout: ShardLayout, shards: StoredChunks, table: MemberTable,
           source_ids: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> None:
    """Write the written inner chunks of ``shards`` that fall inside the grid into
    ``chunks`` (inner chunks of edge shards past the array's end are left out)."""
    per_shard = np.array(layout.chunks_per_shard, dtype=np.int64)
    local = np.indices(layout.chunks_per_shard, dtype=np.int64).reshape(len(per_shard), -1)
    # Grid coordinates of every inner chunk: (shards, dimensions, chunks per shard).
    inner = shards.coords[:, :, None] * per_shard[None, :, None] + local[None, :, :]
    grid = np.array(chunks.grid, dtype=np.int64)
    keep = (inner < grid[None, :, None]).all(axis=1) & (offsets >= 0)
    if chunks.grid:
        flat = np.ravel_multi_index(tuple(inner.transpose(1, 0, 2)[:, keep]), chunks.grid)
    else:
        flat = np.zeros(int(keep.sum()), dtype=np.int64)
    rows = np.broadcast_to(shards.rows[:, None], keep.shape)[keep]
    chunks.source[flat] = source_ids[table.column("source")[rows]]
    chunks.offset[flat] = table.column("offset")[rows] + offsets[keep]
    chunks.length[flat] = lengths[keep]
