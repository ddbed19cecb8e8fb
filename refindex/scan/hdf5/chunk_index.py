"""Every written chunk of a chunked HDF5 dataset as one int64 array, one row per chunk:
the chunk's first element (one column per dimension, in elements), filter mask, file address
and stored size (bytes).

HDF5's ``H5Dchunk_iter`` walks the chunk index; what costs is the callback. h5py builds a
namedtuple and calls into Python for every chunk (about 0.35 s for 200,000 chunks). The
compiled ``_chunk_iter`` extension gives HDF5 a C callback that appends to a buffer instead.
It is optional: without it, or when its HDF5 function cannot be found, h5py's ``chunk_iter``
gives the same records. ``REFINDEX_NO_C_EXTENSION=1`` forces that fallback.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import warnings
from itertools import chain
from operator import itemgetter

import h5py
import numpy as np
from h5py import h5d
from h5py._objects import phil

try:
    from refindex.scan.hdf5 import _chunk_iter
except ImportError:  # not built (no compiler at install time): h5py's chunk_iter does the work
    _chunk_iter = None

NO_C_EXTENSION = "REFINDEX_NO_C_EXTENSION"

# Columns after the chunk's first element, counted from the end of a row.
FILTER_MASK, ADDRESS, SIZE = -3, -2, -1


def chunk_records(dset: h5py.Dataset) -> np.ndarray:
    """Records of the dataset's written chunks, shape ``(n, ndim + 3)``, int64, in HDF5's index
    order: ``row[:ndim]`` is the chunk's first element, then filter mask, address and size
    (bytes). Chunks without an address are left out. The array may be read-only."""
    ndim = len(dset.chunks)
    address = None if _c_extension_disabled() else _chunk_iter_address()
    if address is None:
        return _h5py_records(dset, ndim)
    try:
        return _c_records(dset, ndim, address)
    except RuntimeError:
        # HDF5 refused: h5py repeats the call and raises with HDF5's own error message.
        records = _h5py_records(dset, ndim)
    warnings.warn(
        f"refindex: the compiled H5Dchunk_iter failed on {dset.name!r} where h5py's "
        "succeeded; set REFINDEX_NO_C_EXTENSION=1 and report this",
        RuntimeWarning,
        stacklevel=2,
    )
    return records


def fast_path_available() -> bool:
    """Whether ``chunk_records`` uses the compiled extension (built, and HDF5 function found)."""
    return not _c_extension_disabled() and _chunk_iter_address() is not None


def _c_records(dset: h5py.Dataset, ndim: int, address: int) -> np.ndarray:
    with phil:
        raw = _chunk_iter.chunk_records(address, dset.id.id, ndim)
    return np.frombuffer(raw, np.int64).reshape(-1, ndim + 3)


def _c_extension_disabled() -> bool:
    return os.environ.get(NO_C_EXTENSION, "") not in ("", "0")


@functools.cache
def _chunk_iter_address() -> int | None:
    """Address of ``H5Dchunk_iter`` in the libhdf5 that h5py calls, or None.

    Dataset ids are only valid in the library instance that made them, and a process may hold
    several (netCDF4 wheels bring their own). So the symbol is looked up the way the dynamic
    linker bound h5py's ``h5d`` module: on ELF systems the global scope first, then ``h5d``'s
    own dependencies; elsewhere (macOS two-level namespaces) only ``h5d``'s dependencies.
    Windows does not search dependencies, so there the fallback is used.
    """
    # h5py only wraps chunk_iter when its HDF5 has the final callback signature (1.10.10,
    # 1.12.3, 1.14 and later), which is the one _chunk_iter.c declares.
    if _chunk_iter is None or not hasattr(h5d.DatasetID, "chunk_iter"):
        return None
    function = _hdf5_function("H5Dchunk_iter")
    return None if function is None else ctypes.cast(function, ctypes.c_void_p).value


@functools.cache
def _hdf5_function(name: str):
    """The function ``name`` of the libhdf5 h5py calls (see ``_chunk_iter_address``), or None."""
    scopes: list[str | None] = [h5d.__file__]
    if sys.platform.startswith(("linux", "freebsd")):
        scopes.insert(0, None)
    for scope in scopes:
        try:
            lib = ctypes.CDLL(scope)  # already loaded: this only opens a handle to look up in
            function = getattr(lib, name)
        except (OSError, AttributeError, TypeError):
            continue
        if _library_version(lib) != tuple(h5py.version.hdf5_version_tuple[:3]):
            return None
        return function
    return None


_LOOKUPS = 32  # listed chunks per dataset that HDF5's own chunk lookup must find


def check_lookups(dset: h5py.Dataset, records: np.ndarray) -> None:
    """Raise ``RuntimeError`` if HDF5's chunk lookup — the one its reads use — does not find,
    at their size, chunks its chunk index lists (first, last and some spaced between).

    On a damaged index the two can disagree: a v1 B-tree key with a wrong trailing offset is
    listed, but a read of it gives fill values; referencing it would be silently wrong.
    Metadata only (the index nodes the listing read), no chunk data."""
    function = _hdf5_function("H5Dget_chunk_storage_size")
    if function is None or not len(records):
        return
    function.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_uint64),
                         ctypes.POINTER(ctypes.c_uint64)]
    function.restype = ctypes.c_int
    ndim = records.shape[1] - 3
    rows = np.unique(np.linspace(0, len(records) - 1, min(_LOOKUPS, len(records))).astype(int))
    size = ctypes.c_uint64(0)
    for row in records[rows]:
        offset = (ctypes.c_uint64 * max(ndim, 1))(*(int(v) for v in row[:ndim]))
        with phil:
            status = function(dset.id.id, offset, ctypes.byref(size))
        if status < 0 or size.value != row[SIZE]:
            raise RuntimeError(
                f"HDF5's chunk lookup does not find the chunk at {tuple(row[:ndim].tolist())} "
                f"that its chunk index lists ({int(row[SIZE])} bytes at {int(row[ADDRESS])}): "
                "the chunk index is damaged, and HDF5 would read fill values there")


def _library_version(lib: ctypes.CDLL) -> tuple[int, ...] | None:
    try:
        get_version = lib.H5get_libversion
    except AttributeError:
        return None
    parts = [ctypes.c_uint() for _ in range(3)]
    get_version.argtypes = [ctypes.POINTER(ctypes.c_uint)] * 3
    get_version.restype = ctypes.c_int
    if get_version(*(ctypes.byref(part) for part in parts)) < 0:
        return None
    return tuple(part.value for part in parts)


def _h5py_records(dset: h5py.Dataset, ndim: int) -> np.ndarray:
    infos: list = []
    # A bound method as the callback keeps Python code out of the per-chunk path; the columns
    # are pulled out afterwards in C loops.
    dset.id.chunk_iter(infos.append)
    try:
        return _records_from_infos(infos, ndim)
    except TypeError:
        # h5py reports a chunk without an address with offset and address None.
        return _records_from_infos([info for info in infos if info[2] is not None], ndim)


def _records_from_infos(infos: list, ndim: int) -> np.ndarray:
    count = len(infos)
    records = np.empty((count, ndim + 3), np.int64)
    records[:, :ndim] = np.fromiter(
        chain.from_iterable(map(itemgetter(0), infos)), np.int64, count * ndim
    ).reshape(count, ndim)
    records[:, FILTER_MASK] = np.fromiter(map(itemgetter(1), infos), np.int64, count)
    records[:, ADDRESS] = np.fromiter(map(itemgetter(2), infos), np.int64, count)
    records[:, SIZE] = np.fromiter(map(itemgetter(3), infos), np.int64, count)
    return records
