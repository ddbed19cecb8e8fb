"""zarr-python 3.1 reads the Zarr v2 dtypes refindex registers: nested records, vlen-array,
long double, records with object fields and object arrays of the refindex.objects codec."""

from __future__ import annotations

import base64
import json

import numcodecs
import numpy as np
import pytest
import zarr
from types_roundtrip import write_store
from zarr.core.dtype import Structured, data_type_registry

from refindex.dtype_json import dtype_from_v2_json, dtype_to_v2_json
from refindex.store.zarr_dtypes import NestedStructured, VariableLengthArray, register


def _open(dtype, chunks: dict[str, bytes], shape=(4,), chunk=(2,), fill=None, filters=None):
    meta = {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunk),
        "dtype": dtype,
        "compressor": None,
        "fill_value": fill,
        "order": "C",
        "filters": filters,
    }
    entries = {".zgroup": b'{"zarr_format": 2}', "a/.zarray": json.dumps(meta).encode()}
    entries.update({f"a/{key}": value for key, value in chunks.items()})
    return zarr.open_group(write_store(entries), mode="r", zarr_format=2)["a"]


def _records(dtype: np.dtype, count: int) -> np.ndarray:
    return (np.arange(count * dtype.itemsize) % 253).astype("u1").view(dtype)


@pytest.mark.parametrize(
    "spec",
    [
        [["a", "<i4"], ["b", "<f8", [2]]],
        [["a", "<i4"], ["b", [["x", "<f4"], ["y", ">i2"]]]],
        [["a", "<i4"], ["b", [["x", "<f4"], ["y", ">f8", [2]]], [3]], ["c", "|S3", [2, 2]]],
    ],
    ids=["subarray-field", "nested-record", "nested-subarrays"],
)
def test_nested_structured_dtypes_read_bit_for_bit(spec):
    register()
    dtype = dtype_from_v2_json(spec)
    data = _records(dtype, 4)
    array = _open(spec, {"0": data[:2].tobytes(), "1": data[2:].tobytes()})
    assert isinstance(array.metadata.dtype, NestedStructured)
    assert array[...].dtype == dtype and array[...].tobytes() == data.tobytes()


def test_nested_structured_fill_value_is_base64_of_the_record():
    register()
    spec = [["a", "<i4"], ["b", "<f8", [2]]]
    dtype = dtype_from_v2_json(spec)
    fill = np.array((-1, [np.nan, 2.5]), dtype=dtype)
    array = _open(spec, {}, fill=base64.b64encode(fill.tobytes()).decode())
    assert array[...].tobytes() == np.full(4, fill, dtype=dtype).tobytes()


def test_flat_structured_dtypes_still_use_zarrs_own_type():
    register()
    array = _open([["a", "<i4"], ["b", ">f8"]], {})
    assert type(array.metadata.dtype) is Structured
    assert type(data_type_registry.match_dtype(np.dtype([("a", "<i4")]))) is Structured


def test_v2_json_of_a_nested_dtype_round_trips():
    spec = [["a", "<i4"], ["b", [["x", "<f4"], ["y", ">f8", [2]]]], ["c", "<u2", [2, 3]]]
    assert dtype_to_v2_json(dtype_from_v2_json(spec)) == spec


def test_padded_records_have_no_v2_json():
    padded = np.dtype({"names": ["a"], "formats": ["<i2"], "offsets": [2], "itemsize": 8})
    with pytest.raises(ValueError, match="padding"):
        dtype_to_v2_json(padded)


def test_vlen_array_reads_ragged_sequences():
    register()
    codec = numcodecs.VLenArray("<i4")
    rows = np.empty(2, dtype=object)
    rows[0], rows[1] = np.array([1, 2, 3], "<i4"), np.array([], "<i4")
    array = _open("|O", {"0": codec.encode(rows)}, filters=[codec.get_config()])
    assert isinstance(array.metadata.dtype, VariableLengthArray)
    values = array[...]
    assert [list(v) for v in values[:2]] == [[1, 2, 3], []] and values[0].dtype == "<i4"


def test_vlen_array_absent_chunks_read_as_none():
    register()
    codec = numcodecs.VLenArray("<f8")
    array = _open("|O", {}, filters=[codec.get_config()])
    assert list(array[...]) == [None] * 4


def test_vlen_array_rejects_a_non_null_fill_value():
    register()
    with pytest.raises(TypeError, match="must be None"):
        _open("|O", {}, fill=[1], filters=[numcodecs.VLenArray("<f8").get_config()])


def test_register_is_idempotent():
    register()
    before = dict(data_type_registry.contents)
    register()
    assert data_type_registry.contents == before
    assert data_type_registry.get("refindex.vlen_array") is VariableLengthArray


def test_numpy_dtype_inference_is_left_to_zarr():
    register()
    nested = np.dtype([("a", "<i4"), ("b", "<f8", (2,))])
    assert type(data_type_registry.match_dtype(nested)) is Structured


def test_nested_structured_arrays_can_be_written_when_chosen_explicitly():
    register()
    dtype = dtype_from_v2_json([["a", "<i4"], ["b", [["x", "<f4"]], [2]]])
    store = zarr.storage.MemoryStore()
    array = zarr.create_array(
        store,
        shape=(3,),
        chunks=(2,),
        dtype=NestedStructured(dtype=dtype),
        zarr_format=2,
        compressors=None,
        fill_value=None,
    )
    data = _records(dtype, 3)
    array[...] = data
    reopened = zarr.open_array(store, mode="r", zarr_format=2)
    assert reopened[...].tobytes() == data.tobytes()


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64")
def test_long_double_reads_bit_for_bit_padding_included():
    register()
    values = np.frombuffer(bytes(range(64)), dtype=np.longdouble)
    array = _open(np.dtype(np.longdouble).str, {"0": values[:2].tobytes(),
                                                "1": values[2:].tobytes()}, fill=-1.5)
    assert array.dtype == np.longdouble
    assert array[...].tobytes() == values.tobytes()
    assert array.fill_value == np.longdouble(-1.5)


def test_records_with_object_fields_read_through_the_objects_codec():
    from refindex.codecs.objects import ObjectsCodec
    from refindex.store.zarr_object_dtypes import ObjectStructured

    register()
    dtype = np.dtype([("a", "<i4"), ("s", "O"), ("n", [("t", "O"), ("x", "<f8")])])
    values = np.empty(2, dtype=dtype)
    values[0] = (1, b"ab", ("x", 0.5))
    values[1] = (2, b"", ("", -1.0))
    spec = [["a", "<i4"], ["s", "|O"], ["n", [["t", "|O"], ["x", "<f8"]]]]
    array = _open(spec, {"0": ObjectsCodec().encode(values)}, shape=(2,), chunk=(2,),
                  filters=[ObjectsCodec().get_config()])
    assert array.metadata.dtype == ObjectStructured(dtype=dtype)
    assert array[...].tolist() == values.tolist()


def test_object_arrays_of_an_unnamed_codec_read_through_it():
    from refindex.codecs.objects import ObjectsCodec
    from refindex.store.zarr_object_dtypes import ObjectArray

    register()
    values = np.empty(2, dtype=object)
    values[0], values[1] = np.array([b"a", b"bcd"], "S3"), np.array([[1, 2]], ">u2")
    array = _open("|O", {"0": ObjectsCodec().encode(values)}, shape=(2,), chunk=(2,),
                  filters=[ObjectsCodec().get_config()])
    assert array.metadata.dtype == ObjectArray()
    got = array[...]
    assert got[0].tobytes() == values[0].tobytes() and got[1].dtype == np.dtype(">u2")
    assert got[1].tolist() == [[1, 2]]
