"""hdf5plugin's filters: standard codecs where proven exact, our own codecs for the framings
no library decodes as stored, HDF5 itself for the rest."""

from __future__ import annotations

import hdf5plugin
import numpy as np
import pytest
from hdf5_chunks import assert_chunks_exact, decode, ids, sample, stored_chunks

from refindex.codecs import codecs_for, filters_of

STANDARD = {
    "blosc-lz4-byteshuffle": (hdf5plugin.Blosc("lz4", 5, hdf5plugin.Blosc.SHUFFLE), "blosc"),
    "blosc-zstd-bitshuffle": (hdf5plugin.Blosc("zstd", 3, hdf5plugin.Blosc.BITSHUFFLE), "blosc"),
    "blosc-blosclz-noshuffle": (
        hdf5plugin.Blosc("blosclz", 9, hdf5plugin.Blosc.NOSHUFFLE),
        "blosc",
    ),
    "blosc-zlib": (hdf5plugin.Blosc("zlib", 5), "blosc"),
    "blosc-lz4hc": (hdf5plugin.Blosc("lz4hc", 5), "blosc"),
    "zstd": (hdf5plugin.Zstd(clevel=5), "zstd"),
    "lz4": (hdf5plugin.LZ4(), "refindex.lz4h5"),
    "lz4-small-blocks": (hdf5plugin.LZ4(nbytes=64), "refindex.lz4h5"),
    "bzip2": (hdf5plugin.BZip2(blocksize=5), "bz2"),
}
FRAMED = {
    "bitshuffle": (hdf5plugin.Bitshuffle(cname="none"), "refindex.bitshuffle_h5"),
    "bitshuffle-lz4": (hdf5plugin.Bitshuffle(cname="lz4"), "refindex.bitshuffle_h5"),
    "bitshuffle-lz4-small-blocks": (
        hdf5plugin.Bitshuffle(nelems=16, cname="lz4"),
        "refindex.bitshuffle_h5",
    ),
    "bitshuffle-zstd": (hdf5plugin.Bitshuffle(cname="zstd", clevel=5), "refindex.bitshuffle_h5"),
    "blosc2": (hdf5plugin.Blosc2(), "refindex.blosc2_h5"),
    "blosc2-zstd-bitshuffle": (
        hdf5plugin.Blosc2("zstd", 5, hdf5plugin.Blosc2.BITSHUFFLE),
        "refindex.blosc2_h5",
    ),
}
ZFP = {
    "zfp-rate": hdf5plugin.Zfp(rate=8),
    "zfp-precision": hdf5plugin.Zfp(precision=12),
    "zfp-accuracy": hdf5plugin.Zfp(accuracy=0.01),
    "zfp-reversible": hdf5plugin.Zfp(reversible=True),
}
LOSSY = {
    "sz": hdf5plugin.SZ(absolute=0.1),
    "sz3": hdf5plugin.SZ3(absolute=0.1),
    "sperr-missing-values": hdf5plugin.Sperr(missing_value_mode=1),
}
SPERR = {
    "default": hdf5plugin.Sperr(),
    "rate": hdf5plugin.Sperr(rate=8),
    "absolute": hdf5plugin.Sperr(absolute=0.01),
    "psnr": hdf5plugin.Sperr(peak_signal_to_noise_ratio=80),
    "swapped": hdf5plugin.Sperr(swap=True),
}
DTYPES = ["u1", "<i2", ">i4", "<u8", "<f4", ">f8", "<f2"]


@pytest.mark.parametrize("name", STANDARD)
@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_with_an_exact_standard_codec_decodes_exactly(make_dataset, name, dtype):
    options, codec_id = STANDARD[name]

    dset = make_dataset(dtype, **options)

    assert ids(dset) == [codec_id]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("name", FRAMED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_filter_with_a_framing_of_its_own_decodes_exactly_without_hdf5(make_dataset, name, dtype):
    options, codec_id = FRAMED[name]

    dset = make_dataset(dtype, **options)

    assert ids(dset) == [codec_id]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("name", ZFP)
@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i4", "<i8"])
@pytest.mark.parametrize("shape", [(100,), (23, 17), (9, 10, 11), (5, 6, 7, 8)], ids=len)
def test_zfp_decodes_exactly_without_hdf5(make_dataset, name, dtype, shape):
    data = np.sin(np.arange(np.prod(shape)) / 9.0).reshape(shape) * 100000
    chunks = tuple(max(1, n // 2 - 1) for n in shape)

    dset = make_dataset(data=data.astype(dtype), chunks=chunks, **ZFP[name])

    assert ids(dset) == ["refindex.zfp_h5"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("name", SPERR)
@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
@pytest.mark.parametrize(
    "shape,chunks",
    [((40, 50), (16, 20)), ((30, 31, 32), (10, 11, 12)), ((2, 20, 30, 40), (1, 10, 12, 13))],
    ids=["2d", "3d", "4d-time-1"],
)
def test_sperr_decodes_exactly_without_hdf5(make_dataset, name, dtype, shape, chunks):
    data = np.sin(np.arange(np.prod(shape)) / 9.0).reshape(shape) * 100

    dset = make_dataset(data=data.astype(dtype), chunks=chunks, **SPERR[name])

    assert ids(dset) == ["refindex.sperr_h5"]
    assert_chunks_exact(dset)


def test_sperr_with_missing_values_decodes_through_hdf5(make_dataset):
    data = (np.sin(np.arange(40 * 50) / 9.0).reshape(40, 50) * 100).astype("<f4")
    data[3, 4] = data[20, 30] = np.nan

    dset = make_dataset(data=data, chunks=(16, 20), **hdf5plugin.Sperr(missing_value_mode=1))

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", DTYPES)
def test_blosc_with_snappy_decodes_without_hdf5(make_dataset, dtype):
    # hdf5plugin's c-blosc cannot compress with Snappy (it stores chunks raw, masked), so the
    # chunks are Blosc chunks other writers (PyTables) store, written directly.
    imagecodecs = pytest.importorskip("imagecodecs")
    data = sample(dtype, (16, 10))
    dset = make_dataset(dtype, shape=(16, 10), chunks=(8, 10), **hdf5plugin.Blosc("snappy", 5))
    for row in (0, 8):
        chunk = np.ascontiguousarray(data[row : row + 8])
        stored = imagecodecs.blosc_encode(
            chunk.tobytes(), compressor="snappy", typesize=chunk.itemsize, shuffle=1
        )
        dset.id.write_direct_chunk((row, 0), stored, 0)

    configs = codecs_for(filters_of(dset.id.get_create_plist()), dset.dtype, dset.chunks)

    assert [c["id"] for c in configs] == ["refindex.blosc_h5"]
    for offset, _, raw in stored_chunks(dset):
        expected = data[offset[0] : offset[0] + 8].tobytes()
        assert decode(configs, raw) == expected


@pytest.mark.parametrize("name", LOSSY)
@pytest.mark.parametrize("dtype", ["<f4", ">f8"])
def test_lossy_float_filter_decodes_to_exactly_what_hdf5_reads(make_dataset, name, dtype):
    data = np.sin(np.arange(23 * 17) / 9.0).reshape(23, 17).astype(dtype) * 100

    dset = make_dataset(data=data, chunks=(8, 6), **LOSSY[name])

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)


@pytest.mark.parametrize("dtype", ["u1", "i1", "<u2", ">u2", "<i2"])
@pytest.mark.parametrize("noise", [False, True], ids=["smooth", "noise"])
def test_fcidecomp_on_2d_chunks_decodes_exactly_without_hdf5(make_dataset, dtype, noise):
    # Noise leaves some chunks uncompressed (an optional filter): both kinds decode.
    rng = np.random.default_rng(1)
    values = rng.integers(0, 250, (40, 36)) if noise else np.arange(40 * 36).reshape(40, 36) % 251

    dset = make_dataset(data=values.astype(dtype), chunks=(16, 13), **hdf5plugin.FciDecomp())

    assert ids(dset) == ["refindex.jpegls_h5"]
    assert_chunks_exact(dset)


def test_fcidecomp_on_3d_chunks_decodes_through_hdf5(make_dataset):
    data = (np.arange(3 * 40 * 36).reshape(3, 40, 36) % 251).astype("<u2")

    dset = make_dataset(data=data, chunks=(3, 16, 16), **hdf5plugin.FciDecomp())

    assert ids(dset) == ["refindex.hdf5"]
    assert_chunks_exact(dset)


def test_shuffle_then_bitshuffle_then_fletcher32_needs_no_hdf5(make_dataset):
    dset = make_dataset("<f4", shuffle=True, fletcher32=True, **hdf5plugin.Bitshuffle())

    assert ids(dset) == ["shuffle", "refindex.bitshuffle_h5", "fletcher32"]
    assert_chunks_exact(dset)


def test_shuffle_then_plugin_then_fletcher32_keeps_standard_codecs_after_hdf5(make_dataset):
    dset = make_dataset("<f4", shuffle=True, fletcher32=True, **hdf5plugin.SZ(absolute=0.1))

    assert ids(dset) == ["refindex.hdf5", "fletcher32"]
    assert_chunks_exact(dset)
