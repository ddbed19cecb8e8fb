"""Chunk records: the compiled H5Dchunk_iter path and h5py's chunk_iter agree, record for record,
on every chunk index type and layout corner; and the compiled path is really built here."""

from __future__ import annotations

import ctypes
import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from h5py._objects import phil

from refindex.scan.hdf5 import chunk_index
from refindex.scan.hdf5.chunk_index import NO_C_EXTENSION, chunk_records
from refindex.scan.hdf5.layout import chunked_layout

# The compiled path warns when it fails where h5py succeeds; here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

RNG = np.random.default_rng(42)


def _early_allocation() -> h5py.h5p.PropDCID:
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return dcpl


def _one_d(f: h5py.File) -> None:
    f.create_dataset("x", data=np.arange(1003, dtype="i4"), chunks=(10,))


def _two_d_edges(f: h5py.File) -> None:
    f.create_dataset("x", data=RNG.random((37, 23)), chunks=(8, 5))


def _three_d(f: h5py.File) -> None:
    f.create_dataset("x", data=RNG.random((9, 10, 11)).astype("f4"), chunks=(4, 3, 5))


def _four_d(f: h5py.File) -> None:
    f.create_dataset("x", data=RNG.integers(0, 99, (5, 6, 7, 8)).astype("u2"),
                     chunks=(2, 3, 4, 5))


def _unwritten_chunks(f: h5py.File) -> None:
    dset = f.create_dataset("x", shape=(40, 40), dtype="i4", chunks=(10, 10), fillvalue=-7)
    dset[0:10, 0:10] = 1
    dset[25:35, 31:40] = 2


def _lzf_incompressible(f: h5py.File) -> None:
    # lzf gives up on random bytes, so those chunks are stored raw with filter mask bit 0 set.
    data = np.concatenate([np.zeros((30, 45), "i4"), RNG.integers(0, 2**31, (30, 45), "i4")])
    f.create_dataset("x", data=data, chunks=(10, 15), compression="lzf")


def _big_endian(f: h5py.File) -> None:
    f.create_dataset("x", data=RNG.random((33, 17)).astype(">f8"), chunks=(8, 8),
                     compression="gzip", shuffle=True)


def _nothing_written(f: h5py.File) -> None:
    f.create_dataset("x", shape=(100, 100), dtype="f4", chunks=(10, 10))


def _many_chunks(f: h5py.File) -> None:
    # More chunks than the extension's first buffer holds (4096 rows), so it must grow.
    f.create_dataset("x", data=np.arange(20_000, dtype="i2"), chunks=(1,))


def _single_chunk(f: h5py.File) -> None:
    f.create_dataset("x", data=RNG.random((6, 7)), chunks=(6, 7))


def _fixed_array(f: h5py.File) -> None:
    f.create_dataset("x", data=RNG.random((50, 30)), chunks=(7, 4), compression="gzip")


def _extensible_array(f: h5py.File) -> None:
    dset = f.create_dataset("x", shape=(10, 12), maxshape=(None, 12), dtype="i8", chunks=(3, 5))
    dset[...] = np.arange(120).reshape(10, 12)
    dset.resize((25, 12))
    dset[20:25] = 9


def _btree_v2(f: h5py.File) -> None:
    dset = f.create_dataset("x", shape=(8, 8, 3), maxshape=(None, None, 3), dtype="f4",
                            chunks=(3, 3, 2))
    dset[...] = RNG.random((8, 8, 3))
    dset.resize((14, 11, 3))
    dset[12:, 9:] = 1.5


def _implicit_index(f: h5py.File) -> None:
    # Early allocation, no filter, fixed size: every chunk has an address, written or not.
    dset = f.create_dataset("x", shape=(20, 9), dtype="i4", chunks=(6, 4),
                            dcpl=_early_allocation())
    dset[0:6, 0:4] = 5


FACTORIES: dict[str, Callable[[h5py.File], None]] = {
    "1d": _one_d,
    "2d_edges": _two_d_edges,
    "3d": _three_d,
    "4d": _four_d,
    "unwritten_chunks": _unwritten_chunks,
    "lzf_incompressible": _lzf_incompressible,
    "big_endian": _big_endian,
    "nothing_written": _nothing_written,
    "many_chunks": _many_chunks,
    "extensible_array": _extensible_array,
    "btree_v2": _btree_v2,
}
LATEST_ONLY: dict[str, Callable[[h5py.File], None]] = {
    "single_chunk": _single_chunk,
    "fixed_array": _fixed_array,
    "implicit_index": _implicit_index,
}
CASES = [
    pytest.param(factory, libver, id=f"{name}-{libver or 'earliest'}")
    for name, factory in FACTORIES.items()
    for libver in (None, "latest")
] + [pytest.param(factory, "latest", id=f"{name}-latest") for name, factory in LATEST_ONLY.items()]


def _dataset(tmp_path: Path, factory, libver) -> h5py.Dataset:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w", libver=libver) as f:
        factory(f)
    return h5py.File(path, "r")["x"]


def _both_paths(dset: h5py.Dataset, call, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(NO_C_EXTENSION, raising=False)
    assert chunk_index.fast_path_available()
    compiled = call(dset)
    monkeypatch.setenv(NO_C_EXTENSION, "1")
    assert not chunk_index.fast_path_available()
    return compiled, call(dset)


@pytest.mark.parametrize(("factory", "libver"), CASES)
def test_compiled_records_equal_h5py_records(tmp_path, monkeypatch, factory, libver):
    dset = _dataset(tmp_path, factory, libver)
    compiled, fallback = _both_paths(dset, chunk_records, monkeypatch)
    assert compiled.dtype == fallback.dtype == np.int64
    assert compiled.shape == fallback.shape == (compiled.shape[0], dset.ndim + 3)
    np.testing.assert_array_equal(compiled, fallback)


@pytest.mark.parametrize(("factory", "libver"), CASES)
def test_compiled_layout_equals_h5py_layout(tmp_path, monkeypatch, factory, libver):
    dset = _dataset(tmp_path, factory, libver)
    compiled, fallback = _both_paths(dset, lambda d: chunked_layout(d, 3), monkeypatch)
    assert compiled.chunk_shape == fallback.chunk_shape
    assert compiled.table.grid == fallback.table.grid
    for column in ("source", "offset", "length"):
        np.testing.assert_array_equal(getattr(compiled.table, column),
                                      getattr(fallback.table, column))
    np.testing.assert_array_equal(compiled.masks, fallback.masks)


def test_records_match_h5py_get_chunk_info(tmp_path):
    dset = _dataset(tmp_path, _unwritten_chunks, None)
    records = chunk_records(dset)
    expected = [dset.id.get_chunk_info(i) for i in range(dset.id.get_num_chunks())]
    assert [(tuple(r[:2]), r[2], r[3], r[4]) for r in records.tolist()] == [
        (info.chunk_offset, info.filter_mask, info.byte_offset, info.size) for info in expected
    ]


def test_incompressible_lzf_chunks_have_filter_masks(tmp_path):
    records = chunk_records(_dataset(tmp_path, _lzf_incompressible, None))
    assert set(records[:, chunk_index.FILTER_MASK].tolist()) == {0, 1}


def test_no_written_chunk_gives_empty_records(tmp_path):
    records = chunk_records(_dataset(tmp_path, _nothing_written, None))
    assert records.shape == (0, 5)


def test_zero_size_dataset_gives_empty_records(tmp_path, monkeypatch):
    path = tmp_path / "z.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", shape=(0, 4), maxshape=(None, 4), dtype="i4", chunks=(2, 2))
    compiled, fallback = _both_paths(h5py.File(path, "r")["x"], chunk_records, monkeypatch)
    assert compiled.shape == fallback.shape == (0, 5)


def test_extension_is_built_in_this_environment(monkeypatch):
    # Not a skip: a build that silently fell back to h5py must fail here, in CI.
    monkeypatch.delenv(NO_C_EXTENSION, raising=False)
    extension = importlib.import_module("refindex.scan.hdf5._chunk_iter")
    assert callable(extension.chunk_records)
    assert chunk_index.fast_path_available(), "H5Dchunk_iter not found in h5py's libhdf5"


def test_environment_variable_forces_h5py_path(monkeypatch):
    monkeypatch.setenv(NO_C_EXTENSION, "1")
    assert not chunk_index.fast_path_available()
    monkeypatch.setenv(NO_C_EXTENSION, "0")
    assert chunk_index.fast_path_available()


def test_compiled_path_uses_h5pys_library_when_netcdf4_brings_another(tmp_path):
    # netCDF4 wheels bundle their own libhdf5; ids from h5py's are meaningless in that one.
    # A subprocess, because importing netCDF4 early changes hdf5plugin's filters for later tests.
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        _unwritten_chunks(f)
    script = textwrap.dedent(f"""
        import netCDF4, h5py, numpy as np
        from refindex.scan.hdf5 import chunk_index
        dset = h5py.File({str(path)!r}, "r")["x"]
        address = chunk_index._chunk_iter_address()
        compiled = chunk_index._c_records(dset, 2, address)
        assert np.array_equal(compiled, chunk_index._h5py_records(dset, 2)), compiled
        print(len(compiled))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, NO_C_EXTENSION: ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3"]  # chunks written by _unwritten_chunks


def test_hdf5_failure_is_an_exception(tmp_path):
    extension = importlib.import_module("refindex.scan.hdf5._chunk_iter")
    address = chunk_index._chunk_iter_address()
    with pytest.raises(RuntimeError, match="H5Dchunk_iter failed"):
        extension.chunk_records(address, 0x7FFF_FFFF_FFFF, 2)  # not a dataset id
    with pytest.raises(ValueError, match="rank"):
        extension.chunk_records(address, 0, 0)
    with pytest.raises(ValueError, match="NULL"):
        extension.chunk_records(0, 0, 2)


def test_cases_cover_every_chunk_index_type(tmp_path):
    # 0 v1 B-tree, 1 single chunk, 2 implicit, 3 fixed array, 4 extensible array, 5 v2 B-tree.
    index_type = ctypes.CDLL(h5py.h5d.__file__).H5Dget_chunk_index_type
    index_type.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int)]
    seen = set()
    for number, case in enumerate(CASES):
        dset = _dataset(tmp_path / str(number), *case.values)
        kind = ctypes.c_int(-1)
        with phil:
            assert index_type(dset.id.id, ctypes.byref(kind)) >= 0
        seen.add(kind.value)
        dset.file.close()
    assert seen == {0, 1, 2, 3, 4, 5}
