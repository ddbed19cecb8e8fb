"""Zarr v3 shards (codec ``sharding_indexed``): where a shard keeps its index, and reading
the indexes into one reference per inner chunk.

A shard's index is ``prod(chunks_per_shard)`` pairs of little- or big-endian uint64 (offset,
nbytes) in C order of the inner chunks, optionally followed by a CRC32C of those bytes; it
sits at the start or the end of the shard. An inner chunk never written is marked by both
numbers being 2**64 - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import google_crc32c
import numpy as np

from refindex.errors import ContainerError, UnsupportedFeatureError

EMPTY = np.uint64(2**64 - 1)
_PAIR = 16  # bytes of one (offset, nbytes) entry


@dataclass(frozen=True)
class ShardLayout:
    """A sharded array's shards: ``chunks_per_shard`` inner chunks each, an index at the end
    (else the start), its numbers ``big_endian`` or not, followed by a CRC32C or not."""

    chunks_per_shard: tuple[int, ...]
    index_at_end: bool = True
    big_endian: bool = False
    checksum: bool = True

    @property
    def index_size(self) -> int:
        """Bytes of a shard's index (with its checksum)."""
        return math.prod(self.chunks_per_shard) * _PAIR + (4 if self.checksum else 0)

    def index_span(self, shard_size: int) -> tuple[int, int]:
        """(offset, length) of the index within a shard of ``shard_size`` bytes."""
        start = shard_size - self.index_size if self.index_at_end else 0
        return start, self.index_size

    def decode(self, data: bytes, shard_size: int, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Offsets (within the shard) and lengths of the inner chunks, in C order, from the
        index bytes ``data``; -1 for chunks never written. Bad checksums and references
        outside the shard raise ContainerError naming ``where``."""
        entries = len(data) - (4 if self.checksum else 0)
        if shard_size < self.index_size or len(data) != self.index_size:
            raise ContainerError(f"{where}: shard of {shard_size} bytes cannot hold its index "
                                 f"of {self.index_size} bytes: the shard is truncated")
        if self.checksum:
            stored = int.from_bytes(data[entries:], "little")
            if google_crc32c.value(data[:entries]) != stored:
                raise ContainerError(f"{where}: the shard index's CRC32C checksum does not "
                                     "match: the shard is corrupt")
        pairs = np.frombuffer(data, dtype=">u8" if self.big_endian else "<u8",
                              count=entries // 8).reshape(-1, 2)
        offsets, lengths = pairs[:, 0], pairs[:, 1]
        empty = (offsets == EMPTY) & (lengths == EMPTY)
        if np.any((offsets == EMPTY) != (lengths == EMPTY)):
            raise ContainerError(f"{where}: the shard index marks a chunk half empty: the "
                                 "shard is corrupt")
        written = ~empty
        start, length = offsets[written], lengths[written]
        # Compared without adding: offset + length can wrap around in uint64.
        if np.any(start > shard_size) or np.any(length > np.uint64(shard_size) - start):
            raise ContainerError(f"{where}: the shard index points past the end of the shard "
                                 f"({shard_size} bytes): the shard is corrupt or truncated")
        offsets = np.where(empty, -1, offsets.astype(np.int64))
        lengths = np.where(empty, -1, lengths.astype(np.int64))
        return offsets, lengths


def shard_layout(config: dict, outer_chunks: list[int], where: str, array: str) -> ShardLayout:
    """The layout that a ``sharding_indexed`` codec's ``config`` describes, for shards of
    ``outer_chunks``; what cannot be read exactly raises UnsupportedFeatureError."""
    inner = config.get("chunk_shape")
    if not (isinstance(inner, list) and len(inner) == len(outer_chunks)
            and all(isinstance(n, int) and n > 0 for n in inner)):
        raise ContainerError(f"{where}: array {array!r}: sharding_indexed chunk_shape "
                             f"{inner!r} does not fit shards of {outer_chunks}")
    if any(outer % n for outer, n in zip(outer_chunks, inner, strict=True)):
        raise ContainerError(f"{where}: array {array!r}: inner chunks {inner} do not divide "
                             f"shards of {outer_chunks}")
    location = config.get("index_location", "end")
    if location not in ("start", "end"):
        raise ContainerError(f"{where}: array {array!r}: unknown shard index_location "
                             f"{location!r}")
    big_endian, checksum = _index_codecs(config.get("index_codecs"), where, array)
    return ShardLayout(tuple(o // n for o, n in zip(outer_chunks, inner, strict=True)),
                       location == "end", big_endian, checksum)


def _index_codecs(codecs: object, where: str, array: str) -> tuple[bool, bool]:
    """(big endian, checksum) of ``index_codecs`` that are ``bytes`` optionally followed by
    ``crc32c``: the only shard indexes zarr writes, and all we can read."""
    names = [c.get("name") if isinstance(c, dict) else c for c in codecs or []]
    if names not in (["bytes"], ["bytes", "crc32c"]):
        raise UnsupportedFeatureError(where, array, f"shard index codecs {names}",
                                      "only 'bytes' optionally followed by 'crc32c' are read")
    first = codecs[0] if isinstance(codecs[0], dict) else {}
    endian = (first.get("configuration") or {}).get("endian", "little")
    if endian not in ("little", "big"):
        raise ContainerError(f"{where}: array {array!r}: shard index endian {endian!r}")
    return endian == "big", len(names) == 2
