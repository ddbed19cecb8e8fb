"""HDF5 filter pipelines as exact Zarr v2 codecs (numcodecs configs), and the codecs we add.

``codecs_for`` maps a dataset's pipeline (``filters_of``) to numcodecs configs. Our own
codecs are registered with numcodecs here and through the ``numcodecs.codecs`` entry points,
so any reader with refindex installed decodes our sidecars.
"""

from numcodecs.registry import codec_registry, register_codec

from refindex.codecs.deflate import RawDeflateCodec
from refindex.codecs.filters import FilterSpec, UnsupportedCodecError, filters_of
from refindex.codecs.guarded import GuardedCodec
from refindex.codecs.hdf5_pipeline import Hdf5PipelineCodec
from refindex.codecs.lz4h5 import Lz4H5Codec
from refindex.codecs.lzf import LzfCodec
from refindex.codecs.pipeline import codecs_for

for _codec in (GuardedCodec, Hdf5PipelineCodec, LzfCodec, Lz4H5Codec, RawDeflateCodec):
    if _codec.codec_id not in codec_registry:
        register_codec(_codec)

__all__ = [
    "FilterSpec",
    "GuardedCodec",
    "Hdf5PipelineCodec",
    "Lz4H5Codec",
    "LzfCodec",
    "RawDeflateCodec",
    "UnsupportedCodecError",
    "codecs_for",
    "filters_of",
]
