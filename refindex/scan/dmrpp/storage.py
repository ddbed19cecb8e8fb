"""Where a DMR++ variable's bytes are: ``dmrpp:chunks`` (chunked, with its filters and fill
value, or one contiguous block), a lone ``dmrpp:chunk`` (contiguous), ``dmrpp:compact`` and
``dmrpp:missingdata`` (the values themselves, base64), or nothing (never written).

Chunk positions (``chunkPositionInArray``) are element coordinates of the chunk's first
element, as HDF5 reports them; chunks the document does not list are absent (fill value).
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import dataclass

import numcodecs
import numpy as np

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.index import ChunkTable
from refindex.scan.blocks import row_blocks
from refindex.scan.dmrpp.document import dmrpp, local_name
from refindex.scan.dmrpp.types import parse_number

_BYTE_ORDERS = {"LE": "<", "BE": ">"}
# Filters DMR++ names in ``compressionType`` (in the order they were applied when writing).
_FILTERS = ("deflate", "shuffle", "fletcher32")
# The order in which HDF5 files apply them, which older documents do not state.
_FILTERS_APPLIED = ("shuffle", "deflate", "fletcher32")
_DEFAULT_DEFLATE_LEVEL = 6
# A document's claimed grid is allocated as a chunk table (20 bytes a chunk): a larger one is
# taken for damage (or malice) rather than given gigabytes.
MAX_CHUNKS = 2**27


@dataclass(frozen=True)
class Storage:
    """A variable's chunk shape, chunk table and codecs; ``byte_order`` as the document says
    (``<`` or ``>``), ``fill`` the text of its fill value (None: none stated)."""

    chunk_shape: tuple[int, ...]
    table: ChunkTable
    codecs: list[dict]
    byte_order: str
    fill: str | None
    sized: bool = False
    """Whether the chunking depends on the data file's size, which was not known."""


@dataclass(frozen=True)
class Place:
    """What storage needs of the variable and the document: the variable's shape and dtype
    (native byte order), the data file's source id and size, and the names for errors."""

    shape: tuple[int, ...]
    dtype: np.dtype
    source_id: int
    data_size: int | None
    document: str
    variable: str
    max_inline: int
    legacy_order: bool = False
    """The document has no ``dmrpp:version``: written before DMR++ listed filters in the order
    they were applied, so they are taken in HDF5's usual order (as Hyrax does)."""

    def corrupt(self, problem: str) -> ContainerError:
        return ContainerError(f"{self.document}: variable {self.variable!r}: {problem}")

    def unsupported(self, feature: str, hint: str = "") -> UnsupportedFeatureError:
        return UnsupportedFeatureError(self.document, self.variable, feature, hint)


def read_storage(var, place: Place) -> Storage:
    """The :class:`Storage` of variable element ``var``."""
    if var.find(dmrpp("specialstructuredata")) is not None:
        raise place.unsupported("dmrpp:specialstructuredata storage")
    vlsa = var.find(dmrpp("vlsa"))
    if vlsa is not None:
        return _strings(vlsa, place)
    chunks = var.find(dmrpp("chunks"))
    if chunks is not None:
        return _chunks(chunks, place)
    lone = var.find(dmrpp("chunk"))
    if lone is not None:
        return _contiguous([lone], lone.get("byteOrder"), None, place)
    compact = var.find(dmrpp("compact"))
    if compact is not None:
        return _inline(_base64(compact.text, place, "dmrpp:compact"), place, "dmrpp:compact")
    missing = var.find(dmrpp("missingdata"))
    if missing is not None:
        _check_inline_size(place, "dmrpp:missingdata")  # before inflating anything
        data = _inflated(_base64(missing.text, place, "dmrpp:missingdata"), place)
        return _inline(data, place, "dmrpp:missingdata")
    return _contiguous([], None, None, place)  # storage never allocated


def _chunks(chunks, place: Place) -> Storage:
    if chunks.find(dmrpp("block")) is not None or chunks.get("LBChunk", "").lower() == "true":
        raise place.unsupported("linked-block chunks (dmrpp:block, HDF4)")
    order = chunks.get("byteOrder")
    fill = chunks.get("fillValue")
    listed = chunks.findall(dmrpp("chunk"))
    sizes = chunks.find(dmrpp("chunkDimensionSizes"))
    codecs = _codecs(chunks, place)
    if sizes is None:
        if codecs:
            raise place.corrupt("filters without chunkDimensionSizes (contiguous storage "
                                "cannot be filtered)")
        return _contiguous(listed, order, fill, place)
    chunk_shape = _integers(sizes.text, place, "chunkDimensionSizes")
    if len(chunk_shape) != len(place.shape) or not all(c > 0 for c in chunk_shape):
        raise place.corrupt(f"chunkDimensionSizes {list(chunk_shape)} do not fit shape "
                            f"{list(place.shape)}")
    grid = tuple(-(-s // c) for s, c in zip(place.shape, chunk_shape, strict=True))
    table = _table(grid, chunk_shape, place)
    if listed:
        _fill_table(table, listed, chunk_shape, place)
    return Storage(chunk_shape, table, codecs, _byte_order(order, place), fill)


def _fill_table(table: ChunkTable, listed, chunk_shape: tuple[int, ...], place: Place) -> None:
    count = len(listed)
    offsets = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    starts = np.empty((count, len(chunk_shape)), dtype=np.int64)
    for i, chunk in enumerate(listed):
        offsets[i], lengths[i] = _extent(chunk, place)
        if chunk.get("fm", "0") not in ("0", ""):
            raise place.unsupported(f"a chunk HDF5 stored with filter mask {chunk.get('fm')} "
                                    "(filters skipped for it)",
                                    "scan the data file itself, which re-encodes such chunks")
        if chunk.get("href") is not None:
            raise place.unsupported("chunks in another file (dmrpp:chunk href)")
        position = chunk.get("chunkPositionInArray")
        if position is None:
            if len(table) != 1:
                raise place.corrupt(f"chunk at offset {offsets[i]} without "
                                    "chunkPositionInArray")
            starts[i] = 0
        else:
            starts[i] = _integers(position.strip().strip("[]").replace(",", " "), place,
                                  "chunkPositionInArray", len(chunk_shape))
    shape = np.asarray(chunk_shape, dtype=np.int64)
    if (starts % shape).any() or (starts < 0).any() or (starts >= np.asarray(place.shape)).any():
        bad = starts[((starts % shape) != 0).any(axis=1) | (starts < 0).any(axis=1)
                     | (starts >= np.asarray(place.shape)).any(axis=1)][0]
        raise place.corrupt(f"chunkPositionInArray {bad.tolist()} is not the start of a chunk "
                            f"of shape {list(chunk_shape)} inside {list(place.shape)}")
    flat = np.ravel_multi_index((starts // shape).T, table.grid) if table.grid else \
        np.zeros(count, dtype=np.int64)
    if len(np.unique(flat)) != count:
        raise place.corrupt("the same chunk is listed twice")
    _check_extents(offsets, lengths, place)
    table.source[flat] = place.source_id
    table.offset[flat] = offsets
    table.length[flat] = lengths


def _contiguous(listed, order: str | None, fill: str | None, place: Place) -> Storage:
    """One block of the values in C order, as row blocks of about 8 MiB (as the HDF5 scanner
    exposes contiguous storage); no block at all: never written."""
    if len(listed) > 1:
        raise place.corrupt(f"{len(listed)} chunks but no chunkDimensionSizes")
    itemsize = place.dtype.itemsize
    nbytes = math.prod(place.shape) * itemsize
    offset = length = None
    if listed:
        offset, length = _extent(listed[0], place)
        if length != nbytes:
            raise place.corrupt(f"contiguous data of {length} bytes for {nbytes} bytes of "
                                f"values (shape {list(place.shape)})")
        _check_extents(np.asarray([offset]), np.asarray([length]), place)
    room = place.data_size - offset if offset is not None and place.data_size else None
    chunk_shape, grid = row_blocks(place.shape, itemsize, room)
    table = _table(grid, chunk_shape, place)
    # The last row block may reach past the values only while it stays in the file.
    sized = place.data_size is None and offset is not None and (
        row_blocks(place.shape, itemsize, 2**62)[0] != chunk_shape)
    if offset is not None and nbytes:
        block = math.prod(chunk_shape) * itemsize
        table.source[:] = place.source_id
        table.offset[:] = offset + np.arange(len(table), dtype=np.int64) * block
        table.length[:] = block
    return Storage(chunk_shape, table, [], _byte_order(order, place), fill, sized)


def _table(grid: tuple[int, ...], chunk_shape: tuple[int, ...], place: Place) -> ChunkTable:
    """An empty chunk table of ``grid``; a ContainerError when it is implausibly large."""
    count = math.prod(grid)
    if count > MAX_CHUNKS:
        raise place.corrupt(f"a grid of {count:,} chunks (shape {list(place.shape)}, chunks "
                            f"{list(chunk_shape)}); refused above {MAX_CHUNKS:,}")
    return ChunkTable(grid)


def check_table_extents(table: ChunkTable, place: Place) -> None:
    """A ContainerError when a chunk of ``table`` ends past the end of the data file."""
    referenced = table.source >= 0
    _check_extents(table.offset[referenced], table.length[referenced], place)


def _check_inline_size(place: Place, what: str) -> None:
    nbytes = math.prod(place.shape) * place.dtype.itemsize
    if nbytes > place.max_inline:
        raise place.unsupported(f"{what} values of {nbytes:,} bytes", "raise --max-inline")


def _inline(data: bytes, place: Place, what: str) -> Storage:
    """Values the document holds itself: one inline chunk of the whole array."""
    _check_inline_size(place, what)
    nbytes = math.prod(place.shape) * place.dtype.itemsize
    if len(data) != nbytes:
        raise place.corrupt(f"{what} holds {len(data)} bytes for {nbytes} bytes of values")
    table = ChunkTable(tuple(1 for _ in place.shape))
    table.set_inline(0, data)
    # The values as the server's reader produced them: in the machine's order, which for
    # every machine Hyrax runs on is little-endian.
    return Storage(place.shape, table, [], "<", None)


def _strings(vlsa, place: Place) -> Storage:
    """``dmrpp:vlsa``: the values of an array of variable-length strings, each a ``v``
    element (``c``: the times it repeats), inlined as the HDF5 scanner inlines them."""
    if place.dtype != object:
        raise place.corrupt(f"dmrpp:vlsa values for a variable of {place.dtype}")
    count = math.prod(place.shape)
    values: list[str] = []
    for v in vlsa:
        if local_name(v.tag) != "v":
            continue
        repeat = v.get("c", v.get(dmrpp("c"), "1"))
        if not repeat.isdigit() or len(values) + int(repeat) > count:
            raise place.corrupt(f"dmrpp:vlsa holds more than {count} values, or a count "
                                f"{repeat!r} that is not a whole number")
        values.extend([v.text or ""] * int(repeat))
    if len(values) != count:
        raise place.corrupt(f"dmrpp:vlsa holds {len(values)} values for {count} elements")
    array = np.empty(place.shape, dtype=object)
    array.reshape(-1)[:] = values
    data = bytes(numcodecs.VLenUTF8().encode(array))
    if len(data) > place.max_inline:
        raise place.unsupported(f"dmrpp:vlsa values of {len(data):,} bytes encoded",
                                "raise --max-inline")
    table = ChunkTable(tuple(1 for _ in place.shape))
    table.set_inline(0, data)
    return Storage(place.shape, table, [{"id": "vlen-utf8"}], "|", None)


def _codecs(chunks, place: Place) -> list[dict]:
    names = chunks.get("compressionType", "").split()
    if place.legacy_order:
        names = [n for n in _FILTERS_APPLIED if n in names] + [
            n for n in names if n not in _FILTERS_APPLIED]
    levels = [int(v) for v in chunks.get("deflateLevel", chunks.get("deflate_level", "")).split()
              if v.lstrip("-").isdigit()]
    codecs = []
    for name in names:
        if name not in _FILTERS:
            raise place.unsupported(f"filter {name!r}", "DMR++ states deflate, shuffle and "
                                    "fletcher32 only; scan the data file itself")
        if name == "deflate":
            level = levels.pop(0) if levels else _DEFAULT_DEFLATE_LEVEL
            codecs.append({"id": "zlib", "level": level})
        elif name == "shuffle":
            codecs.append({"id": "shuffle", "elementsize": place.dtype.itemsize})
        else:
            codecs.append({"id": "fletcher32"})
    return codecs


def _extent(chunk, place: Place) -> tuple[int, int]:
    try:
        offset, length = int(chunk.get("offset", "")), int(chunk.get("nBytes", ""))
    except ValueError:
        raise place.corrupt(f"chunk without a whole offset and nBytes "
                            f"({dict(chunk.attrib)})") from None
    if offset < 0 or length < 0:
        raise place.corrupt(f"chunk with negative offset or nBytes ({offset}, {length})")
    return offset, length


def _check_extents(offsets: np.ndarray, lengths: np.ndarray, place: Place) -> None:
    if place.data_size is None or not len(offsets):
        return
    ends = offsets + lengths
    past = np.flatnonzero(ends > place.data_size)
    if past.size:
        i = int(past[0])
        raise place.corrupt(f"chunk at offset {int(offsets[i])} of {int(lengths[i])} bytes ends "
                            f"past the end of the data file ({place.data_size} bytes); the "
                            "DMR++ does not describe this file")


def _byte_order(order: str | None, place: Place) -> str:
    if order is None:
        return ">"  # the DMR++ default
    if order not in _BYTE_ORDERS:
        raise place.corrupt(f"byteOrder {order!r} is neither LE nor BE")
    return _BYTE_ORDERS[order]


def _integers(text: str | None, place: Place, what: str, count: int | None = None
              ) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in (text or "").split())
    except ValueError:
        raise place.corrupt(f"{what} {text!r} is not a list of integers") from None
    if count is not None and len(values) != count:
        raise place.corrupt(f"{what} {text!r} does not have {count} values")
    return values


def _base64(text: str | None, place: Place, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise place.corrupt(f"{what} is not base64") from None


def _inflated(data: bytes, place: Place) -> bytes:
    """``dmrpp:missingdata`` values: zlib-compressed (as Hyrax writes them), inflated to no
    more than the array's size; or, when they are no zlib stream, as they are."""
    nbytes = math.prod(place.shape) * place.dtype.itemsize
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, nbytes + 1)
        if inflater.eof and not inflater.unused_data:
            return out
    except zlib.error:
        pass
    if len(data) == nbytes:
        return data
    raise place.corrupt("dmrpp:missingdata is neither a zlib stream nor the array's bytes")


def fill_value_of(text: str | None, dtype: np.dtype, place: Place) -> np.ndarray | None:
    """The fill value the document states for absent chunks, as a 0-d array of ``dtype``."""
    if text is None:
        return None
    if dtype.kind == "S":  # the fill's text, NUL-padded to the string length
        raw = text.encode("utf-8")
        if len(raw) > dtype.itemsize:
            raise place.corrupt(f"fillValue {text!r} is longer than {dtype.itemsize} bytes")
        return np.asarray(raw, dtype=dtype)
    try:
        return np.asarray(parse_number(text, dtype), dtype=dtype)
    except ValueError as exc:
        raise place.corrupt(f"fillValue {text!r} is not a {dtype} ({exc})") from None
