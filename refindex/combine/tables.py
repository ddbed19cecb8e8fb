"""The combined chunk tables, filled tile by tile.

An array whose combined dimensions are its leading axes (new dimensions first, then the
concatenated one: ``(member, time, lat, lon)``, ``(time, lat, lon)``) has each tile in one
contiguous run of its chunk table, and tiles come in table order when members are taken in
the order of their positions. Such a table is *streamed*: each tile's columns are appended
to the part being filled, and a full part is encoded at once (``chunk_parts.encode_part``,
a few bytes per chunk) — memory holds one part of 20 bytes a chunk, not the whole table.
Other arrays are filled in memory by block copies (``ChunkTable.put_block``).
"""

from __future__ import annotations

import numpy as np

from refindex.index import ABSENT, ChunkTable, TablePart
from refindex.sidecar.chunk_parts import PART_SIZE, decode_part, encode_part


class StreamedTable:
    """A combined table filled in order, tile after tile, and encoded part by part."""

    def __init__(self, grid: tuple[int, ...], part_size: int = PART_SIZE) -> None:
        self.grid = grid
        self.count = int(np.prod(grid, dtype=np.int64))
        self.part_size = part_size
        self.parts: list[dict] = []
        self.filled = 0  # chunks appended so far
        self._source = np.full(part_size, ABSENT, dtype=np.int32)
        self._offset = np.zeros(part_size, dtype=np.int64)
        self._length = np.zeros(part_size, dtype=np.int64)
        self._inline: dict[int, bytes] = {}

    def put_block(self, start: tuple[int, ...], table: ChunkTable, source_map: np.ndarray) -> None:
        """Append a tile: ``table``'s chunks, which start at grid position ``start`` — the
        next chunk to fill, since tiles come in order."""
        flat = int(np.ravel_multi_index(start, self.grid)) if self.grid else 0
        if flat != self.filled:
            raise ValueError(f"tile at {start} (chunk {flat}) is not the next one "
                             f"({self.filled}): tiles must come in table order")
        source = table.source
        mapped = np.where(source >= 0, source_map[np.maximum(source, 0)], source)
        columns = (mapped, table.offset, table.length)
        inline = {self.filled + k: v for k, v in table.inline.items()}
        done = 0
        while done < len(source):
            at = self.filled % self.part_size
            take = min(self.part_size - at, len(source) - done)
            for buffer, column in zip((self._source, self._offset, self._length), columns,
                                      strict=True):
                buffer[at:at + take] = column[done:done + take]
            done += take
            self.filled += take
            if self.filled % self.part_size == 0:
                self._flush(self.part_size)
        self._inline.update(inline)

    def _flush(self, size: int) -> None:
        start = len(self.parts) * self.part_size
        inline = {k: v for k, v in self._inline.items() if start <= k < start + size}
        for k in inline:
            del self._inline[k]
        self.parts.append(encode_part(self._source[:size], self._offset[:size],
                                      self._length[:size], inline))
        # Only what was used: the buffers hold a whole part (a million chunks each).
        self._source[:size] = ABSENT
        self._offset[:size] = 0
        self._length[:size] = 0

    def finish(self, sources: int, where: str) -> ChunkTable:
        """The table, lazily decoded from its encoded parts (kept for writing as they are)."""
        if self.filled != self.count:
            raise ValueError(f"{where}: {self.filled} of {self.count} chunks were filled")
        if self.filled % self.part_size:
            self._flush(self.filled % self.part_size)
        parts, size, count = self.parts, self.part_size, self.count

        def load(number: int) -> TablePart:
            start = number * size
            return decode_part(parts[number], start, min(size, count - start), sources,
                               f"{where}, part {number}")

        return ChunkTable.lazy(self.grid, size, load, encoded=parts)
