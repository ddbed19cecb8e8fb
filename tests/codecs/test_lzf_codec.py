"""h5py's optional LZF filter: compressed chunks decode with refindex.lzf, skipped ones raw."""

from __future__ import annotations

import numcodecs
import numpy as np
import pytest
from hdf5_chunks import FLOAT_DTYPES, INTEGER_DTYPES, assert_chunks_exact, ids, stored_chunks

from refindex.codecs import LzfCodec, codecs_for, filters_of
from refindex.errors import RefindexError


@pytest.mark.parametrize("dtype", INTEGER_DTYPES + FLOAT_DTYPES)
def test_lzf_decodes_exactly(make_dataset, dtype):
    dset = make_dataset(dtype, compression="lzf")

    assert ids(dset) == ["refindex.lzf"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", ["<i2", ">f8"])
def test_shuffle_lzf_decodes_exactly(make_dataset, dtype):
    dset = make_dataset(dtype, shuffle=True, compression="lzf")

    assert ids(dset) == ["shuffle", "refindex.lzf"]
    assert_chunks_exact(dset)


def test_incompressible_chunks_are_stored_raw_with_the_filter_masked(make_dataset):
    data = np.random.default_rng(3).integers(0, 2**32, (23, 17), dtype="<u4")
    data[:8] = 7  # the first row of chunks compresses, the rest do not

    dset = make_dataset(data=data, compression="lzf", shuffle=True)
    masks = assert_chunks_exact(dset)

    assert 0 in masks and 0b10 in masks  # lzf is the second filter
    assert ids(dset, filter_mask=0b10) == ["shuffle"]


def test_masked_lzf_chunk_is_as_long_as_the_decoded_chunk(make_dataset):
    data = np.random.default_rng(4).integers(0, 256, (48,), dtype="u1")

    dset = make_dataset(data=data, chunks=(16,), compression="lzf")

    for _, mask, raw in stored_chunks(dset):
        assert mask == 1 and len(raw) == 16


def test_a_compressed_lzf_chunk_can_be_as_long_as_the_decoded_chunk(make_dataset):
    # So the stored length cannot tell a raw chunk from an LZF one: only the mask can.
    rng = np.random.default_rng(0)
    for _ in range(3000):
        data = rng.integers(0, 256, 64, dtype="u1")
        repeat, start = rng.integers(3, 12), rng.integers(0, 40)
        data[start + repeat : start + 2 * repeat] = data[start : start + repeat]
        dset = make_dataset(data=data, chunks=(64,), compression="lzf")
        ((_, mask, raw),) = stored_chunks(dset)
        if mask == 0 and len(raw) == 64:
            break
    else:
        pytest.fail("no LZF chunk of exactly the decoded size found")

    assert raw != data.tobytes()
    assert ids(dset) == ["refindex.lzf"]
    assert_chunks_exact(dset)


def test_lzf_codec_round_trips_incompressible_data():
    codec = LzfCodec(size=1000)
    data = np.random.default_rng(5).integers(0, 256, 1000, dtype="u1")

    encoded = codec.encode(data)

    assert len(encoded) > 1000  # LZF expands it; the codec does not give up
    assert codec.decode(encoded).tobytes() == data.tobytes()


def test_lzf_codec_refuses_a_chunk_of_the_wrong_decoded_size(make_dataset):
    dset = make_dataset("<i4", compression="lzf")
    _, _, raw = next(stored_chunks(dset))

    with pytest.raises(RefindexError, match="expected"):
        LzfCodec(size=dset.dtype.itemsize * 8 * 5 + 4).decode(raw)


def test_lzf_config_names_the_decoded_chunk_size_in_bytes(make_dataset):
    dset = make_dataset("<f8", compression="lzf")

    (config,) = codecs_for(filters_of(dset.id.get_create_plist()), dset.dtype, dset.chunks)

    assert config == {"id": "refindex.lzf", "size": 8 * 8 * 5}
    assert isinstance(numcodecs.get_codec(config), LzfCodec)
