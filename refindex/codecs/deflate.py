"""Codec ``refindex.deflate``: a raw DEFLATE stream (RFC 1951), as zip archives store members.

numcodecs' ``zlib`` and ``gzip`` codecs want a zlib or gzip wrapper around the stream; a zip
member compressed with method 8 has neither. With this codec a deflated zip member can be
referenced where it lies: the member's bytes decode to exactly the file that was zipped.
"""

from __future__ import annotations

import zlib

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.errors import RefindexError

_RAW = -zlib.MAX_WBITS  # negative window bits: no zlib header or trailer


class RawDeflateCodec(Codec):
    """Inflate (and deflate) a bare DEFLATE stream.

    Parameters
    ----------
    level
        Compression level used when encoding (0-9, -1 for zlib's default); decoding does
        not need it.
    """

    codec_id = "refindex.deflate"

    def __init__(self, level: int = -1) -> None:
        self.level = int(level)

    def decode(self, buf, out=None):
        inflater = zlib.decompressobj(_RAW)
        try:
            data = inflater.decompress(ensure_contiguous_ndarray(buf)) + inflater.flush()
        except zlib.error as error:
            raise RefindexError(f"corrupt DEFLATE stream: {error}") from None
        if not inflater.eof:
            raise RefindexError("DEFLATE stream ends early: the chunk is truncated")
        chunk = np.frombuffer(data, dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        deflater = zlib.compressobj(self.level, zlib.DEFLATED, _RAW)
        return deflater.compress(ensure_contiguous_ndarray(buf)) + deflater.flush()

    def __repr__(self) -> str:
        return f"RawDeflateCodec(level={self.level})"
