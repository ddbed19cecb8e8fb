"""Parse the header of a NetCDF3 file — classic (CDF-1), 64-bit offset (CDF-2) or 64-bit data
(CDF-5) — into plain values, reading only the header's bytes.

The format is the NetCDF classic format specification (netCDF-C ``docs/
file_format_specifications.md``) and its CDF-5 extension: big-endian throughout; counts,
lengths, dimension ids and ``vsize`` are 32-bit in CDF-1/2 and 64-bit in CDF-5; ``begin``
offsets are 32-bit in CDF-1 and 64-bit otherwise; names and attribute values are padded to 4
bytes. Nothing here knows Zarr: :mod:`refindex.scan.netcdf3.layout` turns the result into
byte ranges.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

import numpy as np

from refindex.errors import ContainerError
from refindex.scan.json_values import decode_text
from refindex.scan.netcdf3.types import NC_TYPES, NcType

_TAG_DIMENSION, _TAG_VARIABLE, _TAG_ATTRIBUTE = 0x0A, 0x0B, 0x0C
_READ_SIZE = 64 * 1024  # bytes of the first read of the header
_Item = TypeVar("_Item")


@dataclass(frozen=True)
class Dimension:
    """A named axis; ``length`` 0 marks the record (unlimited) dimension."""

    name: str
    length: int


@dataclass(frozen=True)
class Attribute:
    """An attribute's values as stored: a 1-d array (``S1`` bytes for char attributes)."""

    name: str
    values: np.ndarray


@dataclass(frozen=True)
class Variable:
    """A variable as the header describes it; ``begin`` is the byte offset of its data (of its
    first record, for a record variable). ``vsize`` is kept for messages only: readers must
    compute sizes themselves (it saturates at 2**32 - 1 and lies about padding)."""

    name: str
    dimids: tuple[int, ...]
    attributes: tuple[Attribute, ...]
    nc_type: NcType
    vsize: int
    begin: int


@dataclass(frozen=True)
class Header:
    """A whole header. ``numrecs`` is None when the file says "streaming" (0xFFFFFFFF: the
    record count must come from the file size); ``size`` is the header's length in bytes."""

    version: int
    numrecs: int | None
    dimensions: tuple[Dimension, ...]
    attributes: tuple[Attribute, ...]
    variables: tuple[Variable, ...]
    size: int


def read_header(fileobj: BinaryIO, file_size: int, name: str) -> Header:
    """The header of the NetCDF3 file ``fileobj`` (``file_size`` bytes, called ``name`` in
    errors); a ContainerError names what is wrong and where if it is corrupt or truncated."""
    return _HeaderReader(fileobj, file_size, name).header()


class _HeaderReader:
    """Reads the header front to back, fetching more of the file only as the parse needs it."""

    def __init__(self, fileobj: BinaryIO, file_size: int, name: str) -> None:
        self.fileobj, self.file_size, self.name = fileobj, file_size, name
        self.buffer = bytearray()
        self.position = 0
        self.version = 1
        fileobj.seek(0)

    def header(self) -> Header:
        magic = self._take(4)
        if magic[:3] != b"CDF" or magic[3] not in (1, 2, 5):
            raise self._error(f"not a NetCDF3 file (magic bytes {magic!r})", at=0)
        self.version = magic[3]
        numrecs = self._numrecs()
        dimensions = tuple(self._list(_TAG_DIMENSION, "dimension", self._dimension))
        attributes = tuple(self._attributes())
        variables = tuple(self._list(_TAG_VARIABLE, "variable", self._variable))
        return Header(self.version, numrecs, dimensions, attributes, variables, self.position)

    # -- the grammar ----------------------------------------------------------------------

    def _numrecs(self) -> int | None:
        value = self._count()
        streaming = 0xFFFFFFFFFFFFFFFF if self.version == 5 else 0xFFFFFFFF
        return None if value == streaming else value

    def _list(self, tag: int, what: str, read_item: Callable[[], _Item],
              min_item_bytes: int = 8) -> list[_Item]:
        """A tagged list (``ABSENT`` or ``tag nelems [item ...]``) of items read by
        ``read_item``, each at least ``min_item_bytes`` long."""
        at = self.position
        found = self._uint32()
        count = self._count()
        if count == 0:
            return []  # ABSENT; netCDF-C accepts any tag with zero elements too
        if found != tag:
            raise self._error(f"expected the {what} list tag {tag:#x}, found {found:#x}", at=at)
        self._check_room(count * min_item_bytes, f"{count} {what}s")
        return [read_item() for _ in range(count)]

    def _dimension(self) -> Dimension:
        return Dimension(self._name("dimension"), self._count())

    def _attributes(self) -> list[Attribute]:
        return self._list(_TAG_ATTRIBUTE, "attribute", self._attribute, min_item_bytes=12)

    def _attribute(self) -> Attribute:
        name = self._name("attribute")
        nc_type = self._nc_type(f"attribute {name!r}")
        count = self._count()
        self._check_room(count * nc_type.dtype.itemsize, f"attribute {name!r}")
        raw = self._take_padded(count * nc_type.dtype.itemsize)
        return Attribute(name, np.frombuffer(raw, dtype=nc_type.dtype, count=count).copy())

    def _variable(self) -> Variable:
        name = self._name("variable")
        rank = self._count()
        self._check_room(rank * self._count_bytes, f"the dimension ids of variable {name!r}")
        dimids = tuple(self._count() for _ in range(rank))
        attributes = tuple(self._attributes())
        nc_type = self._nc_type(f"variable {name!r}")
        vsize = self._count()
        begin = self._unsigned(4 if self.version == 1 else 8)
        return Variable(name, dimids, attributes, nc_type, vsize, begin)

    def _name(self, what: str) -> str:
        at = self.position
        length = self._count()
        self._check_room(length, f"a {what} name")
        name = decode_text(self._take_padded(length))
        if not name:
            raise self._error(f"a {what} has an empty name", at=at)
        return name

    def _nc_type(self, what: str) -> NcType:
        at = self.position
        code = self._uint32()
        nc_type = NC_TYPES.get(code)
        if nc_type is None or (nc_type.cdf5_only and self.version != 5):
            raise self._error(f"{what} has unknown type code {code} for CDF-{self.version}",
                              at=at)
        return nc_type

    # -- bytes ----------------------------------------------------------------------------

    @property
    def _count_bytes(self) -> int:
        return 8 if self.version == 5 else 4

    def _count(self) -> int:
        """A NON_NEG: counts, lengths, dimension ids, vsize (64-bit in CDF-5)."""
        return self._unsigned(self._count_bytes)

    def _uint32(self) -> int:
        return self._unsigned(4)

    def _unsigned(self, size: int) -> int:
        return struct.unpack(">I" if size == 4 else ">Q", self._take(size))[0]

    def _take_padded(self, length: int) -> bytes:
        data = self._take(length)
        self._take(-length % 4)
        return data

    def _take(self, length: int) -> bytes:
        end = self.position + length
        if end > len(self.buffer):
            self._fill(end)
        data = bytes(self.buffer[self.position:end])
        self.position = end
        return data

    def _fill(self, end: int) -> None:
        if end > self.file_size:
            raise self._error(f"the header needs {end} bytes but the file has {self.file_size}; "
                              "it is truncated or corrupt", at=self.position)
        # Each read doubles what we have, so a header of n bytes costs O(log n) reads (each
        # a request, remotely) and at most n bytes read past its end.
        step = max(_READ_SIZE, len(self.buffer))
        want = max(end - len(self.buffer), min(step, self.file_size - len(self.buffer)))
        self.fileobj.seek(len(self.buffer))
        while want > 0:
            data = self.fileobj.read(want)
            if not data:
                raise self._error(f"the file ended at byte {len(self.buffer)} inside the header",
                                  at=self.position)
            self.buffer += data
            want -= len(data)

    def _check_room(self, length: int, what: str) -> None:
        """Refuse a count that cannot fit in the rest of the file before acting on it, so a
        corrupt count fails at once rather than after reading the whole file."""
        if self.position + length > self.file_size:
            left = self.file_size - self.position
            raise self._error(f"{what} would need {length} bytes, more than the {left} left "
                              "in the file", at=self.position)

    def _error(self, problem: str, at: int) -> ContainerError:
        return ContainerError(f"{self.name}: NetCDF3 header at byte {at}: {problem}")
