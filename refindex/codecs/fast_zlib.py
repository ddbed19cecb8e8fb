"""Codec ``refindex.zlib``: numcodecs' ``zlib`` with a faster inflate, for reading.

gzip (HDF5's deflate filter, numcodecs' ``zlib``) is the most common compression of the files
refindex reads, and inflating is most of the CPU a full read costs. zlib-ng inflates the same
streams to the same bytes (DEFLATE decoding is fully specified) some 25-40% faster; on the
1 GiB benchmark volume a local full read takes 4.1-5.2 s of CPU instead of 6.2-7.5 s.

Sidecars keep saying ``zlib``, so every reader can use them; the store serves ``refindex.zlib``
in the metadata it hands zarr (see ``fast_codecs``). Encoding is plain zlib, as numcodecs does.
Without zlib-ng installed the codec is numcodecs' zlib.

``inflate_into`` inflates a zlib stream into a buffer the caller owns: with imagecodecs
installed (the ``plugins`` and ``xarray`` extras) through libdeflate, which is about twice as
fast as zlib-ng on whole chunks and, writing into a reused buffer, allocates nothing (fresh
megabyte buffers per chunk cost page faults, a third of a parallel decode's time); else
through zlib-ng and a copy. The region reader decodes zlib + shuffle chunks this way.
"""

from __future__ import annotations

import zlib

import numpy as np
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy
from numcodecs.zlib import Zlib

from refindex.codecs import imagecodecs_import

try:
    from zlib_ng import zlib_ng as inflater
except ImportError:  # pragma: no cover - zlib-ng is a dependency; kept for odd platforms
    inflater = zlib
_inflater = inflater


def _libdeflate():
    if not imagecodecs_import.has("DEFLATE"):
        return None
    import imagecodecs

    return imagecodecs.deflate_decode, imagecodecs.DeflateError


_LIBDEFLATE = None  # (decode, error) once looked up; False when not there
LIBDEFLATE_MIN_BYTES = 64 * 1024


def inflates_in_place(nbytes: int) -> bool:
    """Whether ``inflate_into`` a buffer of ``nbytes`` writes it directly (libdeflate), not a
    copy of zlib-ng's output. Small chunks: libdeflate's per-call setup costs more than it
    saves (4 KB: 13.6 us against zlib-ng's 11.4), and small buffers come from the heap
    without page faults."""
    global _LIBDEFLATE
    if _LIBDEFLATE is None:
        _LIBDEFLATE = _libdeflate() or False
    return bool(_LIBDEFLATE) and nbytes >= LIBDEFLATE_MIN_BYTES


def inflate_into(data, out: np.ndarray) -> np.ndarray:
    """The zlib stream ``data`` inflated into the uint8 buffer ``out``: the view of ``out`` it
    filled. ``zlib.error`` when the stream is corrupt, its checksum fails or it ends early;
    ``ValueError`` when it inflates to more than ``out`` holds (nothing beyond is written)."""
    if inflates_in_place(out.nbytes):
        decode, error = _LIBDEFLATE
        try:
            return decode(data, out=out)
        except error as exc:
            if "INSUFFICIENT_SPACE" in str(exc):
                raise ValueError(f"it inflates to more than {out.nbytes} bytes") from None
            raise zlib.error(f"invalid zlib stream ({exc})") from None
    inflated = bounded_inflate(data, out.nbytes)
    filled = out[:len(inflated)]
    filled[:] = np.frombuffer(inflated, dtype=np.uint8)
    return filled


def bounded_inflate(data, limit: int, wbits: int = 15) -> bytes:
    """A zlib (``wbits`` 15) or gzip (31) stream inflated by zlib-ng to at most ``limit``
    bytes: ``ValueError`` beyond (a bomb stops at ``limit`` + 1), ``zlib.error`` when it is
    corrupt or ends early (numcodecs' type, as ``refindex.zlib`` reports it)."""
    stream = _inflater.decompressobj(wbits)
    try:
        inflated = stream.decompress(ensure_contiguous_ndarray(data), limit + 1)
    except _inflater.error as error:
        raise zlib.error(str(error)) from None
    if len(inflated) > limit:
        raise ValueError(f"it inflates to more than {limit} bytes")
    if not stream.eof:
        raise zlib.error("incomplete or truncated stream")
    return inflated


class FastZlib(Zlib):
    """numcodecs ``Zlib`` whose ``decode`` inflates with zlib-ng."""

    codec_id = "refindex.zlib"

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf)
        try:
            inflated = _inflater.decompress(data)
        except _inflater.error as error:  # the same message and type as numcodecs' zlib
            raise zlib.error(str(error)) from None
        return ndarray_copy(inflated, out) if out is not None else inflated


def fast_codecs(zarray: dict) -> dict:
    """``zarray`` with its ``zlib`` compressor and filters decoded by ``refindex.zlib``."""
    if _inflater is zlib:
        return zarray

    def swap(config):
        if isinstance(config, dict) and config.get("id") == "zlib":
            return {**config, "id": FastZlib.codec_id}
        return config

    filters = zarray.get("filters")
    return {**zarray, "compressor": swap(zarray.get("compressor")),
            "filters": [swap(f) for f in filters] if filters else filters}
