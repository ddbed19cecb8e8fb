"""Variable-length data nested in other types (compounds with vlen members, sequences of
records, strings or sequences, arrays of vlen strings): inlined through the refindex.objects
codec, read back through zarr exactly as h5py reads them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from types_roundtrip import read_through_zarr

from refindex.codecs.objects import ObjectsCodec
from refindex.errors import RefindexError
from refindex.scan.hdf5.type_layout import ValueKind, packed

STRING = h5py.string_dtype()
ASCII = h5py.string_dtype("ascii")


def assert_same_objects(from_zarr, from_h5py) -> None:
    """Equal dtype (record padding aside), shape and values, element by element and down into
    nested arrays: bytes stay bytes, str stays str, numbers compare by their bytes."""
    expected, actual = np.asarray(from_h5py), np.asarray(from_zarr)
    expected = expected.astype(packed(expected.dtype))
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if not expected.dtype.hasobject:
        assert actual.tobytes() == expected.tobytes()
    elif expected.dtype.fields is not None:
        for name in expected.dtype.names:
            assert_same_objects(actual[name], expected[name])
    else:
        for got, want in zip(actual.reshape(-1), expected.reshape(-1), strict=True):
            assert type(got) is type(want)
            if isinstance(want, np.ndarray):
                assert_same_objects(got, want)
            else:
                assert got == want


def test_compound_with_vlen_string_member_is_inlined(h5file):
    dtype = np.dtype([("a", "<i4"), ("s", STRING)])
    data = np.array([(1, "ab"), (2, "cdé"), (3, "")], dtype=dtype)
    dset = h5file.create_dataset("x", data=data, chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert plan.kind is ValueKind.OBJECTS and not plan.referencable
    assert plan.zarr_dtype == [["a", "<i4"], ["s", "|O"]]
    assert plan.object_codec == {"id": "refindex.objects"}
    assert_same_objects(values, dset[...])


def test_nested_compound_with_vlen_members_and_padding_is_inlined(h5file):
    inner = np.dtype({"names": ["t", "seq"], "formats": [ASCII, h5py.vlen_dtype("<f4")],
                      "offsets": [0, 24], "itemsize": 48})
    dtype = np.dtype([("id", ">u2"), ("inner", inner), ("xy", "<f8", (2,))])
    dset = h5file.create_dataset("x", shape=(2,), dtype=dtype)
    dset[0] = (7, (b"north", np.array([1.5, -2], "f4")), (0.5, 1.5))
    dset[1] = (8, (b"", np.array([], "f4")), (2.5, 3.5))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype[1] == ["inner", [["t", "|O"], ["seq", "|O"]]]
    assert_same_objects(values, dset[...])


def test_scalar_compound_with_vlen_member_is_inlined(h5file):
    dtype = np.dtype([("a", "<i4"), ("s", STRING)])
    dset = h5file.create_dataset("x", data=np.array((5, "only"), dtype=dtype))
    plan, values = read_through_zarr(dset)
    assert values.shape == () and plan.kind is ValueKind.OBJECTS
    assert_same_objects(values, dset[()])


def test_vlen_sequence_of_fixed_strings_is_a_vlen_array(h5file):
    dset = h5file.create_dataset("x", shape=(3,), dtype=h5py.vlen_dtype(np.dtype("S5")))
    dset[0] = np.array([b"ab", b"cdefg"], dtype="S5")
    dset[1] = np.array([b"x"], dtype="S5")
    plan, values = read_through_zarr(dset)
    assert plan.kind is ValueKind.SEQUENCE
    assert plan.object_codec == {"id": "vlen-array", "dtype": "|S5"}
    assert_same_objects(values, dset[...])


def test_vlen_sequence_of_padded_records_is_inlined(h5file):
    record = np.dtype({"names": ["x", "y"], "formats": ["<i2", "<f8"], "offsets": [0, 8],
                       "itemsize": 16})
    dset = h5file.create_dataset("x", shape=(2,), dtype=h5py.vlen_dtype(record))
    dset[0] = np.array([(1, 2.5), (3, 4.5)], dtype=record)
    dset[1] = np.array([(5, np.nan)], dtype=record)
    plan, values = read_through_zarr(dset)
    assert plan.kind is ValueKind.OBJECTS and plan.zarr_dtype == "|O"
    assert_same_objects(values, dset[...])


def test_vlen_sequence_of_vlen_sequences_is_inlined(h5file):
    # h5py cannot write sequences of sequences (no conversion path), only read them: the
    # elements never written read as empty sequences.
    outer = h5py.h5t.vlen_create(h5py.h5t.vlen_create(h5py.h5t.STD_I32LE))
    h5py.h5d.create(h5file.id, b"x", outer, h5py.h5s.create_simple((2,)))
    plan, values = read_through_zarr(h5file["x"])
    assert plan.kind is ValueKind.OBJECTS
    assert_same_objects(values, h5file["x"][...])


def test_vlen_sequence_of_vlen_strings_is_inlined(h5file):
    dset = h5file.create_dataset("x", shape=(2,), dtype=h5py.vlen_dtype(STRING))
    dset[0] = np.array(["a", "bé"], dtype=object)
    dset[1] = np.array([], dtype=object)
    plan, values = read_through_zarr(dset)
    assert_same_objects(values, dset[...])


def test_array_of_vlen_strings_becomes_trailing_dimensions(h5file):
    tid = h5py.h5t.array_create(h5py.h5t.py_create(STRING, logical=True), (2,))
    h5py.h5d.create(h5file.id, b"x", tid, h5py.h5s.create_simple((3,)))
    dset = h5file["x"]
    dset[...] = np.array([["a", "b"], ["c", ""], ["dé", "e"]], dtype=object)
    plan, values = read_through_zarr(dset)
    assert plan.inner_shape == (2,) and values.shape == (3, 2)
    assert_same_objects(values, dset[...])


def test_objects_codec_round_trips_every_element_kind():
    values = np.empty(5, dtype=object)
    values[:] = [b"raw", "text é", None, np.arange(3, dtype=">i2"),
                 np.array([(1, b"a")], dtype=[("n", "<u8"), ("s", "O")])]
    codec = ObjectsCodec()
    decoded = codec.decode(codec.encode(values))
    assert_same_objects(decoded, values)


@pytest.mark.parametrize("damage", [lambda b: b[:-1], lambda b: b + b"\0",
                                    lambda b: b[:4] + b"[" + b[5:]])
def test_objects_codec_refuses_damaged_bytes(damage):
    values = np.array([b"abc", b"de"], dtype=object)
    encoded = ObjectsCodec().encode(values)
    with pytest.raises(RefindexError, match="refindex.objects"):
        ObjectsCodec().decode(damage(encoded))
