"""A digest of a block of a chunk table — which chunks it references (by source URL, offset and
length) and its inline bytes — so a re-export can tell that the chunks an Icechunk branch
already holds are the ones a grown collection begins with, and write only the new ones.
Columnar: one hash over NumPy columns, no Python object per chunk."""

from __future__ import annotations

import hashlib

import numpy as np

from refindex.index import ChunkTable

_PIECE = 1 << 20  # chunks hashed at a time


def table_digest(table: ChunkTable, urls: list[str], block: tuple[int, ...]) -> str:
    """The digest of the chunks of ``table`` in the grid block ``[0:block[0], 0:block[1],
    ...]`` (a prefix of the grid along every axis), hex."""
    url_ids = np.array([int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8).digest(),
                                       "little") for u in urls] + [0, 0], dtype=np.uint64)
    grid = table.grid
    digest = hashlib.blake2b(repr(tuple(block)).encode(), digest_size=16)
    if tuple(block) == grid:  # the whole table, piece by piece: no copy of its columns
        pieces = (table.columns(lo, lo + _PIECE) for lo in range(0, len(table), _PIECE))
    else:
        select = tuple(slice(0, n) for n in block)
        columns = [c.reshape(grid)[select].ravel()
                   for c in (table.source, table.offset, table.length)]
        pieces = ((c[lo:lo + _PIECE] for c in columns)
                  for lo in range(0, columns[0].size, _PIECE))
    for source, offset, length in pieces:
        # ABSENT (-1) and INLINE (-2) index the two zeros at the end of url_ids.
        digest.update(url_ids[source].tobytes())
        digest.update(np.minimum(source, 0).astype(np.int8).tobytes())  # absent or inline
        digest.update(np.ascontiguousarray(offset).tobytes())
        digest.update(np.ascontiguousarray(length).tobytes())
    if table.inline:
        # By grid coordinates: flat positions differ between a grid and its grown form.
        for flat in sorted(table.inline):
            coords = table.coords(flat)
            if all(c < n for c, n in zip(coords, block, strict=True)):
                digest.update(repr(coords).encode())
                digest.update(hashlib.blake2b(table.inline[flat], digest_size=16).digest())
    return digest.hexdigest()
