"""The index of a packed store, made as a scan of its parts makes it: every metadata document
and chunk (or shard) file is a member of the part that holds it, and the archive scanner
(``scan.zarrstore.scan_members``) reads the hierarchy, serves v3 arrays as their Zarr v2
equivalents and references every inner chunk of a shard, reading the shard indexes from the
local parts. The files that are no part of the hierarchy are referenced under their own keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from refindex import __version__
from refindex.index import ChunkRef, Index, Source
from refindex.io import ReadEngine, ReadOptions
from refindex.pack.layout import PackLayout
from refindex.pack.zarr_tree import StoreTree
from refindex.scan.options import ScanOptions
from refindex.scan.zarrstore.members import MemberTable
from refindex.scan.zarrstore.scanner import scan_members


def build_index(tree: StoreTree, layout: PackLayout, offsets: list[np.ndarray],
                paths: list[Path], sources: list[Source]) -> tuple[Index, list[str]]:
    """The index of the packed store, and what the scan left out (members that are no part of
    the hierarchy its metadata describes, such as chunks of an array that stale consolidated
    metadata does not name). Part ``k`` is the local tar ``paths[k]``, whose members start at
    ``offsets[k]`` (bytes), and source ``k`` of the index (``sources[k]``: the part as readers
    will see it, the local tar or the uploaded object)."""
    part_of = np.empty(layout.count, dtype=np.int64)
    data_at = np.empty(layout.count, dtype=np.int64)
    for part, found in zip(layout.parts, offsets, strict=True):
        part_of[part.start:part.stop] = part.number
        data_at[part.start:part.stop] = found
    index = Index(sources=list(sources),
                  generator={"name": "refindex", "version": __version__,
                             "packed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    table = _member_table(tree, layout, part_of, data_at, paths, sources)
    engine = ReadEngine(ReadOptions())
    try:
        # A packed store must read back whole: an array the sidecar cannot describe is an
        # error, not left out.
        skipped = scan_members(table, index, engine, ScanOptions(on_unsupported="error"))
    finally:
        engine.close_sync()
    _keep_v2_attributes(index, tree)
    others = layout.segments[0].start + len(tree.metadata)
    for at, entry in enumerate(tree.others, others):
        index.extra[entry.key] = ChunkRef(int(part_of[at]), int(data_at[at]), entry.size)
    return index, skipped


def _member_table(tree: StoreTree, layout: PackLayout, part_of: np.ndarray,
                  data_at: np.ndarray, paths: list[Path], sources: list[Source]) -> MemberTable:
    """The metadata and chunk members of the parts (the other files are none of the scan's
    business), each where the part holds its data."""
    table = MemberTable(str(tree.root))
    for path, source in zip(paths, sources, strict=True):
        table.add_source(source, str(path))
    first = layout.segments[0].start  # the loose files: metadata first
    for at, entry in enumerate(tree.metadata, first):
        table.add(entry.key, int(part_of[at]), int(data_at[at]), entry.size)
    for segment in layout.segments[1:]:
        array, rows = segment.array, slice(segment.start, segment.stop)
        for key, part, offset, size in zip(array.keys(0, len(array)), part_of[rows].tolist(),
                                           data_at[rows].tolist(), array.size.tolist(),
                                           strict=True):
            table.add(key, part, offset, size)
    return table


def _keep_v2_attributes(index: Index, tree: StoreTree) -> None:
    """A v2 array keeps its ``.zattrs`` as they are, so that the packed store reads key for
    key as the original: the scan of an archive adds the fill value as ``_FillValue`` (how
    xarray reads the missing values of a v2 store), which would change them."""
    for path, array in tree.arrays.items():
        node = index.arrays.get(path)
        if node is not None and array.spec.zarr_format == 2:
            node.attrs = array.attributes
