"""Regular arrays read by refindex's own region reader (the xarray backend, ``refindex read``,
``ReferenceStore.read_region_sync``): exactly what h5py reads and zarr-python returns, for
every selection xarray and Dask ask for; what the reader cannot do exactly, zarr does."""

from __future__ import annotations

import json
import zlib

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex import assemble, decode_pool
from refindex.assemble import codec_for
from refindex.cli import main
from refindex.errors import ChunkDecodeError
from refindex.selection import basic_selection
from refindex.xarray.regular import RegionArray
from tests.roundtrip import kerchunk_refs, scan_to_sidecar

RNG = np.random.default_rng(12)
GRID = np.round(RNG.normal(280, 5, (50, 37)), 2).astype("<f4")
BIG = RNG.integers(0, 1000, (6, 64, 64)).astype(">i4")  # 16 KiB chunks: threads at 8 KiB
RECORDS = np.array([(i, i / 3, b"r%d" % i) for i in range(23)],
                   dtype=[("id", "<i4"), ("value", ">f8"), ("tag", "S3")])


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assemble")
    path = folder / "arrays.h5"
    with h5py.File(path, "w") as f:
        # many small chunks, edge chunks partial along both axes
        f.create_dataset("grid", data=GRID, chunks=(8, 5), compression="gzip", shuffle=True)
        f.create_dataset("big", data=BIG, chunks=(1, 32, 64), compression="gzip", shuffle=True)
        sparse = f.create_dataset("sparse", shape=(20, 20), dtype="<i2", chunks=(5, 5),
                                  fillvalue=-7)
        sparse[0:5, 5:10] = 3  # one chunk written: the others are absent (the fill value)
        sparse[17, 19] = 9
        f.create_dataset("records", data=RECORDS, chunks=(4,), compression="gzip")
        f.create_dataset("names", data=[f"name {i}" for i in range(30)], chunks=(7,),
                         dtype=h5py.string_dtype())
        f.create_dataset("fixed", data=np.array([b"ab", b"cde", b""] * 5, dtype="S3"),
                         chunks=(4,))
        f.create_dataset("scalar", data=np.float64(2.5))
        f.create_dataset("fortran", data=np.arange(24, dtype="<u2").reshape(4, 6),
                         chunks=(3, 4))
    return path, scan_to_sidecar(path, folder)


@pytest.fixture(scope="module")
def dataset(h5):
    # cache=False: every read goes to the backend (no values kept from an earlier test)
    with xr.open_dataset(h5[1], engine="refindex", mask_and_scale=False, cache=False) as ds:
        yield ds


def _backend_array(variable):
    """The backend's array under xarray's lazy wrappers."""
    array = variable._data
    while hasattr(array, "array"):
        array = array.array
    return array


def _h5(h5, name, key=()):
    with h5py.File(h5[0], "r") as f:
        return f[name][key]


def _zarr(h5, name, key):
    return zarr.open_group(refindex.open_store(h5[1]), mode="r", zarr_format=2)[name][key]


SELECTIONS = [(), (slice(None), slice(None)), (slice(3, 41), slice(4, 36)), (slice(None, None, 3),),
              (slice(1, 49, 7), slice(None, None, -4)), (slice(None, None, -1), 0), (-1, -3),
              (17, slice(33, 2, -5)), (Ellipsis, 36), (slice(40, 10),), (slice(-60, 99),)]


@pytest.mark.parametrize("key", SELECTIONS)
def test_basic_selections_read_what_h5py_and_zarr_read(h5, dataset, key):
    assert isinstance(_backend_array(dataset["grid"].variable), RegionArray)
    values = dataset["grid"].values[key] if key == () else dataset["grid"][key].values
    expected = GRID[key]  # what h5py wrote (h5py reads no negative steps)
    assert values.dtype == expected.dtype and values.shape == expected.shape
    assert values.tobytes() == expected.tobytes()
    if not any(isinstance(k, slice) and (k.step or 1) < 0 for k in key):  # zarr: no such steps
        assert values.tobytes() == _zarr(h5, "grid", key).tobytes()
        assert values.dtype == _zarr(h5, "grid", key).dtype


def test_basic_selections_are_not_read_through_zarr(h5, monkeypatch):
    store = refindex.open_store(h5[1])
    keys = []
    read_many = type(store)._read_many

    async def recording(self, key_ranges):
        keys.extend(key for key, _ in key_ranges)
        return await read_many(self, key_ranges)

    monkeypatch.setattr(type(store), "_read_many", recording)
    with xr.open_dataset(store, engine="refindex", cache=False) as ds:
        assert ds["grid"][5:9, ::2].values.tobytes() == GRID[5:9, ::2].tobytes()
        assert not [key for key in keys if key.startswith("grid/")]
        assert ds["grid"][[5, 6], [0, 2]].values.tobytes() == GRID[5:7][:, [0, 2]].tobytes()
        assert [key for key in keys if key.startswith("grid/")]  # outer: zarr's


@pytest.mark.parametrize(("rows", "cols"), [([0, 4, 49], [0, 36]), ([7], [36, 0, 9]),
                                             ([3, 1, 3], [2])])
def test_outer_selections_are_read_by_zarr(dataset, rows, cols):
    values = dataset["grid"][rows, cols].values
    assert values.tobytes() == GRID[np.ix_(rows, cols)].tobytes()


def test_vectorized_points_are_read_by_zarr(dataset):
    ds = dataset["grid"]
    y, x = ds.dims
    points = ds.isel({y: xr.DataArray([1, 7, 49], dims="p"), x: xr.DataArray([2, 30, 36],
                                                                             dims="p")})
    assert points.values.tolist() == GRID[[1, 7, 49], [2, 30, 36]].tolist()


def test_absent_chunks_read_as_the_fill_value(h5, dataset):
    values = dataset["sparse"].values
    assert values.tobytes() == _h5(h5, "sparse").tobytes() == _zarr(h5, "sparse", ()).tobytes()
    assert (values == -7).sum() == 400 - 26
    assert dataset["sparse"][10:15, 0:5].values.tolist() == [[-7] * 5] * 5  # all absent


def test_inline_chunks_of_a_kerchunk_sidecar_are_decoded_in_place(tmp_path):
    path = tmp_path / "grid.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("grid", data=GRID, chunks=(8, 5), compression="gzip", shuffle=True)
    refs = kerchunk_refs(path, inline_threshold=10**6)
    sidecar = tmp_path / "inline.json"
    sidecar.write_text(json.dumps(refs))
    node = refindex.load_index(sidecar).arrays["grid"]
    assert node.chunks.get(0).data is not None  # inline
    with xr.open_dataset(sidecar, engine="refindex", mask_and_scale=False) as ds:
        assert ds["grid"][::-3, 1:30].values.tobytes() == GRID[::-3, 1:30].tobytes()


def test_records_fixed_strings_scalars_and_other_orders(h5, dataset):
    assert dataset["records"].values.tolist() == RECORDS.tolist()
    assert dataset["records"][3:17:2].values.tolist() == RECORDS[3:17:2].tolist()
    assert dataset["fixed"].values.tolist() == _h5(h5, "fixed").tolist()
    assert dataset["scalar"].values.tolist() == 2.5
    assert dataset["fortran"][1:, ::-2].values.tolist() == _h5(h5, "fortran")[1:, ::-2].tolist()
    assert np.array_equal(dataset["big"][2:5, 30:40].values, BIG[2:5, 30:40])
    region = refindex.open_store(h5[1]).read_region_sync("big", (slice(0, 6), slice(0, 64),
                                                                 slice(0, 64)))
    assert region.dtype == _zarr(h5, "big", ()).dtype  # big-endian, as zarr gives it
    assert region.tobytes() == _zarr(h5, "big", ()).tobytes()


def test_variable_length_strings_are_read_by_zarr(h5, dataset):
    assert not isinstance(_backend_array(dataset["names"].variable), RegionArray)
    assert dataset["names"][3:9].values.tolist() == [f"name {i}" for i in range(3, 9)]


def test_dask_reads_each_chunk_through_the_region_reader(h5):
    with xr.open_dataset(h5[1], engine="refindex", chunks={}, mask_and_scale=False) as ds:
        assert ds["grid"].chunks == ((8,) * 6 + (2,), (5,) * 7 + (2,))
        assert ds["grid"][::2, 3:].values.tobytes() == GRID[::2, 3:].tobytes()
        assert ds["big"].sum().values == BIG.sum()
        assert ds["sparse"].values.tobytes() == _h5(h5, "sparse").tobytes()


@pytest.mark.parametrize("run_bytes", [1, 20_000, 1 << 30])
def test_large_regions_decode_on_every_core_exactly(h5, monkeypatch, run_bytes):
    monkeypatch.setattr(assemble, "FETCH_RUN_BYTES", run_bytes)  # fetched run by run
    monkeypatch.setattr(decode_pool, "PARALLEL_BYTES", 1)
    monkeypatch.setattr(decode_pool, "PARALLEL_CHUNK_BYTES", 1)
    monkeypatch.setattr(decode_pool, "workers", lambda: 2)
    store = refindex.open_store(h5[1])
    whole = store.read_region_sync("big", (slice(0, 6), slice(0, 64), slice(0, 64)))
    assert whole.tobytes() == BIG.tobytes() and whole.dtype == BIG.dtype
    part = store.read_region_sync("grid", (slice(3, 50), slice(1, 37)))
    assert part.tobytes() == GRID[3:, 1:].tobytes()


def test_a_bulk_read_is_not_kept_by_the_fetch_cache(h5, monkeypatch):
    # A read of several runs would only flush the cache (and then itself): its stored bytes
    # pass by it; one run's are kept for the reads after it.
    store = refindex.open_store(h5[1])
    memory = store.engine._cache.memory
    store.read_region_sync("grid", (slice(0, 50), slice(0, 37)))
    small = memory.size
    assert small > 0
    monkeypatch.setattr(assemble, "FETCH_RUN_BYTES", 20_000)
    whole = store.read_region_sync("big", (slice(0, 6), slice(0, 64), slice(0, 64)))
    assert whole.tobytes() == BIG.tobytes()
    assert memory.size == small
    again = store.read_region_sync("grid", (slice(0, 50), slice(0, 37)))  # still cached
    assert again.tobytes() == GRID.tobytes()
    with pytest.raises(IndexError, match="grid"):
        store.read_region_sync("grid", (slice(0, 50), slice(0, 40)))  # past the shape


@pytest.fixture
def corrupt(h5, tmp_path):
    """A copy of the file with one chunk of ``big`` (not the first) overwritten."""
    path = tmp_path / "corrupt.h5"
    path.write_bytes(h5[0].read_bytes())
    with h5py.File(path, "r") as f:
        chunk = f["big"].id.get_chunk_info(5)
    with open(path, "r+b") as f:
        f.seek(chunk.byte_offset)
        f.write(b"\xff" * chunk.size)
    return scan_to_sidecar(path, tmp_path)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_chunk_that_does_not_decode_is_a_chunk_decode_error(corrupt, monkeypatch, parallel):
    monkeypatch.setattr(assemble, "FETCH_RUN_BYTES", 10_000)  # the bad chunk in a middle run
    if parallel:
        monkeypatch.setattr(decode_pool, "PARALLEL_BYTES", 1)
        monkeypatch.setattr(decode_pool, "PARALLEL_CHUNK_BYTES", 1)
        monkeypatch.setattr(decode_pool, "workers", lambda: 2)
    with xr.open_dataset(corrupt, engine="refindex") as ds:
        assert np.array_equal(ds["big"][0].values, BIG[0])  # untouched chunks read
        with pytest.raises(ChunkDecodeError, match="'big'.*cannot be decoded"):
            ds["big"].load()


def test_a_decompression_bomb_is_stopped_at_the_chunks_size(h5):
    zarray = refindex.load_index(h5[1]).arrays["grid"].zarray
    codec = codec_for(zarray, sized=True, array="grid")
    bomb = zlib.compress(bytes(64 << 20))
    with pytest.raises(ChunkDecodeError, match="'grid'.*more than"):
        codec.decode(bomb, (8, 5))


@pytest.mark.parametrize("libdeflate", [True, False])
@pytest.mark.parametrize("dtype, shuffle", [("<f4", True), (">i4", True), ("|u1", True),
                                            ("<f8", False), (">u2", True)])
def test_zlib_chunks_decode_into_scratch_buffers_exactly(tmp_path, monkeypatch, libdeflate,
                                                         dtype, shuffle):
    # The region reader inflates zlib (+ shuffle) chunks into per-thread buffers, through
    # libdeflate when imagecodecs is there, else zlib-ng: the values h5py reads, either way.
    from refindex.codecs import fast_zlib

    if libdeflate and not fast_zlib._libdeflate():
        pytest.skip("imagecodecs with libdeflate is not installed")
    monkeypatch.setattr(fast_zlib, "_LIBDEFLATE", None if libdeflate else False)
    monkeypatch.setattr(fast_zlib, "LIBDEFLATE_MIN_BYTES", 0)  # these chunks are small
    values = RNG.integers(0, 200, (13, 21, 17)).astype(dtype)
    path = tmp_path / "zlib.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values, chunks=(4, 8, 17), compression="gzip",
                         shuffle=shuffle)
    store = refindex.open_store(scan_to_sidecar(path, tmp_path))
    assert codec_for(store.index.arrays["v"].zarray, sized=True)._inflate_plan is not None
    for region in [(slice(0, 13), slice(0, 21), slice(0, 17)),
                   (slice(3, 11), slice(5, 20), slice(2, 9))]:
        read = store.read_region_sync("v", region)
        assert read.dtype == values.dtype and read.tobytes() == values[region].tobytes()


@pytest.mark.parametrize("libdeflate", [True, False])
@pytest.mark.parametrize("stored, why", [
    (zlib.compress(bytes(8 * 5 * 4 - 1)), "decodes to 159 bytes"),  # a byte short
    (zlib.compress(bytes(8 * 5 * 4 + 1)), "more than 160 bytes"),  # a byte long
    (zlib.compress(bytes(160))[:-3], ""),  # truncated: the checksum is cut
    (b"not zlib at all", ""),
])
def test_zlib_chunks_of_the_wrong_size_or_broken_are_chunk_decode_errors(
        h5, monkeypatch, libdeflate, stored, why):
    from refindex.codecs import fast_zlib

    if libdeflate and not fast_zlib._libdeflate():
        pytest.skip("imagecodecs with libdeflate is not installed")
    monkeypatch.setattr(fast_zlib, "_LIBDEFLATE", None if libdeflate else False)
    monkeypatch.setattr(fast_zlib, "LIBDEFLATE_MIN_BYTES", 0)
    zarray = refindex.load_index(h5[1]).arrays["grid"].zarray
    codec = codec_for(zarray, sized=True, array="grid")
    with pytest.raises(ChunkDecodeError, match=f"'grid'.*cannot be decoded.*{why}"):
        codec.decode(stored, (8, 5), scratch=True)


def test_refindex_read_reads_selections_through_the_region_reader(h5, capsys):
    assert main(["read", str(h5[1]), "-a", "grid", "--select=-1,::-4"]) == 0
    assert "/grid: (10,) float32, 40 bytes" in capsys.readouterr().out
    assert main(["read", str(h5[1]), "-a", "names", "-s", "2:5"]) == 0  # zarr's
    assert "/names: (3,) " in capsys.readouterr().out


@pytest.mark.parametrize(("key", "error"), [((0, 0, 0), "too many indices"),
                                            ((50,), "out of bounds"),
                                            ((..., 1, ...), "single ellipsis")])
def test_selections_numpy_refuses_are_index_errors(key, error):
    with pytest.raises(IndexError, match=error):
        basic_selection(key, (50, 37))
