"""Codec ``refindex.blosc2_h5``: the HDF5 Blosc2 filter (32026) and its framing.

The filter (hdf5-blosc2, as shipped by hdf5plugin and PyTables) stores each chunk as a
Blosc2 contiguous frame (a "cframe": a msgpack header whose first string is ``b2frame``, the
compressed chunks, their index and the metalayers). A chunk of two or more dimensions is a
B2ND array frame: its ``b2nd`` metalayer gives the chunk's shape, and inside the frame the
data is split into B2ND blocks, so it must be reassembled in C order, which python-blosc2
does. Other chunks are a plain super-chunk whose chunks, concatenated, are the data. Older
filter versions stored a bare Blosc2 chunk instead of a frame; that is decoded too.
``cd_values`` (version, element size, chunk size, compressor, level, shuffle, dims) are not
needed: everything is in the frame.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.errors import RefindexError

# msgpack: a 14-element array, then an 8-byte string "b2frame\0".
_FRAME_MAGIC = b"\xa8b2frame\x00"
_MAGIC_AT = 1


class Blosc2H5Codec(Codec):
    """Decode one chunk as the HDF5 Blosc2 filter stores it (python-blosc2 does the work)."""

    codec_id = "refindex.blosc2_h5"

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1).tobytes()
        blosc2 = _blosc2()
        try:
            if data[_MAGIC_AT : _MAGIC_AT + len(_FRAME_MAGIC)] == _FRAME_MAGIC:
                plain = _decode_frame(blosc2, data)
            else:
                plain = blosc2.decompress(data)
        except RefindexError:
            raise
        except Exception as error:  # python-blosc2 raises RuntimeError/ValueError
            raise RefindexError(f"Blosc2 chunk could not be decoded: {error}") from error
        chunk = np.frombuffer(plain, dtype="u1")
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        raise RefindexError(f"{self.codec_id}: encoding is not implemented (decode only)")

    def __repr__(self) -> str:
        return "Blosc2H5Codec()"


def _decode_frame(blosc2, frame: bytes) -> bytes:
    schunk = blosc2.schunk_from_cframe(frame, copy=True)
    if "b2nd" in schunk.meta:
        array = blosc2.ndarray_from_cframe(frame, copy=True)
        return np.ascontiguousarray(array[()]).tobytes()
    return b"".join(bytes(schunk.decompress_chunk(i)) for i in range(schunk.nchunks))


def config_for(cd_values: tuple[int, ...]) -> dict | None:
    """The codec config for the filter, or None when python-blosc2 is not installed here."""
    return {"id": Blosc2H5Codec.codec_id} if available() else None


def available() -> bool:
    """Whether python-blosc2 is installed here."""
    try:
        _blosc2()
    except RefindexError:
        return False
    return True


def _blosc2():
    try:
        import blosc2
    except ImportError as error:
        raise RefindexError(
            "decoding HDF5 Blosc2 chunks needs python-blosc2: pip install 'refindex[plugins]'"
        ) from error
    return blosc2
