"""HDF5 fill values become Zarr v2 fill values, so absent chunks read as h5py reads them."""

from __future__ import annotations

import base64

import h5py
import numpy as np
import pytest
from types_roundtrip import assert_same_bits, read_through_zarr

from refindex.scan.json_values import fill_to_json


def _partly_written(f, dtype, fill, value):
    """Six elements in chunks of two, only the middle chunk written: two chunks are absent."""
    dset = f.create_dataset("x", shape=(6,), dtype=dtype, chunks=(2,), fillvalue=fill)
    dset[2:4] = value
    assert dset.id.get_num_chunks() == 1
    return dset


def test_default_fill_is_null_so_zero_is_not_missing(h5file):
    dset = _partly_written(h5file, "<i4", None, 7)
    plan, values = read_through_zarr(dset)
    assert plan.fill_value is None
    assert_same_bits(values, dset[...], plan)


def test_explicit_zero_fill_is_null_too(h5file):
    plan, _ = read_through_zarr(_partly_written(h5file, "<f8", 0.0, 1.0))
    assert plan.fill_value is None


@pytest.mark.parametrize(
    ("dtype", "fill", "expected"),
    [
        (">i2", -999, -999),
        ("<u8", 2**64 - 1, 2**64 - 1),
        ("<f4", 9.96921e36, float(np.float32(9.96921e36))),
        (">f8", np.nan, "NaN"),
        ("<f2", -np.inf, "-Infinity"),
        ("<f8", np.inf, "Infinity"),
        ("|b1", True, True),
        ("<c16", complex(np.nan, 2.5), ["NaN", 2.5]),
    ],
)
def test_numeric_fill_values_are_zarr_json(h5file, dtype, fill, expected):
    dset = _partly_written(h5file, dtype, fill, np.ones((), dtype))
    plan, values = read_through_zarr(dset)
    assert plan.fill_value == expected
    assert_same_bits(values, dset[...], plan)


def test_bytes_fill_is_base64(h5file):
    dset = _partly_written(h5file, "S4", b"n/a", b"abcd")
    plan, values = read_through_zarr(dset)
    assert plan.fill_value == base64.b64encode(b"n/a\0").decode()
    assert_same_bits(values, dset[...], plan)


def test_record_fill_is_base64_of_the_record_bytes(h5file):
    dtype = np.dtype([("a", "<i4"), ("b", ">f8", (2,)), ("c", [("d", "|u1")])])
    fill = np.array((-1, [np.nan, 1.5], (9,)), dtype=dtype)
    dset = _partly_written(h5file, dtype, fill, np.zeros((), dtype))
    plan, values = read_through_zarr(dset)
    assert plan.fill_value == base64.b64encode(fill.tobytes()).decode()
    assert_same_bits(values, dset[...], plan)


def test_zero_datetime_fill_is_explicit_because_zarr_takes_null_as_nat(h5file):
    dtype = h5py.opaque_dtype(np.dtype("<M8[s]"))
    dset = h5file.create_dataset("x", shape=(6,), dtype=dtype, chunks=(2,))
    dset[2:4] = np.array([5, 6], "<M8[s]").astype(dtype)
    plan, values = read_through_zarr(dset)
    assert plan.fill_value == 0
    assert_same_bits(values, dset[...], plan)


def test_datetime_fill_is_an_integer_count():
    assert fill_to_json(np.array(np.datetime64("NaT", "s"))) == np.iinfo("i8").min
    assert fill_to_json(np.array(np.datetime64(5, "ms"))) == 5
