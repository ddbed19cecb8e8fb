"""refindex's own codecs as Zarr v3 codecs, for VirtualiZarr manifests and the stores made
from them (Icechunk, kerchunk).

A Zarr v3 array names a numcodecs codec ``numcodecs.<id>``, as zarr-python's
``zarr.codecs.numcodecs`` wrappers do; each class here wraps one of refindex's
bytes-to-bytes codecs (HDF5 filter framings, raw DEFLATE, the HDF5 pipeline itself) the same
way, so ``numcodecs.refindex.lzf`` decodes with ``refindex.lzf``. They are registered with
zarr when this module is imported and as ``zarr.codecs`` entry points, so any reader with
refindex installed decodes an Icechunk repository or kerchunk file that names them.
``refindex.objects`` (variable-length values in records) has no Zarr v3 form: arrays using
it are refused (see ``refindex.virtualizarr.metadata``).
"""

from __future__ import annotations

from zarr.codecs.numcodecs import _NumcodecsBytesBytesCodec
from zarr.registry import register_codec

import refindex.codecs  # noqa: F401  (registers the numcodecs the wrappers decode with)

PREFIX = "numcodecs."


class Hdf5Pipeline(_NumcodecsBytesBytesCodec, codec_name="refindex.hdf5"):
    pass


class Lzf(_NumcodecsBytesBytesCodec, codec_name="refindex.lzf"):
    pass


class FastZlib(_NumcodecsBytesBytesCodec, codec_name="refindex.zlib"):
    pass


class Lz4H5(_NumcodecsBytesBytesCodec, codec_name="refindex.lz4h5"):
    pass


class RawDeflate(_NumcodecsBytesBytesCodec, codec_name="refindex.deflate"):
    pass


class BitshuffleH5(_NumcodecsBytesBytesCodec, codec_name="refindex.bitshuffle_h5"):
    pass


class Blosc2H5(_NumcodecsBytesBytesCodec, codec_name="refindex.blosc2_h5"):
    pass


class BloscH5(_NumcodecsBytesBytesCodec, codec_name="refindex.blosc_h5"):
    pass


class ZfpH5(_NumcodecsBytesBytesCodec, codec_name="refindex.zfp_h5"):
    pass


class JpeglsH5(_NumcodecsBytesBytesCodec, codec_name="refindex.jpegls_h5"):
    pass


class SperrH5(_NumcodecsBytesBytesCodec, codec_name="refindex.sperr_h5"):
    pass


class TiffPredictor(_NumcodecsBytesBytesCodec, codec_name="refindex.tiff_predictor"):
    pass


class TiffJpeg(_NumcodecsBytesBytesCodec, codec_name="refindex.tiff_jpeg"):
    pass


# imagecodecs' own numcodecs codecs, which TIFF sidecars name and refindex registers for
# numcodecs (imagecodecs declares neither numcodecs nor Zarr v3 entry points).
class ImagecodecsLzw(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_lzw"):
    pass


class ImagecodecsPackbits(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_packbits"):
    pass


class ImagecodecsWebp(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_webp"):
    pass


class ImagecodecsJpeg2k(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_jpeg2k"):
    pass


class ImagecodecsJpegxl(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_jpegxl"):
    pass


class ImagecodecsJpegxr(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_jpegxr"):
    pass


class ImagecodecsPng(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_png"):
    pass


class ImagecodecsLerc(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_lerc"):
    pass


class ImagecodecsLzma(_NumcodecsBytesBytesCodec, codec_name="imagecodecs_lzma"):
    pass


CODECS = (Hdf5Pipeline, Lzf, FastZlib, Lz4H5, RawDeflate, BitshuffleH5, Blosc2H5, BloscH5,
          ZfpH5, JpeglsH5, SperrH5, TiffPredictor, TiffJpeg, ImagecodecsLzw,
          ImagecodecsPackbits, ImagecodecsWebp, ImagecodecsJpeg2k, ImagecodecsJpegxl,
          ImagecodecsJpegxr, ImagecodecsPng, ImagecodecsLerc, ImagecodecsLzma)
"""Every wrapper; ``codec_name`` is the Zarr v3 name (``numcodecs.refindex.lzf``)."""

for _codec in CODECS:
    register_codec(_codec.codec_name, _codec)
