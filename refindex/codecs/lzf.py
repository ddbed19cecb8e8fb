"""Codec ``refindex.lzf``: h5py's LZF filter (HDF5 filter 32000), one chunk of known size.

The filter stores a bare LZF stream with no header, so the decoded size must come from the
chunk shape and dtype. It is an *optional* filter: when LZF would not shrink a chunk, HDF5
stores the chunk raw and sets the filter's bit in that chunk's filter mask. A raw chunk is
exactly as long as the decoded chunk, but so can an LZF stream be (the filter gives LZF an
output buffer of the input's size, and liblzf may fill it), so length alone cannot tell
them apart: masked chunks get no LZF codec at all (see ``codecs_for``), and this codec
always decodes.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require
from refindex.errors import RefindexError


class LzfCodec(Codec):
    """Decode an LZF stream of one chunk into ``size`` bytes (imagecodecs does the work).

    Parameters
    ----------
    size
        The decoded chunk size in bytes: dtype itemsize times the chunk's element count.
    """

    codec_id = "refindex.lzf"

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def decode(self, buf, out=None):
        imagecodecs = _imagecodecs()
        data = imagecodecs.lzf_decode(ensure_contiguous_ndarray(buf), header=False, out=self.size)
        if len(data) != self.size:
            raise RefindexError(
                f"LZF chunk decoded to {len(data)} bytes, expected {self.size}: corrupt chunk"
            )
        chunk = np.frombuffer(data, dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        # Unlike the HDF5 filter this never gives up on incompressible data: the output may be
        # a few bytes longer than the input, and still decodes.
        return _imagecodecs().lzf_encode(ensure_contiguous_ndarray(buf), header=False)

    def __repr__(self) -> str:
        return f"LzfCodec(size={self.size})"


def available() -> bool:
    """Whether imagecodecs with LZF support is installed here."""
    return has("LZF")


def _imagecodecs():
    return require("LZF chunks")
