"""``refindex.zlib``: the zlib codec the store serves, inflating with zlib-ng."""

from __future__ import annotations

import zlib

import numcodecs
import numpy as np
import pytest
import zarr

from refindex import open_store, scan
from refindex.codecs import fast_zlib
from refindex.codecs.fast_zlib import FastZlib, fast_codecs


@pytest.mark.parametrize("level", [1, 4, 9])
def test_decodes_what_numcodecs_zlib_encodes_byte_for_byte(level):
    rng = np.random.default_rng(level)
    data = np.round(rng.normal(size=200_000), 2).astype("f4")
    encoded = numcodecs.Zlib(level).encode(data)
    assert bytes(FastZlib(level).decode(encoded)) == data.tobytes()
    out = np.empty_like(data)
    FastZlib(level).decode(encoded, out=out)
    assert np.array_equal(out, data)


def test_a_corrupt_stream_is_a_zlib_error():
    encoded = bytearray(zlib.compress(bytes(range(256)) * 100))
    encoded[20:40] = b"\xff" * 20
    with pytest.raises(zlib.error):
        FastZlib().decode(bytes(encoded))


def test_is_registered_with_numcodecs():
    assert isinstance(numcodecs.get_codec({"id": "refindex.zlib", "level": 4}), FastZlib)


def test_the_store_serves_it_for_gzip_arrays_and_the_sidecar_keeps_zlib(tmp_path):
    import h5py

    path = tmp_path / "g.h5"
    values = np.arange(100_000, dtype="f8").reshape(100, 1000)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(10, 100), compression="gzip", shuffle=True)
    index = scan(path).index
    assert {"id": "zlib", "level": 4} in index.arrays["x"].zarray["filters"]
    array = zarr.open_group(open_store(index), mode="r", zarr_format=2)["x"]
    # Served guarded (refindex.codecs.guarded), around refindex.zlib.
    assert any(getattr(f, "codec", {}).get("id") == "refindex.zlib"
               for f in array.metadata.filters or [])
    assert np.array_equal(array[:], values)


def test_without_zlib_ng_the_metadata_is_served_as_it_is(monkeypatch):
    monkeypatch.setattr(fast_zlib, "_inflater", zlib)
    zarray = {"compressor": {"id": "zlib", "level": 1}, "filters": None}
    assert fast_codecs(zarray) == zarray
