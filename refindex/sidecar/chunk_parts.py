"""The compact columns of native sidecars: one part of a chunk table to a JSON-ready map and
back (specified in docs/format.md, "Native format, versions 1 and 2").

A part stores three integer columns: the source id of every chunk, and for the chunks that
reference a source, their length and the *gap* before them — the offset minus the end of the
previous chunk of the same source in the part. Chunks written back to back have gap 0, so
the offsets cost almost nothing; lengths cost what their entropy costs. Each column is
little-endian integers of the narrowest width that holds it, split into byte planes (all the
lowest bytes, then all the next ones, ...: high bytes that are all zero compress away), then
zstd-compressed and base64-encoded.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
from numcodecs import Zstd

from refindex.errors import SidecarError
from refindex.index import INLINE, WHOLE, TablePart

PART_SIZE = 2**20  # chunks per part that writers use unless told otherwise
COMPRESSION = "zstd"
# Measured on a million random 1-100 KB lengths: level 3 stores 2.19 bytes each in 4.5 ms;
# level 19 2.13 in 1 s; zlib level 6 2.16 in 150 ms. Byte planes save 0.5 bytes at any level.
_ZSTD = Zstd(level=3)
_DTYPES = {f"<i{width}": np.dtype(f"<i{width}") for width in (1, 2, 4, 8)}


def encode_part(source: np.ndarray, offset: np.ndarray, length: np.ndarray,
                inline: dict[int, bytes]) -> dict:
    """The JSON map of one part: ``source``, ``offset`` and ``length`` of its chunks, and the
    inline bytes of its inline chunks by flat position in the whole table."""
    referenced = source >= 0
    ids, offsets, lengths = source[referenced], offset[referenced], length[referenced]
    part = {
        "count": len(source),
        "source": encode_column(source),
        "gap": encode_column(gaps(ids, offsets, lengths)),
        "length": encode_column(lengths),
    }
    if inline:
        part["inline"] = {str(flat): base64.b64encode(data).decode()
                          for flat, data in sorted(inline.items())}
    return part


def decode_part(part: object, start: int, count: int, sources: int, where: str) -> TablePart:
    """The columns of a part of ``count`` chunks whose first chunk is at flat position
    ``start``; ``sources`` is the number of sources, ``where`` names the part in errors."""
    if not isinstance(part, dict) or part.get("count") != count:
        found = part.get("count") if isinstance(part, dict) else type(part).__name__
        raise SidecarError(f"{where}: expected a part of {count} chunks, found {found!r}")
    source = decode_column(part, "source", count, where)
    if source.size and (source.min() < INLINE or source.max() >= sources):
        raise SidecarError(f"{where}: source ids must lie in -2..{sources - 1} (there are "
                           f"{sources} sources), found {source.min()}..{source.max()}")
    referenced = source >= 0
    n = int(np.count_nonzero(referenced))
    lengths = decode_column(part, "length", n, where).astype(np.int64)
    offsets = offsets_from_gaps(source[referenced], decode_column(part, "gap", n, where),
                                lengths)
    if n and (offsets.min() < 0 or lengths.min() < WHOLE):
        raise SidecarError(f"{where}: negative offsets or lengths (corrupted gap or length "
                           "column)")
    if n and bool((offsets[lengths == WHOLE] != 0).any()):
        raise SidecarError(f"{where}: a whole-object reference (length -1) at an offset other "
                           "than 0 (corrupted gap or length column)")
    offset = np.zeros(count, dtype=np.int64)
    length = np.zeros(count, dtype=np.int64)
    offset[referenced], length[referenced] = offsets, lengths
    inline = decode_inline(part.get("inline", {}), source, start, where)
    return TablePart(source.astype(np.int32), offset, length, inline)


def gaps(source: np.ndarray, offset: np.ndarray, length: np.ndarray) -> np.ndarray:
    """For each chunk, its offset minus the end of the previous chunk of the same source
    (0 for the first chunk of each source); whole-object references end at their offset."""
    order = _by_source(source)
    ends = offset[order] + np.maximum(length[order], 0)
    previous_end = np.zeros_like(ends)
    previous_end[1:] = ends[:-1]
    previous_end[_group_starts(source[order])] = 0
    result = np.empty_like(offset)
    result[order] = offset[order] - previous_end
    return result


def offsets_from_gaps(source: np.ndarray, gap: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The offsets that ``gaps`` turned into ``gap`` (a cumulative sum per source)."""
    order = _by_source(source)
    steps = gap[order].astype(np.int64)
    steps[1:] += np.maximum(length[order][:-1], 0)
    starts = _group_starts(source[order])
    steps[starts] = gap[order][starts]
    totals = np.cumsum(steps)
    # Each source's sum restarts at its first chunk: subtract what came before that chunk.
    first = np.maximum.accumulate(np.where(starts, np.arange(steps.size), 0))
    offsets = np.empty_like(totals)
    offsets[order] = totals - (totals - steps)[first]
    return offsets


def _by_source(source: np.ndarray) -> np.ndarray | slice:
    """The order that groups chunks by source, keeping each source's chunks in table order
    (no sorting when they already are grouped, the common case of one source per block)."""
    if source.size < 2 or bool((source[1:] >= source[:-1]).all()):
        return slice(None)
    return np.argsort(source, kind="stable")


def _group_starts(grouped: np.ndarray) -> np.ndarray:
    starts = np.ones(grouped.size, dtype=bool)
    starts[1:] = grouped[1:] != grouped[:-1]
    return starts


def encode_column(values: np.ndarray) -> dict:
    """``{"dtype": "<iN", "data": base64(zstd(byte planes))}`` of integer ``values``."""
    name, dtype = _narrowest(values)
    planes = values.astype(dtype).view(np.uint8).reshape(-1, dtype.itemsize).T.tobytes()
    return {"dtype": name, "data": base64.b64encode(_ZSTD.encode(planes)).decode()}


def decode_column(part: dict, name: str, count: int, where: str) -> np.ndarray:
    """The ``count`` integers of column ``name`` of ``part``."""
    column = part.get(name)
    if (not isinstance(column, dict) or not isinstance(column.get("dtype"), str)
            or column["dtype"] not in _DTYPES
            or not isinstance(column.get("data"), str)):
        raise SidecarError(f"{where}: column {name!r} must be {{'dtype': '<i1'|'<i2'|'<i4'|"
                           f"'<i8', 'data': base64}}, got {str(column)[:80]!r}")
    dtype = _DTYPES[column["dtype"]]
    try:
        compressed = base64.b64decode(column["data"], validate=True)
    except (binascii.Error, ValueError):
        raise SidecarError(f"{where}: column {name!r}: invalid base64") from None
    expected = count * dtype.itemsize
    declared = _zstd_content_size(compressed)
    if declared is None:
        raise SidecarError(f"{where}: column {name!r}: not a zstd frame with a content size")
    if declared != expected:
        raise SidecarError(f"{where}: column {name!r} holds {declared // dtype.itemsize} "
                           f"values, expected {count}")
    if not expected:
        return np.zeros(0, dtype=dtype)
    try:
        # Into a buffer of the declared size: a corrupt frame cannot make us allocate more.
        planes = _ZSTD.decode(compressed, out=np.empty(expected, dtype=np.uint8))
    except Exception as exc:  # numcodecs reports corrupt frames as RuntimeError or ValueError
        raise SidecarError(f"{where}: column {name!r}: invalid zstd data ({exc})") from None
    grid = np.frombuffer(planes, dtype=np.uint8).reshape(dtype.itemsize, count)
    return np.ascontiguousarray(grid.T).view(dtype).reshape(count)


def decode_inline(entries: object, source: np.ndarray, start: int,
                  where: str) -> dict[int, bytes]:
    """Inline chunk bytes by flat position; every INLINE chunk of the part must have them."""
    if not isinstance(entries, dict):
        raise SidecarError(f"{where}: 'inline' must map flat positions to base64 bytes")
    inline = {}
    for key, text in entries.items():
        flat = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else -1
        if not start <= flat < start + source.size or source[flat - start] != INLINE:
            raise SidecarError(f"{where}: inline data for chunk {key!r}, which is not an "
                               "inline chunk of this part")
        try:
            inline[flat] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise SidecarError(f"{where}: inline chunk {key}: invalid base64") from None
    missing = np.flatnonzero(source == INLINE)
    if missing.size != len(inline):
        first = next(int(f) + start for f in missing if int(f) + start not in inline)
        raise SidecarError(f"{where}: inline chunk {first} has no 'inline' data")
    return inline


def _zstd_content_size(frame: bytes) -> int | None:
    """The decompressed size a zstd frame header declares (RFC 8878, 3.1.1.1), or None."""
    if len(frame) < 6 or frame[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = frame[4]
    single_segment = descriptor >> 5 & 1
    start = 5 + (not single_segment) + (0, 1, 2, 4)[descriptor & 3]
    width = (single_segment, 2, 4, 8)[descriptor >> 6]
    if not width or len(frame) < start + width:
        return None
    size = int.from_bytes(frame[start:start + width], "little")
    return size + 256 if width == 2 else size


def _narrowest(values: np.ndarray) -> tuple[str, np.dtype]:
    """The name and dtype of the narrowest little-endian integers that hold ``values``."""
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for name, dtype in _DTYPES.items():
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return name, dtype
    raise ValueError(f"integers {low}..{high} do not fit 64 bits")

