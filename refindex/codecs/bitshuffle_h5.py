"""Codec ``refindex.bitshuffle_h5``: the HDF5 bitshuffle filter (32008) and its framing.

The filter's ``cd_values`` are ``(major, minor, element size, block size, compression[,
level])``; compression 0 is none, 2 is LZ4, 3 is zstd. The block size is in elements (0: the
library's default, 8192 bytes' worth rounded to a multiple of 8 elements).

* Without compression the chunk is the bare bitshuffled data: each full block transposed
  on its own, then the last partial block cut down to a multiple of 8 elements, then the
  remaining (fewer than 8) elements copied as they are.
* With compression a 12-byte big-endian header comes first: the decoded size in bytes
  (8 bytes) and the block size in bytes (4 bytes). Then, for every block of the layout
  above, a 4-byte big-endian length and the bitshuffled block compressed on its own (an LZ4
  block without a frame, or one zstd frame); the fewer than 8 remaining elements follow
  uncompressed.

imagecodecs does the transposition (it is the bitshuffle library) and LZ4/zstd; this
codec splits the framing.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import has, require
from refindex.errors import RefindexError

COMPRESSIONS = {0: "none", 2: "lz4", 3: "zstd"}
_HEADER_BYTES = 12
_LENGTH_BYTES = 4
# Bitshuffle transposes groups of 8 elements; a block is a multiple of this.
_BLOCKED_MULT = 8


class BitshuffleH5Codec(Codec):
    """Decode (and encode) one chunk as the HDF5 bitshuffle filter stores it.

    Parameters
    ----------
    elementsize
        The element size in bytes the filter shuffled with (``cd_values[2]``).
    blocksize
        The block size in elements (``cd_values[3]``); 0 takes the library's default.
        Compressed chunks carry their own block size, which decoding uses.
    compression
        ``"none"``, ``"lz4"`` or ``"zstd"`` (``cd_values[4]``).
    level
        The zstd level used when encoding (``cd_values[5]``).
    """

    codec_id = "refindex.bitshuffle_h5"

    def __init__(
        self, elementsize: int, blocksize: int = 0, compression: str = "none", level: int = 0
    ) -> None:
        if compression not in COMPRESSIONS.values():
            raise RefindexError(
                f"bitshuffle compression {compression!r} is not one of none, lz4, zstd"
            )
        self.elementsize = int(elementsize)
        self.blocksize = int(blocksize)
        self.compression = compression
        self.level = int(level)

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1)
        if self.compression == "none":
            chunk = self._unshuffle(data, self.blocksize)
        else:
            chunk = self._decompress(data)
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        data = ensure_contiguous_ndarray(buf).view("u1").reshape(-1)
        imagecodecs = _imagecodecs()
        if self.compression == "none":
            elements = data.view(f"V{self.elementsize}")
            return imagecodecs.bitshuffle_encode(elements, blocksize=self.blocksize)
        raise RefindexError(
            f"{self.codec_id}: encoding with {self.compression} compression is not implemented"
        )

    def _unshuffle(self, data: np.ndarray, blocksize: int) -> np.ndarray:
        if data.nbytes % self.elementsize:
            raise RefindexError(
                f"bitshuffle chunk of {data.nbytes} bytes is not a whole number of "
                f"{self.elementsize}-byte elements: corrupt chunk"
            )
        if not data.nbytes:
            return data
        # imagecodecs takes the element size from an array's dtype (ignoring ``itemsize``),
        # so the bytes go in as elements of the filter's size.
        elements = data.view(f"V{self.elementsize}")
        plain = _imagecodecs().bitshuffle_decode(elements, blocksize=blocksize)
        return np.frombuffer(plain, dtype="u1")

    def _decompress(self, data: np.ndarray) -> np.ndarray:
        if data.nbytes < _HEADER_BYTES:
            raise RefindexError(f"bitshuffle chunk of {data.nbytes} bytes has no header")
        header = data[:_HEADER_BYTES].tobytes()
        size = int.from_bytes(header[:8], "big")
        block_bytes = int.from_bytes(header[8:12], "big")
        item = self.elementsize
        if size % item or block_bytes % item or (block_bytes // item) % _BLOCKED_MULT:
            raise RefindexError(
                f"bitshuffle header (size {size}, block {block_bytes} bytes) does not fit "
                f"{item}-byte elements: corrupt chunk"
            )
        block = block_bytes // item
        elements = size // item
        tail = elements % block
        sizes = [block] * (elements // block) + ([tail - tail % _BLOCKED_MULT] if tail else [])
        pieces, position = self._blocks(data, _HEADER_BYTES, [s * item for s in sizes if s])
        leftover = (elements % _BLOCKED_MULT) * item
        pieces.append(data[position : position + leftover].tobytes())
        shuffled = np.frombuffer(b"".join(pieces), dtype="u1")
        if shuffled.nbytes != size:
            raise RefindexError(
                f"bitshuffle chunk decoded to {shuffled.nbytes} bytes, expected {size}: corrupt"
            )
        return self._unshuffle(shuffled, block)

    def _blocks(self, data: np.ndarray, position: int, sizes: list[int]):
        """Each compressed block decompressed, and the position after the last one."""
        imagecodecs = _imagecodecs()
        pieces = []
        for nbytes in sizes:
            length = int.from_bytes(data[position : position + _LENGTH_BYTES].tobytes(), "big")
            position += _LENGTH_BYTES
            block = data[position : position + length]
            position += length
            if self.compression == "lz4":
                piece = imagecodecs.lz4_decode(block, header=False, out=nbytes)
            else:
                piece = imagecodecs.zstd_decode(block)
            if len(piece) != nbytes:
                raise RefindexError(
                    f"bitshuffle {self.compression} block decoded to {len(piece)} bytes, "
                    f"expected {nbytes}: corrupt chunk"
                )
            pieces.append(bytes(piece))
        return pieces, position

    def __repr__(self) -> str:
        return (
            f"BitshuffleH5Codec(elementsize={self.elementsize}, blocksize={self.blocksize}, "
            f"compression={self.compression!r}, level={self.level})"
        )


def config_for(cd_values: tuple[int, ...]) -> dict | None:
    """The codec config for the filter's stored ``cd_values``, or None if unknown/unavailable."""
    if len(cd_values) < 3 or not available():
        return None
    mode = cd_values[4] if len(cd_values) > 4 else 0
    if mode not in COMPRESSIONS:
        return None
    return {
        "id": BitshuffleH5Codec.codec_id,
        "elementsize": cd_values[2],
        "blocksize": cd_values[3] if len(cd_values) > 3 else 0,
        "compression": COMPRESSIONS[mode],
        "level": cd_values[5] if len(cd_values) > 5 else 0,
    }


def available() -> bool:
    """Whether imagecodecs with bitshuffle, LZ4 and zstd is installed here."""
    return has("BITSHUFFLE", "LZ4", "ZSTD")


def _imagecodecs():
    return require("HDF5 bitshuffle chunks")
