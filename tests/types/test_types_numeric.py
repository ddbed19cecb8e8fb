"""Numbers, booleans, enums and complex numbers are referenced in place and read back exactly."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from h5py import h5d, h5p, h5s, h5t
from types_roundtrip import assert_same_bits, read_through_zarr

from refindex.errors import UnsupportedFeatureError
from refindex.scan.hdf5.types import plan_type

INTEGERS = ["|i1", "|u1", "<i2", ">i2", "<u2", ">u2", "<i4", ">i4", "<u4", ">u4", "<i8", ">i8"]
INTEGERS += ["<u8", ">u8"]
FLOATS = ["<f2", ">f2", "<f4", ">f4", "<f8", ">f8"]


def _special_floats(dtype: str) -> np.ndarray:
    values = np.array([0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 1e-3, -7.25], dtype=dtype)
    # A NaN with a payload other than NumPy's: bit-for-bit means the payload survives too.
    raw = values.view(f"{dtype[0]}u{values.itemsize}")
    raw[6] = raw[3] | 1
    return values


@pytest.mark.parametrize("dtype", INTEGERS)
def test_integers_are_referenced_in_their_byte_order(h5file, dtype):
    info = np.iinfo(dtype)
    data = np.array([info.min, -1 if info.min else 1, 0, info.max, 7], dtype=dtype)
    dset = h5file.create_dataset("x", data=data, chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.referencable and plan.zarr_dtype == np.dtype(dtype).str
    assert_same_bits(values, dset[...], plan)


@pytest.mark.parametrize("dtype", FLOATS)
def test_floats_keep_nan_payloads_signed_zero_and_infinities(h5file, dtype):
    dset = h5file.create_dataset("x", data=_special_floats(dtype), chunks=(3,))
    plan, values = read_through_zarr(dset)
    assert plan.referencable and plan.zarr_dtype == np.dtype(dtype).str
    assert_same_bits(values, dset[...], plan)


def test_bool_maps_to_b1(h5file):
    dset = h5file.create_dataset("x", data=np.array([True, False, True]), chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == "|b1" and plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_enum_maps_to_its_base_integer_and_keeps_the_mapping(h5file):
    mapping = {"RED": 0, "GREEN": 5, "BLUE": -3}
    dtype = h5py.enum_dtype(mapping, basetype=">i2")
    dset = h5file.create_dataset("x", data=np.array([0, 5, -3, 5], ">i2"), dtype=dtype, chunks=(3,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == ">i2" and plan.enum_mapping == mapping and plan.referencable
    assert_same_bits(values, dset[...], plan)


@pytest.mark.parametrize("dtype", ["<c8", ">c8", "<c16", ">c16"])
def test_h5py_complex_compounds_map_to_complex(h5file, dtype):
    data = np.array([1 + 2j, complex(np.nan, -np.inf), -0.0 - 0.0j], dtype=dtype)
    dset = h5file.create_dataset("x", data=data, chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == np.dtype(dtype).str and plan.referencable
    assert_same_bits(values, dset[...], plan)


def _native_complex(f: h5py.File, file_type: h5t.TypeID, values: np.ndarray) -> h5py.Dataset:
    # h5py writes complex as an r/i compound; HDF5 2.0's own complex class needs the low level.
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((2,))
    dsid = h5d.create(f.id, b"x", file_type, h5s.create_simple(values.shape), dcpl=dcpl)
    dsid.write(h5s.ALL, h5s.ALL, values, mtype=file_type)
    return f["x"]


@pytest.mark.parametrize(
    ("file_type", "dtype"), [("COMPLEX_IEEE_F32LE", "<c8"), ("COMPLEX_IEEE_F64BE", ">c16")]
)
def test_native_hdf5_complex_maps_to_complex(h5file, file_type, dtype):
    values = np.array([1 + 2j, complex(np.nan, 1), 3 - 4j], dtype=dtype)
    dset = _native_complex(h5file, getattr(h5t, file_type), values)
    plan, from_zarr = read_through_zarr(dset)
    assert plan.zarr_dtype == dtype and plan.referencable
    assert_same_bits(from_zarr, dset[...], plan)


def test_native_half_precision_complex_is_unsupported(h5file):
    dcpl = h5p.create(h5p.DATASET_CREATE)
    h5d.create(h5file.id, b"x", h5t.COMPLEX_IEEE_F16LE, h5s.create_simple((2,)), dcpl=dcpl)
    with pytest.raises(UnsupportedFeatureError, match="complex"):
        plan_type(h5file["x"])


def test_long_double_is_unsupported(h5file):
    dset = h5file.create_dataset("x", shape=(2,), dtype=np.longdouble)
    with pytest.raises(UnsupportedFeatureError, match="16-byte float"):
        plan_type(dset)


def test_integer_with_padding_bits_is_inlined_as_h5py_reads_it(h5file):
    file_type = h5t.STD_I16LE.copy()
    file_type.set_precision(12)
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((2,))
    dsid = h5d.create(h5file.id, b"x", file_type, h5s.create_simple((3,)), dcpl=dcpl)
    dsid.write(h5s.ALL, h5s.ALL, np.array([-1, 2047, -2048], "<i2"))
    plan, values = read_through_zarr(h5file["x"])
    assert not plan.referencable and "12-bit" in plan.note
    assert_same_bits(values, h5file["x"][...], plan)


def test_bitfield_maps_to_unsigned_integer(h5file):
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((2,))
    dsid = h5d.create(h5file.id, b"x", h5t.STD_B16BE, h5s.create_simple((3,)), dcpl=dcpl)
    dsid.write(h5s.ALL, h5s.ALL, np.array([1, 258, 65535], ">u2"), mtype=h5t.STD_B16BE)
    plan, values = read_through_zarr(h5file["x"])
    assert plan.zarr_dtype == ">u2" and plan.referencable
    assert_same_bits(values, h5file["x"][...], plan)
