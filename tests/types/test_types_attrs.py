"""HDF5 attributes become JSON ``.zattrs`` that read back through zarr as h5py reads them."""

from __future__ import annotations

import json

import h5py
import netCDF4
import numpy as np
import pytest
import zarr
from h5py import h5a, h5s, h5t
from types_roundtrip import write_store

from refindex.scan.hdf5.attrs import attr_to_json, decode_attr_for_compare, encode_attrs

_POINT = np.dtype([("x", "<f4"), ("n", ">i2"), ("tag", "S3")])

CASES = {
    "int": (np.int16(-7), -7),
    "uint64-max": (np.uint64(2**64 - 1), 2**64 - 1),
    "float": (np.float64(0.1), 0.1),
    "float32": (np.float32(0.1), float(np.float32(0.1))),
    "nan": (np.float32(np.nan), "NaN"),
    "infinities": (np.array([np.inf, -np.inf, 1.0]), ["Infinity", "-Infinity", 1.0]),
    "bool": (np.bool_(True), True),
    "complex": (np.complex64(1 - 2j), [1.0, -2.0]),
    "one-element-array": (np.array([3.5], "<f4"), 3.5),
    "2d-array": (np.arange(6, dtype=">i4").reshape(2, 3), [[0, 1, 2], [3, 4, 5]]),
    "fixed-ascii": (np.bytes_(b"degrees_north"), "degrees_north"),
    "fixed-utf8": (np.bytes_("°C".encode()), "°C"),
    "fixed-latin1": (np.bytes_("°C".encode("latin-1")), "°C"),
    "fixed-array": (np.array([b"a", b"bc"], "S2"), ["a", "bc"]),
    "vlen-str": ("née", "née"),
    "vlen-str-array": (np.array(["a", "bé"], dtype=h5py.string_dtype()), ["a", "bé"]),
    "vlen-str-one-element": (np.array(["only"], dtype=h5py.string_dtype()), "only"),
    "compound": (np.array((1.5, -2, b"ab"), _POINT), {"x": 1.5, "n": -2, "tag": "ab"}),
    "opaque": (np.void(b"\x01\x02"), "AQI="),
    "datetime": (np.datetime64("2020-01-02T03:04:05", "s"), "2020-01-02T03:04:05"),
}


def _write(obj, name, value):
    if isinstance(value, np.datetime64):
        obj.attrs.create(name, value, dtype=h5py.opaque_dtype(value.dtype))
    elif isinstance(value, str):
        obj.attrs.create(name, value, dtype=h5py.string_dtype())
    else:
        obj.attrs[name] = value


def _through_zarr(attrs: dict) -> dict:
    # Strict JSON, as a sidecar writer must produce: no bare NaN/Infinity tokens.
    entries = {".zgroup": b'{"zarr_format": 2}', ".zattrs": json.dumps(attrs, allow_nan=False)}
    entries[".zattrs"] = entries[".zattrs"].encode()
    return dict(zarr.open_group(write_store(entries), mode="r", zarr_format=2).attrs)


@pytest.mark.parametrize(("value", "expected"), CASES.values(), ids=CASES.keys())
def test_attribute_encodes_to_json_and_reads_back_through_zarr(h5file, value, expected):
    _write(h5file, "a", value)
    encoded = encode_attrs(h5file)
    assert encoded == {"a": expected}
    from_zarr = _through_zarr(encoded)["a"]
    like = h5file.attrs["a"]
    np.testing.assert_array_equal(decode_attr_for_compare(from_zarr, like, h5file), like)


def test_enum_attribute_is_its_integer(h5file):
    dtype = h5py.enum_dtype({"LOW": 1, "HIGH": 9}, basetype="u1")
    h5file.attrs.create("level", 9, dtype=dtype)
    assert encode_attrs(h5file) == {"level": 9}


def test_empty_attribute_is_null(h5file):
    h5file.attrs["nothing"] = h5py.Empty("f4")
    assert encode_attrs(h5file) == {"nothing": None}
    like = h5file.attrs["nothing"]
    assert decode_attr_for_compare(_through_zarr(encode_attrs(h5file))["nothing"], like) == like


def test_reference_attributes_become_paths(h5file):
    target = h5file.create_dataset("grp/data", data=[1])
    h5file.attrs["one"] = target.ref
    h5file.attrs.create("many", [target.ref, h5py.Reference()], dtype=h5py.ref_dtype)
    assert encode_attrs(h5file) == {"one": "/grp/data", "many": ["/grp/data", ""]}


def test_vlen_sequence_attribute_is_a_list_of_lists(h5file):
    rows = np.empty(2, dtype=object)
    rows[0], rows[1] = np.array([1, 2], "i4"), np.array([], "i4")
    h5file.attrs.create("rows", rows, dtype=h5py.vlen_dtype("i4"))
    assert encode_attrs(h5file) == {"rows": [[1, 2], []]}


def test_dimension_scale_bookkeeping_is_dropped(h5file):
    x = h5file.create_dataset("x", data=np.arange(3))
    x.make_scale("x")
    data = h5file.create_dataset("data", data=np.zeros(3))
    data.dims[0].attach_scale(x)
    data.attrs["units"] = "m"
    assert encode_attrs(x) == {}
    assert encode_attrs(data) == {"units": "m"}


def test_class_and_name_on_ordinary_objects_are_kept(h5file):
    image = h5file.create_dataset("image", data=np.zeros((2, 2), "u1"))
    image.attrs["CLASS"] = np.bytes_(b"IMAGE")
    image.attrs["NAME"] = "my picture"
    assert encode_attrs(image) == {"CLASS": "IMAGE", "NAME": "my picture"}


def test_netcdf4_bookkeeping_is_dropped_and_cf_attributes_kept(tmp_path):
    path = tmp_path / "cf.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.title = "test"
        nc.setncattr_string("history", "made by a test")
        nc.createDimension("time", 2)
        time = nc.createVariable("time", "f8", ("time",))
        time.units, time.calendar = "days since 2000-01-01", "standard"
        temp = nc.createVariable("temp", "i2", ("time",), fill_value=np.int16(-999))
        temp.scale_factor, temp.add_offset = np.float32(0.01), np.float32(273.15)
        temp.valid_range = np.array([-500, 500], "i2")
        temp.coordinates = "time"
    with h5py.File(path, "r") as f:
        assert encode_attrs(f) == {"title": "test", "history": "made by a test"}
        assert encode_attrs(f["time"]) == {"units": "days since 2000-01-01", "calendar": "standard"}
        assert encode_attrs(f["temp"]) == {
            "_FillValue": -999,
            "scale_factor": float(np.float32(0.01)),
            "add_offset": float(np.float32(273.15)),
            "valid_range": [-500, 500],
            "coordinates": "time",
        }


def test_reference_without_a_file_is_an_error():
    with pytest.raises(ValueError, match="needs the file"):
        attr_to_json(h5py.Reference())


def test_attribute_h5py_cannot_read_is_skipped_with_a_warning(h5file):
    h5a.create(h5file.id, b"half_complex", h5t.COMPLEX_IEEE_F16LE, h5s.create(h5s.SCALAR))
    h5file.attrs["ok"] = 1
    with pytest.warns(UserWarning, match="half_complex"):
        assert encode_attrs(h5file) == {"ok": 1}
