"""Codec ``refindex.sperr_h5``: the H5Z-SPERR filter (32028) and its framing.

The filter's ``cd_values`` are a packed word (bits 0-3 the rank, 2 or 3, of the chunk's
dimensions longer than 1; bit 4 float rather than double; bits 6-9 the missing-value mode;
bits 10-15 the format generation, 1 here), a compression word (bit 31: the dimensions are
swapped), then those dimensions, fastest first unless swapped.

Each chunk is one byte, the missing-value mode the chunk really needed (0: none), then (in
modes 1 and 2 only) the value replaced and a compacted bitmask of where, then the SPERR
bit stream: without a header for 2-D data, with one for 3-D. The decoded chunk is native
floats or doubles. Only datasets created without a missing-value mode are mapped here (so
every chunk's first byte is 0); the others stay with HDF5.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require
from refindex.errors import RefindexError

_GENERATION = 1
_SWAP_BIT = 31


class SperrH5Codec(Codec):
    """Decode one chunk as H5Z-SPERR stores it (imagecodecs does the SPERR decoding).

    Parameters
    ----------
    dims
        The SPERR field's dimensions, fastest first (after the filter's swap).
    dtype
        ``"<f4"`` or ``"<f8"``: what the filter decodes to.
    """

    codec_id = "refindex.sperr_h5"

    def __init__(self, dims, dtype: str) -> None:
        self.dims = [int(n) for n in dims]
        self.dtype = str(np.dtype(dtype).newbyteorder("<").str)

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1)
        if not data.nbytes or data[0] != 0:
            mode = int(data[0]) if data.nbytes else None
            raise RefindexError(f"SPERR chunk with missing-value mode {mode}, expected 0")
        dtype = np.dtype(self.dtype)
        imagecodecs = _imagecodecs()
        try:
            if len(self.dims) == 2:
                shape = tuple(reversed(self.dims))
                values = imagecodecs.sperr_decode(data[1:], shape=shape, dtype=dtype, header=False)
            else:
                values = imagecodecs.sperr_decode(data[1:], header=True)
        except Exception as error:  # imagecodecs raises its own SperrError
            raise RefindexError(f"SPERR chunk could not be decoded: {error}") from error
        expected = dtype.itemsize * int(np.prod(self.dims))
        if values.dtype.itemsize != dtype.itemsize or values.nbytes != expected:
            raise RefindexError(
                f"SPERR chunk decoded to {values.nbytes} bytes of {values.dtype}, "
                f"expected {expected} bytes of {dtype}"
            )
        chunk = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        # Lossy: re-encoding could not reproduce what the filter stored.
        raise RefindexError(f"{self.codec_id}: encoding is not implemented (decode only)")

    def __repr__(self) -> str:
        return f"SperrH5Codec(dims={self.dims}, dtype={self.dtype!r})"


def config_for(cd_values: tuple[int, ...]) -> dict | None:
    """The codec config for the filter's stored ``cd_values``, or None where HDF5 must decode."""
    if len(cd_values) < 4 or not available():
        return None
    meta, compression = cd_values[0], cd_values[1]
    rank = 3 if meta & 1 else 2
    is_float = (meta >> 4) & 1
    missing_mode = (meta >> 6) & 0xF
    generation = (meta >> 10) & 0x3F
    if generation != _GENERATION or missing_mode != 0 or len(cd_values) != 2 + rank:
        return None
    dims = list(cd_values[2:])
    if compression >> _SWAP_BIT:
        dims[0], dims[-1] = dims[-1], dims[0]
    return {"id": SperrH5Codec.codec_id, "dims": dims, "dtype": "<f4" if is_float else "<f8"}


def available() -> bool:
    """Whether imagecodecs with SPERR is installed here."""
    return has("SPERR")


def _imagecodecs():
    return require("HDF5 SPERR chunks")
