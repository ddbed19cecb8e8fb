"""What every end-to-end test checks: a file scanned by refindex and read back through zarr
and xarray equals what h5py reads, bit for bit (NaN-aware), attributes included."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
import zarr

import refindex
from refindex.scan import scan
from refindex.scan.hdf5.attrs import encode_attrs
from refindex.scan.hdf5.dims import is_dimension_only, variable_name
from refindex.scan.hdf5.types import encode_inline, plan_type
from refindex.sidecar import write_index


def scan_to_sidecar(location, tmp_path: Path, format: str = "native", **scan_kwargs) -> Path:
    """Scan ``location`` and write its sidecar (in ``format``) into ``tmp_path``; returns the
    sidecar path."""
    result = scan(location, **scan_kwargs)
    sidecar = tmp_path / "out.refs.json"
    write_index(result.index, sidecar, format)
    return sidecar


def kerchunk_refs(path, **options) -> dict:
    """kerchunk's references of the HDF5 file ``path`` (``SingleHdf5ToZarr(**options)``).

    kerchunk calls zarr's event-loop thread while h5py's lock is held (inside ``visititems``):
    if the garbage collector runs in that thread and frees an h5py object a previous test left
    in a reference cycle, the object's finalizer waits for the lock the main thread holds, and
    both wait for ever. No collection runs while kerchunk translates."""
    from kerchunk.hdf import SingleHdf5ToZarr

    gc.collect()
    gc.disable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kerchunk warns about the datasets it skips
            return SingleHdf5ToZarr(str(path), **options).translate()
    finally:
        gc.enable()


def h5_datasets(path: Path) -> dict[str, h5py.Dataset]:
    """Every dataset readers should see, by the path refindex gives it (links followed)."""
    found: dict[str, h5py.Dataset] = {}

    def walk(group: h5py.Group, prefix: str, seen: set) -> None:
        for name in group:
            try:
                obj = group[name]
            except (KeyError, OSError):
                continue
            child = f"{prefix}{variable_name(name)}"
            if isinstance(obj, h5py.Group):
                key = h5py.h5o.get_info(obj.id).addr
                if key not in seen:
                    walk(obj, child + "/", seen | {key})
            elif isinstance(obj, h5py.Dataset) and not is_dimension_only(obj):
                found[child] = obj

    walk(h5py.File(path, "r"), "", {h5py.h5o.get_info(h5py.File(path, "r").id).addr})
    return found


def expected_values(dset: h5py.Dataset) -> np.ndarray:
    """What h5py reads, in the form refindex exposes (references as paths, vlen as values)."""
    if dset.shape is None:
        return np.zeros((0,), dtype=dset.dtype)
    return np.asarray(encode_inline(dset[()], plan_type(dset)))


def assert_same_values(expected: np.ndarray, actual: np.ndarray, where: str) -> None:
    actual = np.asarray(actual)
    assert expected.shape == actual.shape, f"{where}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.fields is not None and expected.dtype.hasobject:
        # Records with variable-length fields: field by field (the bytes hold pointers).
        assert expected.dtype == actual.dtype, f"{where}: dtype {actual.dtype}"
        for name in expected.dtype.names:
            assert_same_values(expected[name], actual[name], f"{where}.{name}")
        return
    if expected.dtype.kind in "OTU" or actual.dtype.kind in "OTU":
        same = all(_same_object(a, b) for a, b in zip(expected.ravel(), actual.ravel(),
                                                      strict=True))
        assert same, f"{where}: values differ"
        return
    assert expected.dtype == actual.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
    assert np.ascontiguousarray(expected).tobytes() == np.ascontiguousarray(actual).tobytes(), (
        f"{where}: values differ")


def _same_object(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            assert_same_values(np.asarray(a), np.asarray(b), "")
        except AssertionError:
            return False
        return True
    return type(a) is type(b) and a == b


def assert_zarr_matches(h5_path: Path, sidecar, skip: frozenset = frozenset(),
                        **options) -> None:
    """Every dataset of ``h5_path`` (but those in ``skip``) read through ``zarr.open_group``
    equals h5py's values."""
    group = zarr.open_group(refindex.open_store(sidecar, **options), mode="r", zarr_format=2)
    for path, dset in h5_datasets(h5_path).items():
        if path in skip:
            continue
        array = group[path]
        assert_same_values(expected_values(dset), array[...], path)
        attrs = dict(array.attrs)
        attrs.pop("_ARRAY_DIMENSIONS", None)
        assert attrs == encode_attrs(dset), f"{path}: attributes differ"


def assert_xarray_matches(h5_path: Path, sidecar, group: str | None = None, **options) -> None:
    """Every variable of ``group`` opened with engine="refindex" (decode_cf=False) equals
    h5py's values."""
    ds = xr.open_dataset(sidecar, engine="refindex", group=group, decode_cf=False,
                         storage_options=options or None)
    prefix = f"{group.strip('/')}/" if group else ""
    datasets = h5_datasets(h5_path)
    for name, variable in ds.variables.items():
        expected = expected_values(datasets[prefix + name])
        if not expected.dtype.isnative:  # xarray hands out native byte order, records too
            expected = expected.astype(expected.dtype.newbyteorder("="))
        assert_same_values(expected, variable.values, prefix + name)
