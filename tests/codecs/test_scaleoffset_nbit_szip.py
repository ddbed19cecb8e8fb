"""scaleoffset, nbit and szip have no exact standard codec: HDF5 decodes them (refindex.hdf5)."""

from __future__ import annotations

import numpy as np
import pytest
from h5py import h5d, h5p, h5s, h5t, h5z
from hdf5_chunks import FLOAT_DTYPES, INTEGER_DTYPES, assert_chunks_exact, ids

from refindex.codecs import UnsupportedCodecError, codecs_for, filters_of


@pytest.mark.parametrize("dtype", INTEGER_DTYPES)
def test_scaleoffset_on_integers_decodes_exactly(make_dataset, dtype):
    dset = make_dataset(dtype, scaleoffset=0)

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f4", ">f8"])
def test_scaleoffset_on_floats_decodes_exactly(make_dataset, dtype):
    data = np.linspace(-50, 50, 23 * 17).reshape(23, 17).astype(dtype)

    dset = make_dataset(data=data, scaleoffset=3)

    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype,fill", [("<i2", -3), (">i4", 7), ("<f8", 7.5), (">f8", -2.25)])
def test_scaleoffset_with_a_fill_value_decodes_fill_elements_exactly(make_dataset, dtype, fill):
    # scaleoffset encodes elements equal to the fill value specially, using the fill value
    # it copied into its cd_values: the replica must carry the same one.
    data = np.arange(23 * 17).reshape(23, 17).astype(dtype)
    data[::3, ::2] = fill

    dset = make_dataset(data=data, scaleoffset=0 if data.dtype.kind == "i" else 2, fillvalue=fill)

    assert_chunks_exact(dset)


def test_scaleoffset_then_deflate_and_fletcher32_maps_the_tail_to_standard_codecs(h5file):
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((8, 5))
    dcpl.set_scaleoffset(h5z.SO_INT, 0)
    dcpl.set_deflate(5)
    dcpl.set_fletcher32()
    h5d.create(h5file.id, b"so", h5t.py_create(np.dtype("<i4")), h5s.create_simple((23, 17)), dcpl)
    dset = h5file["so"]
    dset[...] = np.arange(23 * 17).reshape(23, 17) * 3

    assert ids(dset) == ["refindex.hdf5", "zlib", "fletcher32"]
    assert_chunks_exact(dset)


def _nbit_dataset(h5file, name, base, precision, offset, data):
    file_type = base.copy()
    file_type.set_precision(precision)
    file_type.set_offset(offset)
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((8, 5))
    dcpl.set_filter(5, 0, ())  # nbit
    dcpl.set_deflate(4)
    h5d.create(h5file.id, name.encode(), file_type, h5s.create_simple(data.shape), dcpl)
    dset = h5file[name]
    dset[...] = data
    return dset


@pytest.mark.parametrize(
    "base,precision,offset",
    [
        (h5t.STD_I32LE, 12, 4),
        (h5t.STD_I16BE, 9, 0),
        (h5t.STD_U16LE, 10, 3),
        (h5t.STD_U8LE, 5, 2),
        (h5t.STD_I64LE, 40, 8),
    ],
)
def test_nbit_on_reduced_precision_integers_decodes_to_the_values_h5py_reads(
    h5file, base, precision, offset
):
    signed = base.get_sign() == h5t.SGN_2
    low = -(2 ** (precision - 1)) if signed else 0
    values = np.arange(23 * 17).reshape(23, 17) % (2 ** (precision - 1)) + low

    dset = _nbit_dataset(h5file, "nbit", base, precision, offset, values)

    assert ids(dset) == ["refindex.hdf5", "zlib"]
    assert_chunks_exact(dset)


def test_nbit_on_full_precision_data_decodes_exactly(make_dataset):
    dset = make_dataset("<i4", compression=5)

    assert_chunks_exact(dset)


def test_nbit_on_reduced_precision_floats_is_refused(h5file):
    file_type = h5t.IEEE_F32LE.copy()
    file_type.set_fields(31, 23, 8, 0, 23)
    file_type.set_precision(32)  # full: then shrink the mantissa
    file_type.set_fields(27, 19, 8, 0, 19)
    file_type.set_offset(4)
    file_type.set_precision(28)
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((4,))
    dcpl.set_filter(5, 0, ())
    h5d.create(h5file.id, b"f", file_type, h5s.create_simple((8,)), dcpl)
    dset = h5file["f"]

    with pytest.raises(UnsupportedCodecError, match="filter 5"):
        codecs_for(filters_of(dset.id.get_create_plist()), dset.dtype, dset.chunks)


@pytest.mark.parametrize("dtype", ["<i2", "<u2", ">i4", "<i4", "<u8", "<f4", ">f8"])
@pytest.mark.parametrize("coding", ["nn", "ec"])
def test_szip_decodes_exactly(make_dataset, dtype, coding):
    dset = make_dataset(dtype, compression="szip", compression_opts=(coding, 8))

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES[1:])
def test_shuffle_then_szip_is_one_hdf5_codec(make_dataset, dtype):
    dset = make_dataset(dtype, shuffle=True, compression="szip")

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)


def test_szip_chunks_that_do_not_shrink_are_stored_raw_and_decode_exactly(make_dataset):
    data = np.random.default_rng(6).random((23, 17))
    data[:8] = 0.5  # one row of chunks compresses

    dset = make_dataset(data=data, compression="szip")
    masks = assert_chunks_exact(dset)

    assert 0 in masks and 1 in masks
    assert ids(dset, filter_mask=1) == []
