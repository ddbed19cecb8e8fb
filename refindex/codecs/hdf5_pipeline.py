"""Codec ``refindex.hdf5``: decode a chunk through HDF5's own filter pipeline.

For filters no other library decodes exactly (szip, nbit, scaleoffset, plugin filters such
as bitshuffle, blosc2, zfp, sz, sz3, sperr, fcidecomp), the exact decoder is the filter
itself. This codec keeps a one-chunk in-memory HDF5 dataset with the stored pipeline (see
``replica.py``), writes the raw chunk into it and reads the chunk back: tens of
microseconds per small chunk once the dataset exists.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy
from numpy.lib.format import descr_to_dtype, dtype_to_descr

from refindex.codecs.filters import FilterSpec
from refindex.codecs.replica import Replica


class Hdf5PipelineCodec(Codec):
    """Decode (and encode) one full chunk through an HDF5 filter pipeline.

    Parameters
    ----------
    dtype
        The chunk's numpy dtype as JSON: a dtype string (``"<f4"``) or a numpy descr list.
    chunks
        The chunk shape in elements.
    filters
        The pipeline in HDF5 order, each ``{"id", "flags", "cd_values"[, "name"]}`` with the
        ``cd_values`` exactly as stored in the source file.
    """

    codec_id = "refindex.hdf5"

    def __init__(self, dtype, chunks: Sequence[int], filters: Sequence[dict]) -> None:
        self.dtype = _dtype_to_json(_dtype_from_json(dtype))
        self.chunks = [int(n) for n in chunks]
        self.filters = [_filter_to_json(_filter_from_json(f)) for f in filters]
        self._local = threading.local()

    @classmethod
    def for_pipeline(
        cls, dtype: np.dtype, chunks: Sequence[int], filters: Sequence[FilterSpec]
    ) -> Hdf5PipelineCodec:
        """The codec for a pipeline given as FilterSpecs."""
        return cls(_dtype_to_json(np.dtype(dtype)), chunks, [_filter_to_json(f) for f in filters])

    def replica(self) -> Replica:
        """This thread's in-memory dataset (built on first use; raises UnsupportedCodecError)."""
        replica = getattr(self._local, "replica", None)
        if replica is None:
            replica = Replica(
                _dtype_from_json(self.dtype),
                tuple(self.chunks),
                [_filter_from_json(f) for f in self.filters],
            )
            self._local.replica = replica
        return replica

    def decode(self, buf, out=None):
        chunk = self.replica().decode(ensure_contiguous_ndarray(buf))
        return ndarray_copy(chunk, out) if out is not None else chunk

    def encode(self, buf):
        replica = self.replica()
        array = np.asarray(buf)
        if array.dtype != replica.dtype:
            array = ensure_contiguous_ndarray(buf).view(replica.dtype)
        return replica.encode(array)

    def get_config(self) -> dict:
        return {
            "id": self.codec_id,
            "dtype": self.dtype,
            "chunks": list(self.chunks),
            "filters": [dict(f) for f in self.filters],
        }

    def __getstate__(self) -> dict:
        # HDF5 handles cannot cross processes; the receiver rebuilds its own replica.
        return self.get_config()

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state.pop("id", None)
        self.__init__(**state)

    def __eq__(self, other) -> bool:
        return isinstance(other, Hdf5PipelineCodec) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(repr(self.get_config()))

    def __repr__(self) -> str:
        names = ", ".join(f.get("name") or str(f["id"]) for f in self.filters)
        return f"Hdf5PipelineCodec(dtype={self.dtype!r}, chunks={self.chunks}, filters=[{names}])"


def _dtype_to_json(dtype: np.dtype):
    descr = dtype_to_descr(dtype)
    return descr if isinstance(descr, str) else _listify(descr)


def _dtype_from_json(value) -> np.dtype:
    if isinstance(value, str):
        return np.dtype(value)
    return descr_to_dtype(_tuplify(value))


def _listify(value):
    return [_listify(v) for v in value] if isinstance(value, list | tuple) else value


def _tuplify(descr):
    """JSON turns a descr's (name, format[, shape]) tuples into lists; numpy needs tuples."""
    if isinstance(descr, str):
        return descr
    fields = []
    for name, fmt, *shape in descr:
        fmt = _tuplify(fmt) if isinstance(fmt, list) else fmt
        fields.append((name, fmt, tuple(shape[0])) if shape else (name, fmt))
    return fields


def _filter_to_json(spec: FilterSpec) -> dict:
    config = {"id": spec.id, "flags": spec.flags, "cd_values": list(spec.cd_values)}
    if spec.name:
        config["name"] = spec.name
    return config


def _filter_from_json(value: dict | FilterSpec) -> FilterSpec:
    if isinstance(value, FilterSpec):
        return value
    return FilterSpec(
        id=int(value["id"]),
        flags=int(value["flags"]),
        cd_values=tuple(int(v) for v in value["cd_values"]),
        name=str(value.get("name", "")),
    )
