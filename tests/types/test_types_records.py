"""Compounds (flat, nested, with arrays), array types, opaque and datetime data."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from types_roundtrip import assert_same_bits, read_through_zarr

from refindex.errors import UnsupportedFeatureError
from refindex.scan.hdf5.types import plan_type


def _records(dtype: np.dtype, count: int = 5) -> np.ndarray:
    """``count`` records whose every byte differs, so misplaced fields cannot go unnoticed."""
    raw = (np.arange(count * dtype.itemsize) * 7 % 251).astype("u1")
    values = raw.view(dtype).copy()
    for name in dtype.names or ():
        if dtype[name].kind == "f":
            values[name] = np.arange(count).reshape((-1,) + (1,) * dtype[name].ndim) + 0.5
    return values


def test_flat_compound_of_mixed_byte_orders_is_referenced(h5file):
    dtype = np.dtype([("a", "<i4"), ("b", ">f8"), ("c", "|S3"), ("d", "|u1")])
    dset = h5file.create_dataset("x", data=_records(dtype), chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == [["a", "<i4"], ["b", ">f8"], ["c", "|S3"], ["d", "|u1"]]
    assert plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_compound_with_array_members_is_referenced(h5file):
    dtype = np.dtype([("a", "<i2"), ("b", "<f8", (2,)), ("c", ">u4", (2, 3))])
    dset = h5file.create_dataset("x", data=_records(dtype), chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == [["a", "<i2"], ["b", "<f8", [2]], ["c", ">u4", [2, 3]]]
    assert plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_nested_compound_with_complex_and_arrays_is_referenced(h5file):
    inner = np.dtype([("x", "<f4"), ("y", ">i2", (3,))])
    dtype = np.dtype([("id", "<u8"), ("pos", inner), ("many", inner, (2,)), ("z", "<c8")])
    dset = h5file.create_dataset("x", data=_records(dtype), chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.referencable
    assert plan.zarr_dtype[1] == ["pos", [["x", "<f4"], ["y", ">i2", [3]]]]
    assert_same_bits(values, dset[...], plan)


def test_padded_compound_is_inlined_packed(h5file):
    dtype = np.dtype(
        {"names": ["a", "b"], "formats": ["<i2", "<f8"], "offsets": [0, 8], "itemsize": 24}
    )
    dset = h5file.create_dataset("x", data=_records(dtype), chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert not plan.referencable and "padding" in plan.note
    assert plan.zarr_dtype == [["a", "<i2"], ["b", "<f8"]]
    assert_same_bits(values, dset[...], plan)


def test_compound_with_reference_member_is_unsupported(h5file):
    dtype = np.dtype([("a", "<i4"), ("r", h5py.ref_dtype)])
    dset = h5file.create_dataset("x", shape=(2,), dtype=dtype)
    with pytest.raises(UnsupportedFeatureError, match="'r' is a reference"):
        plan_type(dset)


def test_array_element_type_becomes_trailing_dimensions(h5file):
    dset = h5file.create_dataset("x", shape=(5,), dtype=np.dtype((">f4", (2, 3))), chunks=(2,))
    dset[...] = np.arange(30, dtype=">f4").reshape(5, 2, 3)
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == ">f4" and plan.inner_shape == (2, 3) and plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_opaque_data_maps_to_void(h5file):
    data = np.frombuffer(bytes(range(12)), dtype="V3")
    dset = h5file.create_dataset("x", data=data, chunks=(3,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == "|V3" and plan.referencable
    assert_same_bits(values, dset[...], plan)


@pytest.mark.parametrize("dtype", ["<M8[s]", "<M8[ns]", "<m8[ms]"])
def test_h5py_tagged_datetimes_map_to_datetime64(h5file, dtype):
    data = np.array([0, 1_600_000_000, np.iinfo("i8").min, -5], dtype="i8").view(dtype)
    dset = h5file.create_dataset("x", data=data.astype(h5py.opaque_dtype(data.dtype)), chunks=(3,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == dtype and plan.referencable
    assert_same_bits(values, dset[...], plan)
