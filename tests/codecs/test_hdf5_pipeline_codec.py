"""The refindex.* codecs: registered by id, JSON-able, picklable, thread-safe, fast, round-trip."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import hdf5plugin
import numcodecs
import numpy as np
import pytest
from hdf5_chunks import decode, stored_chunks

from refindex.codecs import (
    FilterSpec,
    Hdf5PipelineCodec,
    Lz4H5Codec,
    LzfCodec,
    UnsupportedCodecError,
    codecs_for,
    filters_of,
)
from refindex.errors import RefindexError


def _generic(dset) -> Hdf5PipelineCodec:
    """The generic codec for the dataset's whole pipeline, even where ``codecs_for`` would pick
    codecs that need no HDF5 (bitshuffle, blosc2): it must stay exact for every filter."""
    filters = filters_of(dset.id.get_create_plist())
    config = Hdf5PipelineCodec.for_pipeline(dset.dtype, dset.chunks, filters).get_config()
    return numcodecs.get_codec(json.loads(json.dumps(config)))


@pytest.mark.parametrize("codec_id", ["refindex.hdf5", "refindex.lzf", "refindex.lz4h5"])
def test_codec_ids_resolve_in_a_fresh_interpreter_through_entry_points(codec_id):
    # No refindex import: numcodecs must find the codec through the installed entry points.
    config = {
        "refindex.hdf5": {
            "dtype": "<i2",
            "chunks": [4],
            "filters": [{"id": 1, "flags": 0, "cd_values": [6]}],
        },
        "refindex.lzf": {"size": 8},
        "refindex.lz4h5": {"blocksize": None},
    }[codec_id]
    script = (
        "import json, sys, numcodecs\n"
        f"codec = numcodecs.get_codec(dict(id={codec_id!r}, **json.loads(sys.argv[1])))\n"
        "print(type(codec).__module__)\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refindex.codecs.")


def test_every_refindex_codec_is_declared_as_an_entry_point():
    # What the fresh-interpreter test above checks for the installed package, for every
    # codec: a reader with refindex installed (but not imported) resolves each id.
    import tomllib
    from pathlib import Path

    import refindex.codecs  # noqa: F401  (registers the codecs)

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["numcodecs.codecs"]
    registered = {
        codec_id: f"{cls.__module__}:{cls.__name__}"
        for codec_id, cls in numcodecs.registry.codec_registry.items()
        if codec_id.startswith("refindex.")
    }

    assert registered.items() <= declared.items()


def test_config_survives_json_for_a_compound_dtype(make_dataset):
    dtype = np.dtype(
        {"names": ["a", "b"], "formats": ["<i2", ">f8"], "offsets": [0, 4], "itemsize": 16}
    )
    data = np.zeros((23, 17), dtype)
    data["a"] = np.arange(23 * 17).reshape(23, 17)
    data["b"] = -data["a"] / 3
    dset = make_dataset(data=data, **hdf5plugin.Bitshuffle())
    codec = _generic(dset)

    again = numcodecs.get_codec(json.loads(json.dumps(codec.get_config())))

    _, _, raw = next(stored_chunks(dset))
    assert again == codec
    assert again.decode(raw).tobytes() == codec.decode(raw).tobytes()


def test_generic_codec_pickles_without_its_hdf5_handles(make_dataset):
    dset = make_dataset("<i4", scaleoffset=0)
    codec = _generic(dset)
    _, _, raw = next(stored_chunks(dset))
    expected = codec.decode(raw)  # builds this thread's replica first

    clone = pickle.loads(pickle.dumps(codec))

    assert clone == codec
    assert clone.decode(raw).tobytes() == expected.tobytes()


@pytest.mark.parametrize(
    "options",
    [
        {"scaleoffset": 0},
        {"compression": "szip"},
        {"shuffle": True, "compression": "gzip", "fletcher32": True, "scaleoffset": 0},
        dict(hdf5plugin.Bitshuffle(cname="lz4")),
        dict(hdf5plugin.Blosc2()),
    ],
    ids=["scaleoffset", "szip", "scaleoffset-shuffle-deflate", "bitshuffle-lz4", "blosc2"],
)
def test_generic_codec_encode_then_decode_round_trips_a_chunk(make_dataset, options):
    if "fletcher32" in options:
        options = {k: v for k, v in options.items() if k != "fletcher32"}
    dset = make_dataset("<i4", **options)
    codec = _generic(dset)
    chunk = (np.arange(40, dtype="<i4") * 7 - 100).reshape(8, 5)

    encoded = codec.encode(chunk)

    assert codec.decode(encoded).tobytes() == chunk.tobytes()


def test_generic_codec_encodes_what_hdf5_stores(make_dataset):
    dset = make_dataset("<i2", compression="szip")
    codec = _generic(dset)

    encoded = codec.encode(dset[0:8, 0:5])

    assert encoded == dset.id.read_direct_chunk((0, 0))[1]


@pytest.mark.parametrize(
    "codec,data",
    [
        (LzfCodec(size=4000), np.arange(1000, dtype="<i4")),
        (Lz4H5Codec(blocksize=512), np.arange(1000, dtype="<i4")),
        (Lz4H5Codec(), np.random.default_rng(1).integers(0, 256, 3000, dtype="u1")),
    ],
)
def test_byte_codecs_round_trip_and_pickle(codec, data):
    clone = pickle.loads(pickle.dumps(codec))

    assert clone.get_config() == codec.get_config()
    assert bytes(clone.decode(codec.encode(data))) == data.tobytes()


def test_generic_codec_decodes_correctly_from_many_threads(make_dataset):
    data = np.linspace(0, 1, 64 * 40).reshape(64, 40)
    dset = make_dataset(data=data, chunks=(8, 5), compression="szip")
    codec = _generic(dset)
    chunks = [(raw, dset[o[0] : o[0] + 8, o[1] : o[1] + 5]) for o, _, raw in stored_chunks(dset)]
    assert all(mask == 0 for _, mask, _ in stored_chunks(dset))  # szip is optional in h5py

    def check(item):
        raw, expected = item
        return codec.decode(raw).tobytes() == expected.tobytes()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(check, chunks * 4))


def test_generic_codec_decodes_a_small_chunk_in_well_under_a_millisecond(make_dataset):
    dset = make_dataset("<i2", shape=(64, 64), chunks=(32, 32), compression="szip")
    codec = _generic(dset)
    _, _, raw = next(stored_chunks(dset))
    codec.decode(raw)

    start = time.perf_counter()
    for _ in range(200):
        codec.decode(raw)
    per_chunk = (time.perf_counter() - start) / 200

    assert per_chunk < 0.5e-3


def test_a_filter_hdf5_cannot_load_is_refused_naming_it():
    spec = FilterSpec(id=32999, flags=0, cd_values=(1, 2), name="mystery")

    with pytest.raises(UnsupportedCodecError, match=r"filter 32999 \(mystery\)"):
        codecs_for([spec], np.dtype("<f4"), (10,))


def test_filters_skipped_for_a_chunk_are_left_out(make_dataset):
    dset = make_dataset("<i4", shuffle=True, compression="gzip", fletcher32=True)
    filters = filters_of(dset.id.get_create_plist())

    configs = codecs_for(filters, dset.dtype, dset.chunks, filter_mask=0b010)

    assert [c["id"] for c in configs] == ["shuffle", "fletcher32"]


def test_mapped_configs_are_json(make_dataset):
    dset = make_dataset("<f4", shuffle=True, compression="szip", fletcher32=True)
    filters = filters_of(dset.id.get_create_plist())
    _, mask, raw = next(stored_chunks(dset))

    configs = codecs_for(filters, dset.dtype, dset.chunks, filter_mask=mask)

    assert json.loads(json.dumps(configs)) == configs
    assert decode(json.loads(json.dumps(configs)), raw) == decode(configs, raw)


def test_generic_encode_refuses_a_chunk_an_optional_filter_would_skip(make_dataset):
    # h5py adds szip as optional: a chunk szip cannot shrink is stored raw with its bit
    # set in the chunk's filter mask, and such bytes do not decode through szip.
    dset = make_dataset("<f8", compression="szip")
    codec = _generic(dset)
    noise = np.random.default_rng(2).integers(0, 2**64, (8, 5), dtype="u8").view("<f8")

    with pytest.raises(RefindexError, match="skipped optional filters"):
        codec.encode(noise)
