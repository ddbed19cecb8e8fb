"""deflate, shuffle and fletcher32 map to standard numcodecs codecs that decode exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hdf5_chunks import FLOAT_DTYPES, INTEGER_DTYPES, assert_chunks_exact, ids

ALL_DTYPES = INTEGER_DTYPES + FLOAT_DTYPES


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_deflate_decodes_exactly_with_zlib(make_dataset, dtype):
    dset = make_dataset(dtype, compression="gzip", compression_opts=9)

    assert ids(dset) == ["zlib"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_shuffle_deflate_decodes_exactly(make_dataset, dtype):
    dset = make_dataset(dtype, shuffle=True, compression="gzip")

    assert ids(dset) == ["shuffle", "zlib"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_shuffle_deflate_fletcher32_decodes_exactly(make_dataset, dtype):
    dset = make_dataset(dtype, shuffle=True, compression="gzip", fletcher32=True)

    assert ids(dset) == ["shuffle", "zlib", "fletcher32"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("length", [1, 5, 7, 13])
def test_fletcher32_matches_hdf5_on_odd_byte_lengths(make_dataset, length):
    dset = make_dataset("i1", shape=(length * 2 + 1,), chunks=(length,), fletcher32=True)

    assert ids(dset) == ["fletcher32"]
    assert_chunks_exact(dset)


def test_fletcher32_rejects_a_corrupt_chunk(make_dataset):
    from hdf5_chunks import decode, stored_chunks

    from refindex.codecs import codecs_for, filters_of

    dset = make_dataset("<i4", fletcher32=True)
    _, _, raw = next(stored_chunks(dset))
    configs = codecs_for(filters_of(dset.id.get_create_plist()), dset.dtype, dset.chunks)
    corrupt = bytes([raw[0] ^ 1]) + raw[1:]

    with pytest.raises(RuntimeError, match="fletcher32"):
        decode(configs, corrupt)


def test_shuffle_uses_the_whole_compound_element(make_dataset):
    dtype = np.dtype([("a", "<i2"), ("b", ">f8"), ("c", "S3")])
    data = np.zeros((23, 17), dtype)
    data["a"] = np.arange(23 * 17).reshape(23, 17)
    data["b"] = np.linspace(-1, 1, 23 * 17).reshape(23, 17)
    data["c"] = b"xyz"

    dset = make_dataset(data=data, shuffle=True, compression="gzip")

    assert_chunks_exact(dset)


def test_shuffle_of_fixed_length_strings_uses_the_string_length(make_dataset):
    data = np.array([f"s{i:05d}x" for i in range(23 * 17)], dtype="S7").reshape(23, 17)

    dset = make_dataset(data=data, shuffle=True, compression="gzip", fletcher32=True)

    assert ids(dset) == ["shuffle", "zlib", "fletcher32"]
    assert_chunks_exact(dset)


def test_shuffle_after_a_length_changing_filter_is_decoded_by_hdf5(h5file):
    from h5py import h5d, h5p, h5s, h5t

    # deflate first, then shuffle: shuffle's input is no longer whole elements, and HDF5
    # copies a trailing partial element where numcodecs would refuse.
    dcpl = h5p.create(h5p.DATASET_CREATE)
    dcpl.set_chunk((8, 5))
    dcpl.set_deflate(6)
    dcpl.set_shuffle()
    dsid = h5d.create(
        h5file.id, b"odd", h5t.py_create(np.dtype("<f8")), h5s.create_simple((23, 17)), dcpl=dcpl
    )
    dset = h5file["odd"]
    dset[...] = np.arange(23 * 17).reshape(23, 17) / 7
    del dsid

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)
