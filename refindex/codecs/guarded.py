"""Codec ``refindex.guarded``: one step of an array's codecs, as the store serves it to zarr,
that turns bad chunk bytes into a ``ChunkDecodeError`` and bounds what they may decode to.

A chunk's bytes come from wherever a sidecar says, and a sidecar (or the file it points into)
may be corrupt or hostile: a checksum that fails, a stream that is not zlib, or a small chunk
that inflates to gigabytes. numcodecs would raise whatever its codec raises (``RuntimeError``,
``zlib.error``, ``ValueError`` from a reshape in zarr) or allocate what a header declares. The
guard decodes with the wrapped codec (``codec``; none for an array stored raw), refuses output
larger than ``max_size`` bytes before allocating it where the format declares its size (zlib
streams are inflated to at most that, zstd, blosc and lz4 declare it in a header), and, when
``size`` is given (the step zarr decodes last, for fixed-size dtypes), refuses output of any
other length. Sidecars never hold this codec: it exists only in the metadata a store serves.
"""

from __future__ import annotations

import numcodecs
import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray

from refindex.codecs.fast_zlib import bounded_inflate, inflate_into, inflates_in_place
from refindex.errors import ChunkDecodeError, UnsupportedFeatureError

_INFLATE = {"zlib", "refindex.zlib", "gzip"}
_DECLARING = {"zstd", "blosc", "lz4"}
# Per-chunk headroom for filters that grow a chunk when encoding (fletcher32's checksum,
# HDF5 pipelines): what a stored chunk may decode to beyond the chunk's own bytes.
_SLACK = 1 << 20


class GuardedCodec(Codec):
    """``codec`` (a numcodecs config, or None) decoded within ``max_size`` bytes and, when
    ``size`` is set, to exactly ``size`` bytes; ``array`` names the array in errors."""

    codec_id = "refindex.guarded"

    def __init__(self, codec: dict | None = None, max_size: int | None = None,
                 size: int | None = None, array: str = "") -> None:
        self.codec, self.max_size, self.size, self.array = codec, max_size, size, array
        # What a zlib step most likely inflates to: the chunk's bytes (see guarded_codecs).
        self._expected = size or ((max_size - _SLACK) // 2 if max_size else None)
        try:
            self._inner = numcodecs.get_codec(dict(codec)) if codec is not None else None
        except (ValueError, TypeError, KeyError) as exc:  # UnknownCodecError is a ValueError
            raise UnsupportedFeatureError(
                "refindex store", array, f"codec {codec.get('id')!r} cannot be made ({exc})",
                "install the package that provides it (hdf5plugin, imagecodecs, ...)") from None

    def get_config(self) -> dict:
        return {"id": self.codec_id, "codec": self.codec, "max_size": self.max_size,
                "size": self.size, "array": self.array}

    def encode(self, buf):
        return self._inner.encode(buf) if self._inner is not None else buf

    def decode(self, buf, out=None):
        name = self.codec["id"] if self.codec else "raw"
        try:
            declared = _declared_size(name, buf)
            if declared is not None and self.max_size is not None and declared > self.max_size:
                raise ChunkDecodeError(self._problem(
                    name, f"its header declares {declared} decoded bytes, more than the "
                          f"{self.max_size} a chunk of this array can hold"))
            if self._inner is None:
                decoded = buf
            elif name in _INFLATE and self.max_size is not None:
                decoded = _inflate(buf, name, self.max_size, self._expected)
            else:
                decoded = self._inner.decode(buf)
        except ChunkDecodeError:
            raise
        except MemoryError:
            raise ChunkDecodeError(self._problem(name, "it decodes to more memory than there "
                                                       "is")) from None
        except Exception as exc:  # noqa: BLE001 - numcodecs codecs raise anything
            raise ChunkDecodeError(self._problem(name, f"{_type_name(exc)}: {exc}")) from None
        nbytes = _nbytes(decoded)
        if nbytes is not None and self.max_size is not None and nbytes > self.max_size:
            raise ChunkDecodeError(self._problem(name, f"it decodes to {nbytes} bytes, more "
                                                       f"than the {self.max_size} allowed"))
        if self.size is not None and nbytes is not None and nbytes != self.size:
            raise ChunkDecodeError(self._problem(
                name, f"it decodes to {nbytes} bytes, a chunk of this array has {self.size}"))
        if out is not None:
            out[...] = np.frombuffer(decoded, dtype=np.uint8).view(out.dtype).reshape(out.shape)
            return out
        return decoded

    def _problem(self, name: str, why: str) -> str:
        return decode_problem(self.array, name, why)


def decode_problem(array: str, name: str, why: str) -> str:
    """The message of a ``ChunkDecodeError``: ``array``'s chunk did not decode with codec
    ``name`` because ``why``."""
    return (f"array {array!r}: a chunk cannot be decoded with {name!r}: {why}; the source's "
            "bytes are not what the sidecar describes (a corrupt file, or wrong offsets or "
            "lengths in the sidecar)")


def _type_name(exc: Exception) -> str:
    kind = type(exc)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _nbytes(decoded) -> int | None:
    if isinstance(decoded, np.ndarray):
        return None if decoded.dtype == object else decoded.nbytes
    if isinstance(decoded, bytes | bytearray | memoryview):
        return memoryview(decoded).nbytes
    return None


def _inflate(buf, name: str, limit: int, expected: int | None = None):
    """A zlib (or gzip) stream inflated to at most ``limit`` bytes: a bomb stops there. A zlib
    stream of the ``expected`` size inflates straight into a buffer of that size when
    libdeflate can (imagecodecs installed, a large chunk: about twice as fast); otherwise,
    and for gzip, zlib-ng inflates to at most ``limit`` + 1 bytes, as ``refindex.zlib``
    does."""
    data = ensure_contiguous_ndarray(buf)
    if name != "gzip" and expected and expected <= limit and inflates_in_place(expected):
        try:
            return inflate_into(data, np.empty(expected, dtype=np.uint8))
        except ValueError:
            pass  # larger than expected: zlib-ng tells how much larger, within the limit
    return bounded_inflate(data, limit, 31 if name == "gzip" else 15)


def _declared_size(name: str, buf) -> int | None:
    """The decoded size the header of a ``name`` frame declares, when the format has one."""
    if name not in _DECLARING:  # read per chunk: skip the header copy for the others
        return None
    head = bytes(memoryview(ensure_contiguous_ndarray(buf)).cast("B")[:18])
    if name == "zstd" and head[:4] == b"\x28\xb5\x2f\xfd" and len(head) >= 6:
        descriptor = head[4]
        single = descriptor >> 5 & 1
        start = 5 + (not single) + (0, 1, 2, 4)[descriptor & 3]
        width = (single, 2, 4, 8)[descriptor >> 6]
        if width and len(head) >= start + width:
            size = int.from_bytes(head[start:start + width], "little")
            return size + 256 if width == 2 else size
    if name == "blosc" and len(head) >= 8:
        return int.from_bytes(head[4:8], "little")
    if name == "lz4" and len(head) >= 4:
        return int.from_bytes(head[:4], "little")
    return None


def guarded_codecs(zarray: dict, array: str = "", sized: bool = True) -> dict:
    """``zarray`` with every codec step guarded. When ``sized`` (chunks are stored in the
    shape ``chunks`` says, as zarr reads them), the step zarr decodes last must give exactly
    the chunk's bytes (for dtypes of a fixed size) and every step at most about twice that."""
    dtype = _fixed_dtype(zarray.get("dtype")) if sized else None
    chunks = zarray.get("chunks") or ()
    chunk_bytes = int(np.prod(chunks, dtype=np.int64)) * dtype.itemsize if dtype else None
    limit = 2 * chunk_bytes + _SLACK if chunk_bytes is not None else None
    compressor, filters = zarray.get("compressor"), list(zarray.get("filters") or ())
    if _is_object(zarray.get("dtype")):
        # zarr finds an object array's codec (vlen-utf8, ...) as the first filter: keep them.
        if compressor is None:
            return zarray
        return {**zarray, "compressor": GuardedCodec(compressor, None, None, array).get_config()}
    steps = [*filters, compressor] if compressor is not None else filters
    if not steps:  # stored raw: guard the length only
        return {**zarray, "compressor": GuardedCodec(None, limit, chunk_bytes,
                                                     array).get_config()}
    guarded = [GuardedCodec(step, limit, chunk_bytes if i == 0 else None, array).get_config()
               for i, step in enumerate(steps)]
    if compressor is None:
        return {**zarray, "filters": guarded}
    return {**zarray, "compressor": guarded[-1], "filters": guarded[:-1] or None}


def _is_object(dtype: object) -> bool:
    return isinstance(dtype, str) and dtype.endswith("O")


def _fixed_dtype(dtype: object) -> np.dtype | None:
    try:
        found = np.dtype(dtype if isinstance(dtype, str) else [tuple(f) for f in dtype])
    except (TypeError, ValueError):
        return None
    return None if found.hasobject or found.itemsize == 0 else found


def unguarded_codecs(zarray: dict) -> dict:
    """``zarray`` as served by a store, with the guards taken off again: the codecs the
    sidecar names (as ``refindex.zlib`` for ``zlib``)."""
    def inner(config):
        if isinstance(config, dict) and config.get("id") == GuardedCodec.codec_id:
            return config.get("codec")
        return config

    filters = zarray.get("filters")
    return {**zarray, "compressor": inner(zarray.get("compressor")),
            "filters": [inner(f) for f in filters] if filters else filters}
