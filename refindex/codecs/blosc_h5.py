"""Codec ``refindex.blosc_h5``: HDF5 Blosc filter (32001) chunks numcodecs cannot decode.

The filter stores each chunk as one plain Blosc (1.x) chunk: a 16-byte header (version,
compressor and flags, type size, decoded size, block size, compressed size) and the
compressed blocks; its ``cd_values`` (filter version, blosc version, type size, chunk size,
level, shuffle, compressor) are not needed to decode. numcodecs' Blosc reads these exactly
and is used where it can; its c-blosc is built without Snappy, so chunks compressed with
Snappy (compressor 3) are decoded here by imagecodecs' c-blosc, built with it.
"""

from __future__ import annotations

import functools

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require
from refindex.errors import RefindexError


class BloscH5Codec(Codec):
    """Decode one Blosc 1.x chunk with imagecodecs' c-blosc (every compressor it has)."""

    codec_id = "refindex.blosc_h5"

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1)
        try:
            plain = _imagecodecs().blosc_decode(data)
        except RefindexError:
            raise
        except Exception as error:  # imagecodecs raises its own BloscError
            raise RefindexError(f"Blosc chunk could not be decoded: {error}") from error
        chunk = np.frombuffer(plain, dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        raise RefindexError(f"{self.codec_id}: encoding is not implemented (decode only)")

    def __repr__(self) -> str:
        return "BloscH5Codec()"


@functools.lru_cache(maxsize=8)
def available(cname: str) -> bool:
    """Whether imagecodecs' c-blosc here has the compressor ``cname`` (e.g. ``"snappy"``)."""
    if not has("BLOSC"):
        return False
    imagecodecs = _imagecodecs()
    try:
        imagecodecs.blosc_encode(b"\0" * 64, compressor=cname)
    except Exception:  # noqa: BLE001 (an unknown compressor is a BloscError or ValueError)
        return False
    return True


def _imagecodecs():
    return require("these HDF5 Blosc chunks")
