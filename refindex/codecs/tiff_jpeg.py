"""Codec ``refindex.tiff_jpeg``: one JPEG-compressed TIFF strip or tile, decoded as tifffile
decodes it — with the file's shared ``JPEGTables`` (kept here as base64 text, so the config is
JSON) and the colour spaces tifffile picks from the page's photometric interpretation (YCbCr
to RGB; RGB stored without a JFIF marker, as Aperio SVS does)."""

from __future__ import annotations

import base64

from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from refindex.codecs.imagecodecs_import import require


class TiffJpegCodec(Codec):
    """Decode a JPEG stream with ``tables`` (base64 text of the JPEGTables tag, or None),
    ``colorspace`` / ``outcolorspace`` (imagecodecs' names or numbers, None for its default)
    and ``bitspersample``."""

    codec_id = "refindex.tiff_jpeg"

    def __init__(self, tables: str | None = None, colorspace: int | str | None = None,
                 outcolorspace: int | str | None = None, bitspersample: int = 8) -> None:
        self.tables, self.colorspace, self.outcolorspace = tables, colorspace, outcolorspace
        self.bitspersample = int(bitspersample)
        self._tables = base64.b64decode(tables) if tables else None

    def get_config(self) -> dict:
        return {"id": self.codec_id, "tables": self.tables, "colorspace": self.colorspace,
                "outcolorspace": self.outcolorspace, "bitspersample": self.bitspersample}

    def decode(self, buf, out=None):
        imagecodecs = require("JPEG-compressed TIFF tiles")
        decoded = imagecodecs.jpeg_decode(
            ensure_contiguous_ndarray(buf).tobytes(), bitspersample=self.bitspersample,
            tables=self._tables, colorspace=self.colorspace, outcolorspace=self.outcolorspace)
        flat = decoded.reshape(-1).view("u1")
        return ndarray_copy(flat, out) if out is not None else flat

    def encode(self, buf):
        raise NotImplementedError("refindex.tiff_jpeg only decodes")
