"""A seeded mutator of containers and sidecars: the same (kind, case number) always gives the
same mutant, so any case the fuzzer reports can be run again alone.

Byte mutations (bit flips, overwrites with values that matter in offset and length fields,
truncations, duplicated and removed spans) are aimed mostly at each kind's metadata — the
first KB of HDF5 (superblock, root group, object headers), the NetCDF3 header, tar headers,
zip local headers and central directory — so that most mutants parse part of the way. JSON
sidecars are also mutated as documents: a value anywhere replaced by one a careless or hostile
writer could put there (huge shapes, negative offsets, lengths past the object, wrong types),
and native chunk-table columns re-encoded with such values so that they pass the zstd checks.
"""

from __future__ import annotations

import base64
import copy
import random
import struct
import tarfile
import zipfile
import zlib
from io import BytesIO

import numpy as np
import ujson

from refindex.sidecar.chunk_parts import decode_column, encode_column

INTERESTING_INTS = (0, 1, -1, 2, 7, 255, 256, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31,
                    2**32 - 1, 2**32, 2**48, 2**62, 2**63 - 1, -(2**31), -(2**63), 10**12)
_JSON_VALUES = (None, True, False, "", "x", [], {}, 0, -1, 1.5, float("nan"), 2**63 - 1,
                2**64, -(2**63), 10**30, [2**40], [-1], [0], [2**31, 2**31], "NaN", "<f8",
                "|O", "base64:!!", [1, 2, 3], {"id": "zlib", "level": 99},
                {"id": "no-such-codec"}, "{{u0}}", ["{{nope}}", 0, 10], ["x", -5, 10],
                ["x", 0, 2**62], "s3://", "http://169.254.169.254/latest",
                "file:///etc/passwd")


def metadata_regions(kind: str, data: bytes) -> list[tuple[int, int]]:
    """The ``[start, stop)`` byte ranges of a seed that hold its metadata."""
    size = len(data)
    if kind.startswith("hdf5"):
        return [(0, min(size, 4096))]
    if kind.startswith("netcdf3"):
        return [(0, min(size, _netcdf3_header_end(data)))]
    if kind == "mrc":  # the header's fields (labels and the extended header are not parsed)
        return [(0, min(size, 224))]
    if kind == "tiff":
        return _tiff_regions(data)
    if kind == "tar":
        with tarfile.open(fileobj=BytesIO(data)) as archive:
            return [(m.offset, m.offset_data) for m in archive.getmembers()]
    if kind.startswith("zip"):
        with zipfile.ZipFile(BytesIO(data)) as archive:
            infos = archive.infolist()
            locals_ = [(i.header_offset, i.header_offset + 30 + len(i.filename)) for i in infos]
            start_dir = size - 22 - sum(46 + len(i.filename) for i in infos)
            return [*locals_, (max(0, start_dir), size)]
    return [(0, size)]


def _tiff_regions(data: bytes) -> list[tuple[int, int]]:
    """The header, every IFD (SubIFDs too) and the tag values stored outside them."""
    import tifffile

    regions = [(0, 16)]
    with tifffile.TiffFile(BytesIO(data)) as tif:
        pages = [*tif.pages]
        pages += [level.keyframe for series in tif.series for level in series.levels]
        entry = 20 if tif.is_bigtiff else 12
        for page in pages:
            regions.append((page.offset, page.offset + 16 + entry * len(page.tags)))
            for tag in page.tags:
                if tag.valuebytecount > (8 if tif.is_bigtiff else 4):
                    regions.append((tag.valueoffset, tag.valueoffset + tag.valuebytecount))
    return regions


def _netcdf3_header_end(data: bytes) -> int:
    """Where the header of the NetCDF3 seeds ends, near enough: their dimensions, attributes
    and variable list take the first few hundred bytes; 1 KB covers them."""
    return min(len(data), 1024)


def mutate(kind: str, seed: bytes, case: int) -> bytes:
    """The mutant number ``case`` of ``seed`` (a seed of ``kind``)."""
    rng = random.Random(f"{kind}:{case}")
    if kind in ("native", "native_part", "kerchunk") and rng.random() < 0.6:
        try:
            return mutate_document(kind, seed, rng)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            pass  # the mutator tripped over its own earlier mutation: mutate bytes instead
    regions = metadata_regions(kind, seed)
    data = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        data = _mutate_bytes(data, regions, rng)
    return bytes(data)


def mutate_tree(kind: str, files: dict[str, bytes], case: int) -> dict[str, bytes]:
    """The mutant number ``case`` of a directory seed (``{relative path: bytes}``): one of its
    files (``index.json`` or a part file) mutated, or removed."""
    rng = random.Random(f"{kind}:{case}:file")
    name = rng.choice(sorted(files))
    if rng.random() < 0.05:
        return {k: v for k, v in files.items() if k != name}
    inner = "native" if name.endswith("index.json") else "native_part"
    return {**files, name: mutate(inner, files[name], case)}


def _position(data: bytearray, regions: list[tuple[int, int]], rng: random.Random) -> int:
    if not data:
        return 0
    if regions and rng.random() < 0.85:
        start, stop = rng.choice(regions)
        stop = min(stop, len(data))
        if start < stop:
            return rng.randrange(start, stop)
    return rng.randrange(len(data))


def _mutate_bytes(data: bytearray, regions: list[tuple[int, int]],
                  rng: random.Random) -> bytearray:
    if not data:
        return data
    at = _position(data, regions, rng)
    choice = rng.random()
    if choice < 0.3:  # a bit flip
        data[at] ^= 1 << rng.randrange(8)
    elif choice < 0.45:  # a byte overwritten with 0 or 0xff or a neighbour
        data[at] = rng.choice((0, 0xFF, 0x7F, 0x80, 1, data[at] + 1 & 0xFF))
    elif choice < 0.7:  # an offset- or length-sized field overwritten
        width = rng.choice((2, 4, 8))
        value = rng.choice(INTERESTING_INTS) % (1 << 8 * width)
        endian = rng.choice("<>")
        field = struct.pack(f"{endian}{'HIQ'[(2, 4, 8).index(width)]}", value)
        data[at:at + width] = field[:max(0, len(data) - at)]
    elif choice < 0.8:  # truncated
        keep = rng.choice((at, len(data) - rng.randrange(1, 64), rng.randrange(len(data))))
        del data[max(0, keep):]
    elif choice < 0.9:  # a span removed
        del data[at:at + rng.randrange(1, 64)]
    else:  # a span duplicated in place
        span = bytes(data[at:at + rng.randrange(1, 64)])
        data[at:at] = span
    return data


def mutate_document(kind: str, seed: bytes, rng: random.Random) -> bytes:
    """``seed`` parsed, changed as a document, and written again."""
    doc = ujson.loads(seed)
    for _ in range(rng.choice((1, 1, 2, 3))):
        doc = copy.deepcopy(doc)
        action = rng.random()
        if kind.startswith("native") and action < 0.35:
            _mutate_column(doc, rng)
        elif action < 0.5:
            _bomb(kind, doc, rng)
        else:
            _replace_somewhere(doc, rng)
    return ujson.dumps(doc, escape_forward_slashes=False).encode()


def _paths(value, prefix=()) -> list[tuple]:
    """Every path (tuple of keys and indexes) into a JSON value, JSON-in-strings included as
    plain strings."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _get(doc, path: tuple):
    for step in path:
        doc = doc[step]
    return doc


def _set(doc, path: tuple, value) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _replace_somewhere(doc: dict, rng: random.Random) -> None:
    paths = [p for p in _paths(doc) if p]
    path = rng.choice(paths)
    old = _get(doc, path)
    if isinstance(old, str) and old.startswith("{") and rng.random() < 0.7:
        # A metadata document inside kerchunk's refs: mutate it as JSON too.
        try:
            inner = ujson.loads(old)
        except ValueError:
            inner = None
        if isinstance(inner, dict) and inner:
            _replace_somewhere(inner, rng)
            _set(doc, path, ujson.dumps(inner))
            return
    if rng.random() < 0.1 and isinstance(_get(doc, path[:-1]), dict):
        del _get(doc, path[:-1])[path[-1]]
        return
    if isinstance(old, int) and not isinstance(old, bool) and rng.random() < 0.6:
        _set(doc, path, rng.choice(INTERESTING_INTS) * rng.choice((1, 1, -1)))
        return
    _set(doc, path, rng.choice(_JSON_VALUES))


def _mutate_column(doc: dict, rng: random.Random) -> None:
    """A chunk-table column decoded, given values that matter, and encoded again."""
    parts = [(path, part) for path, entry in doc.get("arrays", {}).items()
             for part in entry.get("chunks", {}).get("parts", []) if isinstance(part, dict)]
    if "refindex_part" in doc:  # a part file of a directory sidecar
        parts = [(doc.get("array"), doc)]
    if not parts:
        return
    _, part = rng.choice(parts)
    name = rng.choice(("source", "gap", "length"))
    column = part.get(name)
    if not isinstance(column, dict):
        return
    try:
        values = decode_column(part, name, _column_count(part, name), "fuzz").astype(np.int64)
    except Exception:
        return
    if values.size:
        value = rng.choice(INTERESTING_INTS) * rng.choice((1, -1))
        values[rng.randrange(values.size)] = max(-(2**63), min(2**63 - 1, value))
        if rng.random() < 0.3:
            values[:] = min(2**63 - 1, rng.choice(INTERESTING_INTS))
    part[name] = encode_column(values)


def _column_count(part: dict, name: str) -> int:
    if name == "source":
        return part["count"]
    sources = decode_column(part, "source", part["count"], "fuzz")
    return int(np.count_nonzero(sources >= 0))


def _bomb(kind: str, doc: dict, rng: random.Random) -> None:
    """A decompression bomb where a sidecar holds compressed bytes: an inline chunk (kerchunk)
    or a chunk-table column (native) that inflates to far more than it should."""
    bomb = zlib.compress(bytes(rng.choice((2**20, 2**26, 2**28))), 9)
    if kind == "kerchunk":
        refs = doc.get("refs", {})
        keys = [k for k in refs if not k.rsplit("/", 1)[-1].startswith(".")]
        if keys:
            refs[rng.choice(keys)] = "base64:" + base64.b64encode(bomb).decode()
        return
    parts = [part for entry in doc.get("arrays", {}).values()
             for part in entry.get("chunks", {}).get("parts", []) if isinstance(part, dict)]
    if parts:
        part = rng.choice(parts)
        frame = _zstd_frame_declaring(rng.choice((2**31, 2**40, 2**62)))
        part[rng.choice(("source", "gap", "length"))] = {
            "dtype": "<i8", "data": base64.b64encode(frame).decode()}


def _zstd_frame_declaring(size: int) -> bytes:
    """A zstd frame header that declares ``size`` bytes of content (and holds none)."""
    return b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + size.to_bytes(8, "little") + b"\x01\x00\x00"
