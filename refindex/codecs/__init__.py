"""HDF5 filter pipelines as exact Zarr v2 codecs (numcodecs configs), and the codecs we add.

``codecs_for`` maps a dataset's pipeline (``filters_of``) to numcodecs configs. Our own
codecs are registered with numcodecs here and through the ``numcodecs.codecs`` entry points,
so any reader with refindex installed decodes our sidecars.
"""

from importlib.metadata import EntryPoint

from numcodecs.registry import codec_registry, entries, register_codec

from refindex.codecs.bitshuffle_h5 import BitshuffleH5Codec
from refindex.codecs.blosc2_h5 import Blosc2H5Codec
from refindex.codecs.blosc_h5 import BloscH5Codec
from refindex.codecs.deflate import RawDeflateCodec
from refindex.codecs.filters import FilterSpec, UnsupportedCodecError, filters_of
from refindex.codecs.guarded import GuardedCodec
from refindex.codecs.hdf5_pipeline import Hdf5PipelineCodec
from refindex.codecs.imagecodecs_import import IMAGECODECS_CODECS
from refindex.codecs.jpegls_h5 import JpeglsH5Codec
from refindex.codecs.lz4h5 import Lz4H5Codec
from refindex.codecs.lzf import LzfCodec
from refindex.codecs.objects import ObjectsCodec
from refindex.codecs.pipeline import codecs_for
from refindex.codecs.sperr_h5 import SperrH5Codec
from refindex.codecs.tiff_jpeg import TiffJpegCodec
from refindex.codecs.tiff_predictor import TiffPredictorCodec
from refindex.codecs.zfp_h5 import ZfpH5Codec

for _codec in (
    GuardedCodec,
    Hdf5PipelineCodec,
    LzfCodec,
    Lz4H5Codec,
    RawDeflateCodec,
    BitshuffleH5Codec,
    Blosc2H5Codec,
    BloscH5Codec,
    JpeglsH5Codec,
    SperrH5Codec,
    ZfpH5Codec,
    ObjectsCodec,
    TiffJpegCodec,
    TiffPredictorCodec,
):
    if _codec.codec_id not in codec_registry:
        register_codec(_codec)

# imagecodecs' numcodecs codecs that TIFF sidecars name, loaded when first asked for.
for _codec_id, _name in IMAGECODECS_CODECS.items():
    if _codec_id not in codec_registry and _codec_id not in entries:
        entries[_codec_id] = EntryPoint(_codec_id, f"imagecodecs.numcodecs:{_name}",
                                        "numcodecs.codecs")

__all__ = [
    "BitshuffleH5Codec",
    "Blosc2H5Codec",
    "BloscH5Codec",
    "FilterSpec",
    "GuardedCodec",
    "Hdf5PipelineCodec",
    "JpeglsH5Codec",
    "Lz4H5Codec",
    "LzfCodec",
    "ObjectsCodec",
    "RawDeflateCodec",
    "SperrH5Codec",
    "TiffJpegCodec",
    "TiffPredictorCodec",
    "UnsupportedCodecError",
    "ZfpH5Codec",
    "codecs_for",
    "filters_of",
]
