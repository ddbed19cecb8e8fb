"""Codec ``refindex.lz4h5``: the HDF5 LZ4 filter (32004) and its own block framing.

The filter does not store a plain LZ4 frame: an 8-byte big-endian decoded size and a 4-byte
block size come first, then each block as a 4-byte big-endian length and an LZ4 block
(stored raw when LZ4 would not shrink it). imagecodecs implements exactly this framing
(``lz4h5``) but its numcodecs codec is only registered on request, so we register our own
id for it.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require


class Lz4H5Codec(Codec):
    """Decode (and encode) one chunk in the HDF5 LZ4 filter's format.

    Parameters
    ----------
    blocksize
        LZ4 block size in bytes used when encoding (the filter's ``cd_values[0]``); ``None``
        or 0 takes the filter's default. Decoding reads the block size from the chunk.
    """

    codec_id = "refindex.lz4h5"

    def __init__(self, blocksize: int | None = None) -> None:
        self.blocksize = int(blocksize) if blocksize else None

    def decode(self, buf, out=None):
        data = _imagecodecs().lz4h5_decode(ensure_contiguous_ndarray(buf))
        chunk = np.frombuffer(data, dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        return _imagecodecs().lz4h5_encode(ensure_contiguous_ndarray(buf), blocksize=self.blocksize)

    def __repr__(self) -> str:
        return f"Lz4H5Codec(blocksize={self.blocksize})"


def available() -> bool:
    """Whether imagecodecs with the HDF5 LZ4 framing is installed here."""
    return has("LZ4H5")


def _imagecodecs():
    return require("HDF5 LZ4 chunks")
