"""Values that live outside the chunks (sequences, references) are inlined as zarr reads them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from types_roundtrip import read_through_zarr

from refindex.scan.hdf5.types import encode_inline, plan_type


# h5py hands sequences out in native byte order, so ">i2" comes back as "<i2" (on x86).
@pytest.mark.parametrize("element", ["<i4", ">i2", "<f8", "|u1"])
def test_vlen_sequences_become_vlen_array(h5file, element):
    rows = [np.arange(n, dtype=element) for n in (3, 0, 1, 5, 2)]
    dset = h5file.create_dataset("x", shape=(5,), dtype=h5py.vlen_dtype(element), chunks=(2,))
    for i, row in enumerate(rows):
        dset[i] = row
    plan, values = read_through_zarr(dset)
    native = np.dtype(element).newbyteorder("=").str
    assert (plan.zarr_dtype, plan.object_codec) == ("|O", {"id": "vlen-array", "dtype": native})
    for got, expected in zip(values, dset[...], strict=True):
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()


def test_object_references_become_target_paths(h5file):
    h5file.create_group("grp/sub")
    target = h5file.create_dataset("grp/data", data=[1, 2])
    dset = h5file.create_dataset("x", shape=(4,), dtype=h5py.ref_dtype, chunks=(3,))
    dset[0], dset[1], dset[3] = target.ref, h5file["grp/sub"].ref, h5file.ref
    plan, values = read_through_zarr(dset)
    assert (plan.zarr_dtype, plan.object_codec) == ("|O", {"id": "vlen-utf8"})
    expected = [h5file[r].name if r else "" for r in dset[...]]
    assert list(values) == expected == ["/grp/data", "/grp/sub", "", "/"]


def test_region_references_become_the_dataset_path(h5file):
    target = h5file.create_dataset("data", data=np.arange(10))
    dset = h5file.create_dataset("x", shape=(2,), dtype=h5py.regionref_dtype, chunks=(2,))
    dset[0] = target.regionref[2:5]
    plan, values = read_through_zarr(dset)
    assert plan.object_codec == {"id": "vlen-utf8"} and "region" in plan.note
    assert list(values) == ["/data", ""]


def test_scalar_datasets_inline_their_one_value(h5file):
    text = h5file.create_dataset("text", data="née", dtype=h5py.string_dtype())
    seq = h5file.create_dataset("seq", shape=(), dtype=h5py.vlen_dtype("<i2"))
    seq[()] = np.array([4, 5], "<i2")
    ref = h5file.create_dataset("ref", data=text.ref, dtype=h5py.ref_dtype)
    assert encode_inline(text[()], plan_type(text))[()] == "née"
    assert list(encode_inline(seq[()], plan_type(seq))[()]) == [4, 5]
    assert encode_inline(ref[()], plan_type(ref))[()] == "/text"
