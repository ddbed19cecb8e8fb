"""Map an HDF5 filter pipeline to Zarr v2 ``filters`` (numcodecs configs) that decode exactly.

HDF5 applies its filters in pipeline order when it writes a chunk and in reverse when it
reads one; Zarr v2 encodes with ``filters`` in list order and decodes in reverse, so the
pipeline maps to a list in the same order. A filter gets a standard numcodecs codec only
where that codec is proven bit-exact for the HDF5 filter's stream (see tests/codecs), or
one of ours that decodes the filter's own framing without HDF5 (bitshuffle, blosc2, zfp,
fcidecomp, sperr);
everything up to and including the last filter without one is decoded by HDF5 itself
through the ``refindex.hdf5`` codec.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from numcodecs import blosc

from refindex.codecs import (
    bitshuffle_h5,
    blosc2_h5,
    blosc_h5,
    jpegls_h5,
    lz4h5,
    lzf,
    sperr_h5,
    zfp_h5,
)
from refindex.codecs.filters import (
    BITSHUFFLE,
    BLOSC,
    BLOSC2,
    BZIP2,
    DEFLATE,
    FCIDECOMP,
    FLETCHER32,
    LZ4,
    LZF,
    SHUFFLE,
    SPERR,
    ZFP,
    ZSTD,
    FilterSpec,
)
from refindex.codecs.hdf5_pipeline import Hdf5PipelineCodec
from refindex.codecs.plugin_path import use_hdf5plugin

# Filter ids below this are HDF5's own (deflate, shuffle, ...), always built in.
_FIRST_PLUGIN_ID = 256
# The HDF5 blosc filter's compressor codes (cd_values[6]) and blosc's names for them.
_BLOSC_NAMES = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}


def codecs_for(
    filters: Sequence[FilterSpec],
    dtype: np.dtype,
    chunk_shape: tuple[int, ...],
    filter_mask: int = 0,
) -> list[dict]:
    """Numcodecs configs, in Zarr v2 ``filters`` order, that decode one stored chunk exactly.

    Decoding a chunk's stored bytes with these (last first) yields the full chunk (edge
    chunks are stored padded to the full ``chunk_shape``) in C order as ``dtype``. Filters
    whose bit is set in ``filter_mask`` were skipped by HDF5 for the chunk and are left out.
    Raises UnsupportedCodecError when no codec here can decode a filter exactly.
    """
    dtype = np.dtype(dtype)
    chunks = tuple(int(n) for n in chunk_shape)
    if any(spec.id >= _FIRST_PLUGIN_ID for spec in filters):
        # The scanner may still read such a dataset through HDF5 (chunks to re-encode or
        # inline, the generic codec): let HDF5 find hdf5plugin's filters, not foreign ones.
        use_hdf5plugin()
    active = tuple(spec for i, spec in enumerate(filters) if not (filter_mask >> i) & 1)
    standard = _standard_configs(active, dtype, dtype.itemsize * math.prod(chunks))
    generic_end = max((i + 1 for i, config in enumerate(standard) if config is None), default=0)
    configs = []
    if generic_end:
        configs.append(_verified_generic_config(dtype, chunks, active[:generic_end]))
    configs.extend(standard[generic_end:])
    return configs


def _standard_configs(
    filters: Sequence[FilterSpec], dtype: np.dtype, chunk_nbytes: int
) -> list[dict | None]:
    """Per filter, a bit-exact standard config, or None where HDF5 must decode it."""
    configs: list[dict | None] = []
    # True while the filter's input is still the chunk's data itself (full size, whole
    # elements): only then do shuffle and LZF know their input's size.
    data_shaped = True
    for spec in filters:
        configs.append(_standard_config(spec, dtype, chunk_nbytes, data_shaped))
        data_shaped = data_shaped and spec.id == SHUFFLE
    return configs


def _standard_config(
    spec: FilterSpec, dtype: np.dtype, chunk_nbytes: int, data_shaped: bool
) -> dict | None:
    cd = spec.cd_values
    if spec.id == DEFLATE:
        # Any zlib level decodes the same; the level only matters if a chunk is re-encoded.
        return {"id": "zlib", "level": cd[0] if cd else 6}
    if spec.id == SHUFFLE and data_shaped:
        # HDF5 shuffles whole elements of the dataset's type (a compound or string type is
        # one element); numcodecs refuses a trailing partial element, HDF5 copies it, which
        # is why this holds only for data-shaped input.
        return {"id": "shuffle", "elementsize": cd[0] if cd else dtype.itemsize}
    if spec.id == FLETCHER32:
        # Same checksum (incl. odd lengths), verified and stripped. HDF5 <= 1.6.2 wrote a
        # byte-swapped checksum on little-endian machines, which numcodecs rejects: loud.
        return {"id": "fletcher32"}
    if spec.id == LZF and data_shaped and lzf.available():
        return {"id": "refindex.lzf", "size": chunk_nbytes}
    if spec.id == LZ4 and lz4h5.available():
        return {"id": "refindex.lz4h5", "blocksize": cd[0] if cd and cd[0] else None}
    if spec.id == BLOSC:
        return _blosc_config(cd)
    if spec.id == ZSTD:
        # The filter writes one plain zstd frame with its content size.
        return {"id": "zstd", "level": cd[0] if cd else 0, "checksum": False}
    if spec.id == BZIP2:
        # The filter writes one plain bzip2 stream.
        return {"id": "bz2", "level": cd[0] if cd and 1 <= cd[0] <= 9 else 9}
    # Plugin filters with framings of their own, decoded without HDF5 (so neither the
    # plugin path nor which libhdf5 is loaded matters): each module documents its framing.
    if spec.id in _FRAMED:
        return _FRAMED[spec.id].config_for(cd)
    return None


_FRAMED = {
    BITSHUFFLE: bitshuffle_h5,
    BLOSC2: blosc2_h5,
    FCIDECOMP: jpegls_h5,
    SPERR: sperr_h5,
    ZFP: zfp_h5,
}


def _blosc_config(cd: tuple[int, ...]) -> dict | None:
    """numcodecs blosc reads a blosc1 header like the HDF5 filter does, if it has the codec;
    else imagecodecs' c-blosc, if it has it."""
    cname = _BLOSC_NAMES.get(cd[6] if len(cd) > 6 else 0)
    if cname is None:
        return None  # a compressor code this filter version does not know: HDF5 decides
    if cname not in blosc.list_compressors():
        # The chunk's own header names its compressor; cd_values only say what was asked.
        return {"id": blosc_h5.BloscH5Codec.codec_id} if blosc_h5.available(cname) else None
    return {
        "id": "blosc",
        "cname": cname,
        "clevel": cd[4] if len(cd) > 4 else 5,
        "shuffle": cd[5] if len(cd) > 5 else 1,
        "blocksize": 0,
    }


@functools.lru_cache(maxsize=512)
def _generic_config(dtype: np.dtype, chunks: tuple[int, ...], filters: tuple[FilterSpec, ...]):
    codec = Hdf5PipelineCodec.for_pipeline(dtype, chunks, filters)
    # Build the replica once now, so a pipeline HDF5 cannot rebuild fails at scan time
    # (UnsupportedCodecError), not when someone reads the data.
    codec.replica()
    return codec.get_config()


def _verified_generic_config(
    dtype: np.dtype, chunks: tuple[int, ...], filters: tuple[FilterSpec, ...]
) -> dict:
    config = _generic_config(dtype, chunks, filters)
    return {**config, "filters": [dict(f) for f in config["filters"]]}
