"""The members of a Zarr store kept in an archive or a directory: their keys and, in columns,
where their bytes lie; and batched reads of the few members a scan must look into (metadata
documents, shard indexes) through the I/O engine, so that a remote archive costs few requests.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.index import Source
from refindex.io import RangeRequest, ReadEngine

STORED, DEFLATED = 0, 8  # zip compression methods; tar and directory members are STORED
ENCRYPTED = -2  # the method recorded for an encrypted zip member
_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 12: "bzip2", 14: "lzma",
                 93: "zstd", 95: "xz", 98: "ppmd"}
NO_CRC = -1


def method_name(method: int) -> str:
    """A zip compression method's name, for messages (``"bzip2"``, ``"method 77"``)."""
    known = {STORED: "stored", DEFLATED: "deflate", ENCRYPTED: "encryption", **_METHOD_NAMES}
    return known.get(method, f"method {method}")


@dataclass(frozen=True)
class Member:
    """One member: ``size`` bytes at ``offset`` of source ``source`` (an id of the table),
    compressed with zip ``method``, ``length`` bytes once decompressed, CRC-32 ``crc``."""

    key: str
    source: int
    offset: int
    size: int
    method: int = STORED
    length: int = 0
    crc: int = NO_CRC


class MemberTable:
    """Keys of a store's members ('/'-separated, as the archive names them) and where their
    bytes are: columns of source ids, byte offsets, byte sizes, zip methods, decompressed
    lengths and CRC-32s, a row per member; duplicate keys keep the last row, as extracting the
    archive would.

    ``sources`` are the objects as readers will see them (their ids are this table's own);
    ``locations`` are where this scan reads them (the same unless the scan was told the URL
    readers should use). ``notes`` say what the listing left out, for the scan's report.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.sources: list[Source] = []
        self.locations: list[str] = []
        self.keys: list[str] = []
        self.notes: list[str] = []
        self._columns = {name: array("q") for name in
                         ("source", "offset", "size", "method", "length", "crc")}
        self._frozen: dict[str, np.ndarray] | None = None

    def add_source(self, source: Source, location: str) -> int:
        """Id (in this table) of a new source read at ``location``."""
        self.sources.append(source)
        self.locations.append(location)
        return len(self.sources) - 1

    def add(self, key: str, source: int, offset: int, size: int, method: int = STORED,
            length: int | None = None, crc: int = NO_CRC) -> None:
        """A member ``key`` of ``size`` bytes at ``offset`` of ``source``."""
        self._frozen = None  # NumPy views of the columns would keep them from growing
        self.keys.append(key)
        values = (source, offset, size, method, size if length is None else length, crc)
        for column, value in zip(self._columns.values(), values, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` (``source``, ``offset``, ``size``, ``method``, ``length``, ``crc``)
        as an int64 NumPy array."""
        if self._frozen is None:
            self._frozen = {name: np.frombuffer(values, dtype=np.int64) if len(values)
                            else np.zeros(0, dtype=np.int64)
                            for name, values in self._columns.items()}
        return self._frozen[name]

    def member(self, row: int) -> Member:
        columns = [int(self.column(name)[row]) for name in self._columns]
        return Member(self.keys[row], *columns)

    def describe(self, row: int) -> str:
        """Where member ``row`` is, for messages: its own file (a member that is the whole of
        its source), or the archive and its key."""
        source = int(self.column("source")[row])
        location, key = self.locations[source], self.keys[row]
        whole = (int(self.column("offset")[row]) == 0
                 and self.sources[source].size == int(self.column("size")[row]))
        return location if whole else f"{location}: member {key!r}"

    def latest_rows(self) -> dict[str, int]:
        """Row of every key (the last one of duplicates)."""
        return {key: row for row, key in enumerate(self.keys)}


def read_members(table: MemberTable, rows: Sequence[int], engine: ReadEngine) -> list[bytes]:
    """The decompressed bytes of members ``rows``, in one batch of engine reads (merged and
    parallel); zip CRC-32s are checked."""
    members = [table.member(row) for row in rows]
    for member in members:
        if member.method not in (STORED, DEFLATED):
            raise UnsupportedFeatureError(
                table.where, member.key, f"zip member with {method_name(member.method)}",
                "only stored and deflated members can be read; re-create the zip with those")
    requests = [_request(table, member.source, member.offset, member.size)
                for member in members]
    data = engine.read_sync(requests)
    return [_decoded(table.where, member, raw) for member, raw in zip(members, data, strict=True)]


def read_ranges(table: MemberTable, ranges: Sequence[tuple[int, int, int]],
                engine: ReadEngine) -> list[bytes]:
    """Bytes of (source id, offset, length) ranges of the table's sources, in one batch."""
    return engine.read_sync([_request(table, *span) for span in ranges])


def _request(table: MemberTable, source: int, offset: int, length: int) -> RangeRequest:
    recorded = table.sources[source]
    return RangeRequest(table.locations[source], offset, length, etag=recorded.etag,
                        size=recorded.size)


def _decoded(where: str, member: Member, raw: bytes) -> bytes:
    data = raw
    if member.method == DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = inflater.decompress(raw) + inflater.flush()
        except zlib.error as error:
            raise ContainerError(f"{where}: member {member.key!r}: corrupt deflate data "
                                 f"({error})") from None
    if len(data) != member.length or (
            member.crc != NO_CRC and zlib.crc32(data) != member.crc):
        raise ContainerError(f"{where}: member {member.key!r}: its bytes do not match the "
                             "archive's record of them (length or CRC-32): the archive is "
                             "corrupt")
    return data
