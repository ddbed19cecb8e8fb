"""An in-memory one-chunk HDF5 dataset whose filter pipeline equals a stored one exactly.

HDF5 calls a filter function with nothing but its flags, its ``cd_values`` and the chunk
buffer. So a dataset whose pipeline has the same filter ids, flags and ``cd_values`` as the
source dataset decodes a stored chunk exactly as the source would: we write the raw chunk
into the replica with ``write_direct_chunk`` and read it back through HDF5.

The catch is that HDF5 runs each filter's ``set_local`` callback when a dataset is created,
and that callback rewrites ``cd_values`` from the datatype, chunk shape, fill value and the
parameters the user passed. We cannot pass the stored values through untouched, so we
rebuild the inputs ``set_local`` sees (datatype, chunk shape, fill value), search for user
parameters that make it produce the stored values, and refuse when none do.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import numpy as np
from h5py import h5d, h5f, h5p, h5s, h5t, h5z

from refindex.codecs.filters import (
    BITSHUFFLE,
    FCIDECOMP,
    NBIT,
    SCALEOFFSET,
    SPERR,
    SZ,
    SZ3,
    FilterSpec,
    UnsupportedCodecError,
)
from refindex.codecs.plugin_path import use_hdf5plugin
from refindex.errors import RefindexError

_file_numbers = itertools.count()

# scaleoffset cd_values: [7] says whether a fill value is defined, [8:] hold its bytes.
_SO_FILL_DEFINED_INDEX = 7
_SO_FILL_INDEX = 8
# nbit cd_values for an atomic type: [3] class (1 = atomic), [4:8] size, order, precision, offset.
_NBIT_ATOMIC = 1


class Replica:
    """A one-chunk dataset in an in-memory HDF5 file with a given dtype, chunk shape and pipeline.

    Not thread-safe on its own (one chunk slot is reused): keep one per thread. h5py serialises
    all HDF5 calls behind one lock anyway, so threads would not decode in parallel here.
    """

    def __init__(self, dtype: np.dtype, chunks: tuple[int, ...], filters: Sequence[FilterSpec]):
        use_hdf5plugin()
        self.dtype = np.dtype(dtype)
        self.chunks = tuple(int(n) for n in chunks)
        self.filters = tuple(filters)
        for spec in self.filters:
            _check_available(spec)
        self._origin = (0,) * len(self.chunks)
        self._mem_type = h5t.py_create(self.dtype)
        self._file = _memory_file()
        self._dataset = self._create_verified()

    def decode(self, raw) -> np.ndarray:
        """The chunk, in C order with the full chunk shape, from its stored bytes."""
        self._dataset.write_direct_chunk(self._origin, raw, 0)
        out = np.empty(self.chunks, self.dtype)
        self._dataset.read(h5s.ALL, h5s.ALL, out, self._mem_type)
        return out

    def encode(self, chunk: np.ndarray) -> bytes:
        """The bytes HDF5 would store for a full chunk (an array of the chunk shape)."""
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype).reshape(self.chunks)
        self._dataset.write(h5s.ALL, h5s.ALL, chunk, self._mem_type)
        mask, data = self._dataset.read_direct_chunk(self._origin)
        if mask:
            # An optional filter declined this chunk (e.g. it did not shrink); the bytes
            # would not decode through the full pipeline, so refuse rather than mislead.
            raise RefindexError(
                f"HDF5 skipped optional filters (mask {mask:#x}) while encoding a chunk; "
                "its bytes cannot be decoded by this pipeline"
            )
        return bytes(data)

    def _create_verified(self):
        file_type = self._file_type()
        # set_local callbacks look at one filter at a time, so each is searched on its own.
        user_parameters = [
            _search_user_values(self._file, spec, file_type, self.chunks, self._base_dcpl)
            for spec in self.filters
        ]
        dcpl = self._base_dcpl()
        for spec, (flags, values) in zip(self.filters, user_parameters, strict=True):
            dcpl.set_filter(spec.id, flags, values)
        dataset = _create(self._file, file_type, self.chunks, dcpl, no_cache=True)
        got = _pipeline_of(dataset)
        want = [(spec.id, spec.flags, spec.cd_values) for spec in self.filters]
        if got != want:
            raise UnsupportedCodecError(
                self.filters[0],
                f"HDF5 could not rebuild the filter pipeline {want} (got {got})",
            )
        return dataset

    def _base_dcpl(self):
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_chunk(self.chunks)
        fill = _scaleoffset_fill(self.dtype, self.filters)
        if fill is not None:
            dcpl.set_fill_value(fill)
        return dcpl

    def _file_type(self):
        tid = h5t.py_create(self.dtype).copy()
        for spec in self.filters:
            if spec.id == NBIT:
                _apply_nbit_precision(tid, self.dtype, spec)
        return tid


def _check_available(spec: FilterSpec) -> None:
    if not h5z.filter_avail(spec.id):
        raise UnsupportedCodecError(
            spec,
            "HDF5 cannot load this filter here; install hdf5plugin or set HDF5_PLUGIN_PATH",
        )
    if not h5z.get_filter_info(spec.id) & h5z.FILTER_CONFIG_DECODE_ENABLED:
        raise UnsupportedCodecError(spec, "the HDF5 filter here has no decoder")


def _memory_file():
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_fapl_core(block_size=64 * 1024, backing_store=False)
    # Core-driver files are identified by name within a process, so each needs its own.
    name = f"refindex-replica-{os.getpid()}-{next(_file_numbers)}".encode()
    return h5f.create(name, h5f.ACC_TRUNC, fapl=fapl)


def _create(file, file_type, chunks, dcpl, *, no_cache: bool = False):
    dapl = None
    if no_cache:
        # The chunk is rewritten on every decode; a cache could only serve stale data.
        dapl = h5p.create(h5p.DATASET_ACCESS)
        dapl.set_chunk_cache(0, 0, 1.0)
    space = h5s.create_simple(chunks)
    # Anonymous datasets are freed when their last handle closes: nothing piles up.
    return h5d.create(file, None, file_type, space, dcpl=dcpl, dapl=dapl)


def _pipeline_of(dataset) -> list[tuple[int, int, tuple[int, ...]]]:
    dcpl = dataset.get_create_plist()
    out = []
    for index in range(dcpl.get_nfilters()):
        filter_id, flags, cd_values, _name = dcpl.get_filter(index)
        out.append((int(filter_id), int(flags), tuple(int(v) for v in cd_values)))
    return out


def _candidates(spec: FilterSpec):
    """User parameter lists that the filter's set_local may turn into the stored values.

    First what we know of the filters whose set_local prepends values of its own (trying a
    wrong guess costs a dataset creation, and some plugins print an error for it), then
    generic guesses: most filters accept their own output (deflate, szip, scaleoffset, blosc,
    zfp, ...), others keep the user's values as a suffix or a single value.
    """
    stored = spec.cd_values
    if spec.id == BITSHUFFLE:
        yield stored[3:]  # major, minor version and element size come first
    elif spec.id in (SZ, SZ3, FCIDECOMP) and stored:
        yield stored[2 + stored[0] :]  # rank, type or version, then the chunk dims
    elif spec.id == SPERR and len(stored) > 1:
        # After a packed rank/type/missing-value word come the user's compression word (and
        # missing-value mode, bits 6-9 of the packed word, for newer versions); dims follow.
        yield (stored[1], (stored[0] >> 6) & 0xF)
        yield stored[1:2]
    yield stored
    for start in range(1, len(stored) + 1):
        yield stored[start:]
    for start in range(len(stored)):
        yield stored[start : start + 1]
        yield (*stored[start : start + 1], 0)


def _search_user_values(
    file, spec: FilterSpec, file_type, chunks, new_dcpl
) -> tuple[int, tuple[int, ...]]:
    """(flags, cd_values) to pass so that set_local stores exactly ``spec``'s flags and values."""
    # Some set_local callbacks also rewrite the flags (sperr stores a filter h5py added as
    # optional as mandatory), and some checks are only waived for optional filters.
    flag_choices = dict.fromkeys([spec.flags, spec.flags | h5z.FLAG_OPTIONAL])
    tried = set()
    for values in _candidates(spec):
        for flags in flag_choices:
            if (flags, values) in tried:
                continue
            tried.add((flags, values))
            dcpl = new_dcpl()
            dcpl.set_filter(spec.id, flags, values)
            try:
                probe = _create(file, file_type, chunks, dcpl)
            except Exception:
                continue  # set_local rejected these parameters: try the next candidate
            if _pipeline_of(probe) == [(spec.id, spec.flags, spec.cd_values)]:
                return flags, values
    raise UnsupportedCodecError(
        spec,
        f"no parameters make HDF5 reproduce its stored cd_values {list(spec.cd_values)} "
        "(a filter version or datatype this HDF5 build cannot rebuild)",
    )


def _scaleoffset_fill(dtype: np.dtype, filters: Sequence[FilterSpec]) -> np.ndarray | None:
    """The fill value scaleoffset's set_local copied into its cd_values, if any.

    It is stored as the value's bytes in native order, packed into native unsigned ints.
    """
    for spec in filters:
        cd = spec.cd_values
        if spec.id == SCALEOFFSET and len(cd) > _SO_FILL_INDEX and cd[_SO_FILL_DEFINED_INDEX] == 1:
            packed = np.array(cd[_SO_FILL_INDEX:], dtype="=u4").tobytes()[: dtype.itemsize]
            native = np.frombuffer(packed, dtype=dtype.newbyteorder("="))
            return native.astype(dtype)
    return None


def _apply_nbit_precision(tid, dtype: np.dtype, spec: FilterSpec) -> None:
    """Give the replica's datatype the source's bit precision and offset, read from nbit's cd."""
    cd = spec.cd_values
    if len(cd) < 8 or cd[3] != _NBIT_ATOMIC:
        return  # compound/array types: left as numpy describes them; verification decides
    size, precision, offset = cd[4], cd[6], cd[7]
    if precision == size * 8 and offset == 0:
        return
    if dtype.kind not in "iu":
        # A reduced-precision float's exponent/mantissa layout is not in the cd_values, and
        # HDF5's conversion to a native float depends on it.
        raise UnsupportedCodecError(
            spec, f"reduced-precision {dtype} ({precision} bits) cannot be rebuilt exactly"
        )
    tid.set_precision(precision)
    tid.set_offset(offset)
