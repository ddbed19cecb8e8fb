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


LONG_DOUBLE = np.dtype(np.longdouble)
needs_long_double = pytest.mark.skipif(
    LONG_DOUBLE.itemsize <= 8, reason="NumPy's long double is float64 on this platform")


def _long_doubles_with_noisy_padding(count: int) -> np.ndarray:
    """Long doubles whose padding bytes (past the 80 bits x87 uses) are random, as memory
    handed to HDF5 may hold: referencing must keep them too."""
    values = np.array([1 / 3, -2.5, np.inf, np.nan, 1e-4000, 0.0] * count, dtype=LONG_DOUBLE)
    values[4] = np.finfo(LONG_DOUBLE).tiny  # beyond float64's range
    raw = bytearray(np.random.default_rng(0).bytes(values.nbytes))
    meaningful = values.tobytes()
    for i in range(values.size):
        start = i * LONG_DOUBLE.itemsize
        raw[start:start + 10] = meaningful[start:start + 10]
    return np.frombuffer(bytes(raw), dtype=LONG_DOUBLE)


@needs_long_double
def test_long_double_is_referenced_padding_bytes_and_all(h5file):
    data = _long_doubles_with_noisy_padding(2)
    dset = h5file.create_dataset("x", data=data, chunks=(4,))
    plan, from_zarr = read_through_zarr(dset)
    assert plan.zarr_dtype == LONG_DOUBLE.str and plan.referencable
    assert_same_bits(from_zarr, dset[...], plan)
    assert dset[...].tobytes() == data.tobytes()  # h5py keeps the padding bytes too


@needs_long_double
def test_long_double_of_another_layout_is_inlined_as_h5py_converts_it(h5file):
    file_type = h5t.NATIVE_LDOUBLE.copy()
    file_type.set_order(h5t.ORDER_BE)
    h5d.create(h5file.id, b"x", file_type, h5s.create_simple((3,)))
    h5file["x"][...] = np.array([1 / 3, 2, -7], dtype=LONG_DOUBLE)
    plan, from_zarr = read_through_zarr(h5file["x"])
    assert plan.zarr_dtype == ">f16" and not plan.referencable
    assert_same_bits(from_zarr, h5file["x"][...], plan)


@needs_long_double
def test_long_double_fill_value_beyond_float64_is_inlined(h5file):
    fill = np.finfo(LONG_DOUBLE).tiny
    dset = h5file.create_dataset("x", shape=(4,), dtype=LONG_DOUBLE, fillvalue=fill,
                                 chunks=(2,))
    dset[:2] = [1, 2]
    plan, from_zarr = read_through_zarr(dset)
    assert not plan.referencable and "fill value" in plan.note
    assert_same_bits(from_zarr, dset[...], plan)


def _meaningful_bits(values: np.ndarray) -> np.ndarray:
    """The 80 bits of each x87 long double; the 6 padding bytes are whatever memory held
    (HDF5 and NumPy leave them uninitialised when they compute a value)."""
    return np.frombuffer(values.tobytes(), dtype="u1").reshape(-1, LONG_DOUBLE.itemsize)[:, :10]


@needs_long_double
def test_long_double_fill_value_a_float64_holds_is_kept(h5file):
    dset = h5file.create_dataset("x", shape=(4,), dtype=LONG_DOUBLE, fillvalue=-1.5,
                                 chunks=(2,))
    dset[:2] = [1, 2]
    plan, from_zarr = read_through_zarr(dset)
    assert plan.referencable and plan.fill_value == -1.5
    assert from_zarr.dtype == dset.dtype
    # Filled elements: the same value, padding bytes as each library computed them.
    np.testing.assert_array_equal(_meaningful_bits(from_zarr), _meaningful_bits(dset[...]))


def test_quadruple_float_h5py_cannot_read_is_unsupported(h5file):
    file_type = h5t.IEEE_F64LE.copy()
    file_type.set_size(16)
    file_type.set_precision(128)
    file_type.set_fields(127, 112, 15, 0, 112)
    file_type.set_ebias(16383)
    h5d.create(h5file.id, b"x", file_type, h5s.create_simple((2,)))
    with pytest.raises(UnsupportedFeatureError, match="16-byte float .* h5py cannot read"):
        plan_type(h5file["x"])


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
