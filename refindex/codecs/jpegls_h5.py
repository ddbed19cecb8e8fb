"""Codec ``refindex.jpegls_h5``: the FCIDECOMP HDF5 filter (32018), a bare JPEG-LS stream.

EUMETSAT's FCI JPEG-LS filter (``H5Zjpegls``, CharLS) stores each chunk as one JPEG-LS
image with no framing of its own. Its 13 ``cd_values`` are the bytes per sample (1 or 2),
the chunk as (components, lines, samples) (a 2-D chunk is one component), then the JPEG-LS
parameters: bits per sample, components, allowed lossy error, interleave mode and five
custom thresholds. The filter decodes into components x lines x samples samples of that
many bytes, native byte order. Only single-component (2-D) chunks whose bits per sample fit
the sample size are mapped here (others stay with HDF5), so the decoded image's layout is
the chunk's C order. The filter is optional: chunks it did not shrink are stored raw, with
their filter-mask bit set.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require
from refindex.errors import RefindexError

_NPARAMS = 13
_BITS_PER_BYTE = 8


class JpeglsH5Codec(Codec):
    """Decode one single-component chunk as the FCIDECOMP filter stores it.

    Parameters
    ----------
    samplebytes
        Bytes per sample of the decoded chunk (1 or 2; ``cd_values[0]``).
    size
        The decoded chunk's size in bytes (lines x samples x ``samplebytes``).
    """

    codec_id = "refindex.jpegls_h5"

    def __init__(self, samplebytes: int, size: int) -> None:
        self.samplebytes = int(samplebytes)
        self.size = int(size)

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1)
        try:
            image = _imagecodecs().jpegls_decode(data)
        except RefindexError:
            raise
        except Exception as error:  # imagecodecs raises its own JpeglsError
            raise RefindexError(f"JPEG-LS chunk could not be decoded: {error}") from error
        if image.dtype.itemsize != self.samplebytes or image.nbytes != self.size:
            raise RefindexError(
                f"JPEG-LS chunk decoded to {image.nbytes} bytes of {image.dtype}, expected "
                f"{self.size} bytes of {self.samplebytes}-byte samples"
            )
        chunk = np.frombuffer(np.ascontiguousarray(image).tobytes(), dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        # Re-encoding could not promise the filter's exact (possibly near-lossless) result.
        raise RefindexError(f"{self.codec_id}: encoding is not implemented (decode only)")

    def __repr__(self) -> str:
        return f"JpeglsH5Codec(samplebytes={self.samplebytes}, size={self.size})"


def config_for(cd_values: tuple[int, ...]) -> dict | None:
    """The codec config for the filter's stored ``cd_values``, or None where HDF5 must decode."""
    if len(cd_values) != _NPARAMS or not available():
        return None
    samplebytes, components, lines, samples, bits = cd_values[:5]
    if samplebytes not in (1, 2) or components != 1:
        return None
    # CharLS decodes up to 8 bits per sample into bytes, more into 16-bit samples.
    if not (samplebytes - 1) * _BITS_PER_BYTE < bits <= samplebytes * _BITS_PER_BYTE:
        return None
    return {
        "id": JpeglsH5Codec.codec_id,
        "samplebytes": samplebytes,
        "size": lines * samples * samplebytes,
    }


def available() -> bool:
    """Whether imagecodecs with JPEG-LS (CharLS) is installed here."""
    return has("JPEGLS")


def _imagecodecs():
    return require("HDF5 FCIDECOMP chunks")
