"""How each array is served: which codecs are kept, which re-encoded, and how its metadata is
said in Zarr v2 and v3; a re-encoded chunk holds exactly the decoded source chunk."""

from __future__ import annotations

import time

import numcodecs
import numpy as np
import pytest

from refindex.serve.documents import v3_array
from refindex.serve.transcode import EncodedChunks, plan_array, transcode

BASE = {"zarr_format": 2, "shape": [10, 6], "chunks": [4, 3], "dtype": "<f4",
        "fill_value": None, "order": "C", "compressor": None, "filters": None}
ZLIB = {"id": "zlib", "level": 4}
SHUFFLE = {"id": "shuffle", "elementsize": 4}


def test_auto_keeps_standard_codecs_and_says_hdf5_deflate_as_a_compressor():
    plan = plan_array({**BASE, "filters": [ZLIB]}, "auto")
    assert not plan.transcode
    assert plan.served["compressor"] == ZLIB and plan.served["filters"] is None


@pytest.mark.parametrize("filters", [[SHUFFLE, ZLIB], [{"id": "refindex.lzf", "size": 48}],
                                     [ZLIB, {"id": "fletcher32"}]])
def test_auto_reencodes_what_browsers_cannot_decode_with_gzip(filters):
    plan = plan_array({**BASE, "filters": filters}, "auto")
    assert plan.transcode
    assert plan.served["compressor"]["id"] == "gzip" and plan.served["filters"] is None


def test_off_serves_every_codec_as_stored():
    zarray = {**BASE, "filters": [SHUFFLE, ZLIB]}
    assert plan_array(zarray, "off").served == zarray


def test_arrays_of_objects_are_never_reencoded():
    zarray = {**BASE, "dtype": "|O", "filters": [{"id": "vlen-utf8"}]}
    assert not plan_array(zarray, "gzip").transcode


def test_an_array_already_in_the_wanted_codec_is_not_reencoded():
    zstd = numcodecs.Zstd(level=3).get_config()
    assert not plan_array({**BASE, "compressor": zstd}, "zstd").transcode
    assert not plan_array(BASE, "raw").transcode


@pytest.mark.parametrize("mode", ["raw", "gzip", "zstd", "blosc"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_reencoded_chunk_decodes_to_the_source_chunk(mode, order):
    values = np.arange(12, dtype=">f8").reshape(4, 3) * 1.5
    zarray = {**BASE, "dtype": ">f8", "order": order,
              "filters": [{"id": "shuffle", "elementsize": 8}, ZLIB]}
    stored = numcodecs.Zlib(4).encode(numcodecs.Shuffle(8).encode(values.tobytes(order=order)))
    plan = plan_array(zarray, mode)
    data = transcode(plan, stored)
    compressor = plan.served["compressor"]
    raw = data if compressor is None else numcodecs.get_codec(compressor).decode(data)
    decoded = np.frombuffer(raw, ">f8").reshape(4, 3, order=order)
    assert decoded.tobytes() == values.tobytes()


def test_the_v3_view_says_byte_order_memory_order_and_dimension_names():
    zarray = {**BASE, "dtype": ">i2", "order": "F", "fill_value": -1,
              "compressor": {"id": "gzip", "level": 4}}
    document = v3_array(zarray, {"_ARRAY_DIMENSIONS": ["y", "x"], "units": "m"})
    assert document["data_type"] == "int16" and document["fill_value"] == -1
    assert [c["name"] for c in document["codecs"]] == ["transpose", "bytes", "gzip"]
    assert document["codecs"][1]["configuration"]["endian"] == "big"
    assert document["dimension_names"] == ["y", "x"]
    assert document["chunk_key_encoding"]["configuration"]["separator"] == "."


@pytest.mark.parametrize(("zarray", "reason"), [
    ({**BASE, "compressor": ZLIB}, "codec 'zlib'"),
    ({**BASE, "filters": [SHUFFLE]}, "filters shuffle"),
    ({**BASE, "dtype": "|S4"}, "data type '|S4'"),
])
def test_what_v3_cannot_say_is_named(zarray, reason):
    assert reason in v3_array(zarray, {})


def test_the_cache_of_reencoded_chunks_is_bounded_by_bytes():
    cache = EncodedChunks(100)
    for i in range(5):
        cache.put(i, bytes(40))
    assert cache.size <= 100 and cache.get(0) is None and cache.get(4) == bytes(40)


def test_reencoding_gives_the_same_bytes_every_time():
    """A strong ETag promises the same bytes: no timestamps, no thread-dependent output."""
    zarray = {**BASE, "filters": [SHUFFLE, ZLIB]}
    stored = numcodecs.Zlib(4).encode(numcodecs.Shuffle(4).encode(
        np.arange(12, dtype="<f4").tobytes()))
    plans = [plan_array(zarray, mode) for mode in ("gzip", "zstd", "blosc")]
    first = [transcode(plan, stored) for plan in plans]
    time.sleep(1.1)  # gzip headers count whole seconds
    assert [transcode(plan, stored) for plan in plans] == first
