"""Fixed-length strings are referenced when HDF5 reads their bytes unchanged; vlen are inlined."""

from __future__ import annotations

import h5py
import numpy as np
from h5py import h5d, h5p, h5s, h5t
from types_roundtrip import assert_same_bits, read_through_zarr


def _fixed_strings(f: h5py.File, size: int, pad: int, cset: int, raw: bytes) -> h5py.Dataset:
    file_type = h5t.C_S1.copy()
    file_type.set_size(size)
    file_type.set_strpad(pad)
    file_type.set_cset(cset)
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((2,))
    count = len(raw) // size
    dsid = h5d.create(f.id, b"x", file_type, h5s.create_simple((count,)), dcpl=dcpl)
    # Written with the file type as memory type, so HDF5 stores the bytes exactly as given.
    dsid.write(h5s.ALL, h5s.ALL, np.frombuffer(raw, dtype=f"S{size}"), mtype=file_type)
    return f["x"]


def test_h5py_fixed_ascii_strings_are_referenced_as_S(h5file):
    data = np.array([b"abcde", b"ab", b"", b"xyz"], dtype="S5")
    dset = h5file.create_dataset("x", data=data, chunks=(3,))
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == "|S5" and plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_fixed_utf8_strings_keep_their_encoded_bytes(h5file):
    text = ["née", "°C", "ab", "ü"]
    raw = b"".join(t.encode().ljust(5, b"\0") for t in text)
    dset = _fixed_strings(h5file, 5, h5t.STR_NULLPAD, h5t.CSET_UTF8, raw)
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == "|S5" and plan.referencable
    assert_same_bits(values, dset[...], plan)
    assert [v.decode() for v in values] == text


def test_nul_padded_strings_with_inner_nuls_are_referenced(h5file):
    dset = _fixed_strings(h5file, 5, h5t.STR_NULLPAD, h5t.CSET_ASCII, b"ab\0xyabcde")
    plan, values = read_through_zarr(dset)
    assert plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_nul_terminated_strings_are_inlined_as_hdf5_reads_them(h5file):
    # HDF5 drops the bytes after the terminator ("xy") when reading, so the stored bytes lie.
    dset = _fixed_strings(h5file, 5, h5t.STR_NULLTERM, h5t.CSET_ASCII, b"ab\0xyabcde")
    plan, values = read_through_zarr(dset)
    assert not plan.referencable and "NUL" in plan.note
    assert_same_bits(values, dset[...], plan)
    assert list(values) == [b"ab", b"abcde"]


def test_single_character_nul_terminated_strings_are_referenced(h5file):
    # netCDF char variables: one byte each, nothing can follow a terminator.
    dset = _fixed_strings(h5file, 1, h5t.STR_NULLTERM, h5t.CSET_ASCII, b"a\0bc")
    plan, values = read_through_zarr(dset)
    assert plan.zarr_dtype == "|S1" and plan.referencable
    assert_same_bits(values, dset[...], plan)


def test_space_padded_strings_are_inlined_without_the_spaces(h5file):
    dset = _fixed_strings(h5file, 4, h5t.STR_SPACEPAD, h5t.CSET_ASCII, b"ab  abcd")
    plan, values = read_through_zarr(dset)
    assert not plan.referencable and "space" in plan.note
    assert_same_bits(values, dset[...], plan)
    assert list(values) == [b"ab", b"abcd"]


def test_vlen_utf8_strings_are_inlined_as_str(h5file):
    text = ["née", "", "°C", "a longer string", "x"]
    dset = h5file.create_dataset("x", data=text, dtype=h5py.string_dtype("utf-8"), chunks=(2,))
    plan, values = read_through_zarr(dset)
    assert (plan.zarr_dtype, plan.object_codec) == ("|O", {"id": "vlen-utf8"})
    assert not plan.referencable
    assert list(values) == list(dset.asstr()[...]) == text


def test_vlen_ascii_strings_are_inlined_as_exact_bytes(h5file):
    raw = [b"abc", b"", b"\xff\xfe not utf-8", b"z"]
    dset = h5file.create_dataset("x", data=raw, dtype=h5py.string_dtype("ascii"), chunks=(3,))
    plan, values = read_through_zarr(dset)
    assert (plan.zarr_dtype, plan.object_codec) == ("|O", {"id": "vlen-bytes"})
    assert list(values) == list(dset[...]) == raw


def test_two_dimensional_vlen_strings_keep_their_shape(h5file):
    text = np.array([["a", "bb", "ccc"], ["dddd", "", "é"]], dtype=object)
    dset = h5file.create_dataset("x", data=text, dtype=h5py.string_dtype(), chunks=(1, 2))
    _, values = read_through_zarr(dset)
    assert values.shape == (2, 3)
    assert values.tolist() == dset.asstr()[...].tolist()
