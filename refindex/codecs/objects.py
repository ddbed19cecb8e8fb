"""Codec ``refindex.objects``: NumPy arrays holding variable-length values, without pickle.

HDF5 nests variable-length data in ways no numcodecs object codec carries: records with a
variable-length string or sequence field, sequences of records, of strings or of sequences.
h5py reads them as NumPy arrays whose object elements are ``bytes``, ``str`` or arrays (of
any dtype, objects again included). This codec writes such an array as a self-describing
byte string, so decoding needs no configuration and never runs code from the data:

``array := u32 header length, header JSON {"dtype": Zarr v2 dtype, "shape": [...]}, body``

* a dtype without objects: the C-order bytes;
* an object dtype: per element a tag and its payload — ``N`` (None), ``B`` + u64 length +
  bytes, ``U`` + u64 length + UTF-8, ``A`` + u64 length + an *array*;
* a record dtype with object fields: per field, in order, u64 length + the field as an
  *array* (its subarray axes become trailing axes, as NumPy gives ``values[name]``).

Integers are little-endian. The encoded bytes of an array are the same on every platform.
"""

from __future__ import annotations

import json
import struct

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_bytes

from refindex.dtype_json import dtype_from_v2_json, dtype_to_v2_json, packed
from refindex.errors import RefindexError

_LENGTH = struct.Struct("<Q")
_HEADER = struct.Struct("<I")


class ObjectsCodec(Codec):
    """Encode and decode an array with variable-length elements (see the module)."""

    codec_id = "refindex.objects"

    def encode(self, buf):
        parts: list[bytes] = []
        _encode_array(np.asarray(buf), parts)
        return b"".join(parts)

    def decode(self, buf, out=None):
        data = memoryview(ensure_bytes(buf))
        try:
            array, end = _decode_array(data, 0)
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
            raise RefindexError(f"refindex.objects: damaged data ({e})") from None
        if end != len(data):
            raise RefindexError(f"refindex.objects: {len(data) - end} bytes after the array")
        if out is not None:
            out[...] = array.reshape(out.shape)
            return out
        return array


def _encode_array(array: np.ndarray, parts: list[bytes]) -> None:
    # Record padding carries no value (and Zarr v2 dtypes cannot say where fields start).
    array = array.astype(packed(array.dtype), copy=False)
    header = json.dumps({"dtype": dtype_to_v2_json(array.dtype),
                         "shape": list(array.shape)}).encode()
    parts += [_HEADER.pack(len(header)), header]
    if not array.dtype.hasobject:
        parts.append(np.ascontiguousarray(array).tobytes())
    elif array.dtype.fields is None:
        for item in array.reshape(-1):
            _encode_item(item, parts)
    else:
        for name in array.dtype.names:
            field: list[bytes] = []
            _encode_array(array[name], field)
            parts += [_LENGTH.pack(sum(map(len, field))), *field]


def _encode_item(item: object, parts: list[bytes]) -> None:
    if item is None:
        parts.append(b"N")
    elif isinstance(item, bytes | np.bytes_):
        parts += [b"B", _LENGTH.pack(len(item)), bytes(item)]
    elif isinstance(item, str):
        encoded = item.encode("utf-8")
        parts += [b"U", _LENGTH.pack(len(encoded)), encoded]
    elif isinstance(item, np.ndarray):
        inner: list[bytes] = []
        _encode_array(item, inner)
        parts += [b"A", _LENGTH.pack(sum(map(len, inner))), *inner]
    else:
        raise TypeError(f"refindex.objects cannot encode a {type(item).__name__}")


def _decode_array(data: memoryview, at: int) -> tuple[np.ndarray, int]:
    (size,) = _HEADER.unpack_from(data, at)
    at += _HEADER.size
    try:
        header = json.loads(bytes(data[at:at + size]))
        dtype, shape = dtype_from_v2_json(header["dtype"]), tuple(header["shape"])
    except (ValueError, TypeError, KeyError) as e:
        raise RefindexError(f"refindex.objects: bad array header ({e})") from None
    at += size
    if not dtype.hasobject:
        count = int(np.prod(shape)) * dtype.itemsize
        values = np.frombuffer(data[at:at + count], dtype=dtype).reshape(shape).copy()
        return values, at + count
    out = np.empty(shape, dtype=dtype)
    if dtype.fields is None:
        flat = out.reshape(-1)
        for i in range(flat.size):
            flat[i], at = _decode_item(data, at)
        return out, at
    for name in dtype.names:
        at += _LENGTH.size
        out[name], at = _decode_array(data, at)
    return out, at


def _decode_item(data: memoryview, at: int) -> tuple[object, int]:
    tag = bytes(data[at:at + 1])
    at += 1
    if tag == b"N":
        return None, at
    (size,) = _LENGTH.unpack_from(data, at)
    at += _LENGTH.size
    if tag == b"B":
        return bytes(data[at:at + size]), at + size
    if tag == b"U":
        return bytes(data[at:at + size]).decode("utf-8"), at + size
    if tag == b"A":
        array, end = _decode_array(data, at)
        if end != at + size:
            raise RefindexError("refindex.objects: a nested array's length is wrong")
        return array, end
    raise RefindexError(f"refindex.objects: unknown element tag {tag!r}")
