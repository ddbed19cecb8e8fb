"""A TIFF page's compression, predictor and sample layout as Zarr v2 codecs that decode each
strip or tile exactly as tifffile does, or the reason they cannot (``Refused``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from refindex.codecs.tiff_predictor import PREDICTORS

# Byte-stream compressions: they give back the stored bytes, in the file's byte order.
_STREAMS = {
    8: {"id": "zlib"},  # Adobe deflate
    32946: {"id": "zlib"},  # deflate
    5: {"id": "imagecodecs_lzw"},
    50013: {"id": "zlib"},  # deflate (PixTIFF)
    32773: {"id": "imagecodecs_packbits"},
    50000: {"id": "zstd"},
    34926: {"id": "zstd"},
    34925: {"id": "imagecodecs_lzma"},
    34887: {"id": "imagecodecs_lerc"},
}
# Image compressions: their decoders give values in native byte order; predictors do not apply
# (tifffile ignores them, as libtiff does).
_IMAGES = {
    50001: {"id": "imagecodecs_webp"},
    33003: {"id": "imagecodecs_jpeg2k"},  # Aperio JPEG 2000 YCbCr
    33005: {"id": "imagecodecs_jpeg2k"},  # Aperio JPEG 2000 RGB
    34712: {"id": "imagecodecs_jpeg2k"},
    34933: {"id": "imagecodecs_png"},
    50002: {"id": "imagecodecs_jpegxl"},
    52546: {"id": "imagecodecs_jpegxl"},  # JPEG XL in DNG
    22610: {"id": "imagecodecs_jpegxr"},
    34934: {"id": "imagecodecs_jpegxr"},  # JPEG XR in ZIF
}
_JPEG = 7
_PHOTOMETRIC_YCBCR = 6


class Refused(Exception):
    """A page feature no Zarr codec reads exactly here; the message names it."""


@dataclass(frozen=True)
class Codecs:
    """The Zarr ``dtype`` (with its byte order), ``compressor`` and ``filters`` of a page."""

    dtype: np.dtype
    compressor: dict | None
    filters: list[dict] | None


def page_codecs(page, byteorder: str) -> Codecs:
    """The codecs of tifffile page ``page`` (a keyframe) of a file in ``byteorder``."""
    _check_samples(page)
    compression, name = int(page.compression), _compression_name(page.compression)
    stored = page.dtype.newbyteorder(byteorder) if page.dtype.itemsize > 1 else page.dtype
    native = page.dtype.newbyteorder("=")
    if compression == _JPEG:
        return Codecs(native, _jpeg(page), None)
    if compression in _IMAGES:
        return Codecs(native, dict(_IMAGES[compression]), None)
    if page.photometric == _PHOTOMETRIC_YCBCR and tuple(page.subsampling or (1, 1)) != (1, 1):
        raise Refused(f"TIFF YCbCr samples subsampled {tuple(page.subsampling)} with {name} "
                      "compression (no codec upsamples them as tifffile does)")
    if page.fillorder == 2:
        raise Refused("TIFF FillOrder 2 (bits stored least significant first in each byte)")
    if compression != 1 and compression not in _STREAMS:
        raise Refused(f"TIFF compression {name} ({compression}), which no registered Zarr "
                      "codec decodes exactly")
    compressor = dict(_STREAMS[compression]) if compression != 1 else None
    filters = None
    if page.predictor != 1:
        if page.predictor not in PREDICTORS:
            raise Refused(f"TIFF predictor {page.predictor}")
        width, samples = _row(page)
        filters = [{"id": "refindex.tiff_predictor", "predictor": int(page.predictor),
                    "dtype": stored.str, "width": width, "samples": samples}]
    return Codecs(stored, compressor, filters)


def _check_samples(page) -> None:
    if page.dtype is None or page.bitspersample not in (8, 16, 32, 64, 128):
        raise Refused(f"TIFF samples of {page.bitspersample} bits (SampleFormat "
                      f"{int(page.sampleformat)}), packed in a way no Zarr dtype holds")
    if page.dtype.itemsize * 8 != page.bitspersample:
        raise Refused(f"TIFF samples of {page.bitspersample} bits read as {page.dtype}")


def _row(page) -> tuple[int, int]:
    """Pixels per row of a strip or tile, and samples per pixel in it."""
    width = page.tilewidth if page.is_tiled else page.imagewidth
    samples = page.samplesperpixel if page.planarconfig == 1 else 1
    return int(width), int(samples)


def _jpeg(page) -> dict:
    from tifffile.tifffile import jpeg_decode_colorspace

    colorspace, outcolorspace = jpeg_decode_colorspace(
        page.photometric, page.planarconfig, page.extrasamples, page.is_jfif)
    tables = page.jpegtables
    return {"id": "refindex.tiff_jpeg",
            "tables": base64.b64encode(bytes(tables)).decode() if tables else None,
            "colorspace": _plain(colorspace), "outcolorspace": _plain(outcolorspace),
            "bitspersample": int(page.bitspersample)}


def _plain(value):
    return value if value is None or isinstance(value, str) else int(value)


def _compression_name(value: int) -> str:
    from tifffile import COMPRESSION

    try:
        return COMPRESSION(int(value)).name
    except ValueError:
        return f"#{int(value)}"
