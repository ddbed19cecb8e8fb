"""Codec ``refindex.zfp_h5``: the H5Z-ZFP filter (32013), whose zfp header is in cd_values.

The filter stores each chunk as a bare zfp stream (no header). Its ``cd_values`` are a
version word (H5Z-ZFP version in bits 0-11, zfp codec in bits 12-15, zfp library version in
bits 16-31) followed by words holding a full zfp header as a zfp bit stream: the magic
``"zfp"`` and the codec version (32 bits), the field's metadata (52 bits: type and
dimensions) and the compression mode (12 bits, or 64 when the 12 bits read above 4094).
zfp bit streams are little-endian words consumed from the least significant bit, so the
header words and the chunk are each a little-endian integer read from bit 0.

Decoding splices the two: the header's bits, then the chunk's bits right after them (a bit
shift, since the header is not a whole number of words), which is a complete zfp stream that
imagecodecs decodes with the mode and field the filter used. The filter hands HDF5 the
decompressed values in native byte order (little-endian here), as this codec does.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require
from refindex.errors import RefindexError

_MAGIC_BITS = 32
_META_BITS = 52
_MODE_SHORT_BITS = 12
_MODE_LONG_BITS = 64
_MODE_SHORT_MAX = (1 << _MODE_SHORT_BITS) - 2
_MAGIC = int.from_bytes(b"zfp", "little")
_WORD_BYTES = 8  # zfp's stream word
# zfp_codec in the version word: the bit stream format; H5Z-ZFP refuses newer codecs.
_CODEC_SHIFT, _CODEC_MASK = 12, 0xF
_FILTER_VERSION_MASK = 0xFFF
_NEW_VERSION_WORD = 0x0110  # H5Z-ZFP >= 1.1.0 records the codec in the version word
_CODEC = 5


class ZfpH5Codec(Codec):
    """Decode one chunk as H5Z-ZFP stores it, given the filter's stored ``cd_values``.

    Parameters
    ----------
    cd_values
        The filter's ``cd_values`` exactly as stored in the file (version word, then the
        header words).
    """

    codec_id = "refindex.zfp_h5"

    def __init__(self, cd_values) -> None:
        self.cd_values = [int(v) for v in cd_values]
        self._header, self._header_bits = _header(self.cd_values)

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1)
        body = int.from_bytes(data.tobytes(), "little")
        stream = self._header | (body << self._header_bits)
        nbytes = (self._header_bits + 8 * data.nbytes + 7) // 8
        # zfp reads whole words: round up and give it one spare word of zeros.
        nbytes = (nbytes // _WORD_BYTES + 2) * _WORD_BYTES
        try:
            values = _imagecodecs().zfp_decode(stream.to_bytes(nbytes, "little"))
        except Exception as error:  # imagecodecs raises its own ZfpError
            raise RefindexError(f"zfp chunk could not be decoded: {error}") from error
        chunk = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        raise RefindexError(f"{self.codec_id}: encoding is not implemented (decode only)")

    def __repr__(self) -> str:
        return f"ZfpH5Codec(cd_values={self.cd_values})"


def _header(cd_values: list[int]) -> tuple[int, int]:
    """The zfp header in ``cd_values[1:]`` as an integer, and its length in bits."""
    if len(cd_values) < 2:
        raise RefindexError(f"H5Z-ZFP cd_values {cd_values} hold no zfp header")
    version = cd_values[0]
    if (version & _FILTER_VERSION_MASK) >= _NEW_VERSION_WORD and (
        (version >> _CODEC_SHIFT) & _CODEC_MASK
    ) > _CODEC:
        raise RefindexError(f"H5Z-ZFP data written with a zfp codec newer than {_CODEC}")
    words = np.array(cd_values[1:], dtype="<u4").tobytes()
    header = int.from_bytes(words, "little")
    if header & ((1 << 24) - 1) != _MAGIC:
        # A big-endian writer: H5Z-ZFP byte-swaps the words and retries; so would we, but
        # it then also byte-swaps the decoded values. Refuse rather than guess.
        raise RefindexError("H5Z-ZFP header in cd_values is not little-endian zfp: unsupported")
    mode_at = _MAGIC_BITS + _META_BITS
    mode = (header >> mode_at) & ((1 << _MODE_SHORT_BITS) - 1)
    bits = mode_at + (_MODE_LONG_BITS if mode > _MODE_SHORT_MAX else _MODE_SHORT_BITS)
    if bits > 32 * (len(cd_values) - 1):
        raise RefindexError(f"H5Z-ZFP cd_values {cd_values} hold a truncated zfp header")
    return header & ((1 << bits) - 1), bits


def config_for(cd_values: tuple[int, ...]) -> dict | None:
    """The codec config for the filter's stored ``cd_values``, or None if not decodable here."""
    if not available():
        return None
    try:
        _header(list(cd_values))
    except RefindexError:
        return None
    return {"id": ZfpH5Codec.codec_id, "cd_values": list(cd_values)}


def available() -> bool:
    """Whether imagecodecs with zfp is installed here."""
    return has("ZFP")


def _imagecodecs():
    return require("HDF5 zfp chunks")
