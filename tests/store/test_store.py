"""ReferenceStore: the zarr-python 3 store API over an index (listing, existence, metadata,
byte ranges, absent chunks), pickling for other processes, and reading through Dask."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import pickle

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype

import refindex
from refindex.store import ReferenceStore
from tests.roundtrip import scan_to_sidecar


def sample_file(path) -> None:
    """A sparse chunked array (some chunks never written), a contiguous one, a group."""
    with h5py.File(path, "w") as f:
        sparse = f.create_dataset("sparse", shape=(20, 20), dtype="i4", chunks=(10, 10),
                                  fillvalue=-1)
        sparse[0:10, 0:10] = 7
        sparse[10:20, 10:20] = 8
        f.create_dataset("plain", data=np.arange(60, dtype="<f8").reshape(6, 10))
        f.create_group("grp").create_dataset("inner", data=np.arange(5, dtype="u2"),
                                             chunks=(2,), compression="gzip")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """(HDF5 path, sidecar path) of ``sample_file``."""
    folder = tmp_path_factory.mktemp("store")
    path = folder / "sample.h5"
    sample_file(path)
    return path, scan_to_sidecar(path, folder)


@pytest.fixture
def store(sample) -> ReferenceStore:
    return refindex.open_store(sample[1])


def run(coroutine):
    return asyncio.run(coroutine)


async def collect(iterator) -> list[str]:
    return [key async for key in iterator]


def read_plain(store: ReferenceStore) -> np.ndarray:
    return zarr.open_group(store, mode="r", zarr_format=2)["plain"][...]


def read_in_child(store: ReferenceStore) -> bytes:
    """Runs in a spawned process: the values of ``plain`` read there."""
    return read_plain(store).tobytes()


# --- the store API --------------------------------------------------------------------------


def test_list_yields_metadata_and_present_chunks_only(store):
    keys = set(run(collect(store.list())))
    assert {".zgroup", ".zmetadata", "sparse/.zarray", "plain/.zarray",
            "grp/.zgroup", "grp/inner/.zarray"} <= keys
    assert {k for k in keys if k.startswith("sparse/") and "z" not in k} == {"sparse/0.0",
                                                                             "sparse/1.1"}


def test_list_dir_yields_the_children_of_a_prefix(store):
    assert set(run(collect(store.list_dir("")))) == {".zgroup", ".zmetadata", "sparse", "plain",
                                                     "grp"}
    assert set(run(collect(store.list_dir("sparse")))) == {".zarray", ".zattrs", "0.0", "1.1"}
    assert set(run(collect(store.list_dir("grp/")))) == {".zgroup", "inner"}


def test_list_prefix_yields_full_keys(store):
    assert set(run(collect(store.list_prefix("grp/inner/")))) == {
        "grp/inner/.zarray", "grp/inner/.zattrs", "grp/inner/0", "grp/inner/1", "grp/inner/2"}


def test_exists_for_metadata_and_present_chunks_only(store):
    assert run(store.exists("sparse/.zarray"))
    assert run(store.exists("sparse/1.1"))
    assert not run(store.exists("sparse/0.1"))  # never written
    assert not run(store.exists("sparse/5.5"))  # outside the grid
    assert not run(store.exists("nothing/.zarray"))


def test_consolidated_metadata_describes_every_node(store):
    data = run(store.get(".zmetadata", default_buffer_prototype()))
    consolidated = json.loads(data.to_bytes())
    assert consolidated["zarr_consolidated_format"] == 1
    metadata = consolidated["metadata"]
    assert json.loads(run(store.get("plain/.zarray")).to_bytes()) == metadata["plain/.zarray"]
    assert {"grp/.zgroup", "grp/inner/.zarray", "sparse/.zattrs"} <= set(metadata)


def test_zarr_opens_the_hierarchy_from_consolidated_metadata(store):
    group = zarr.open_consolidated(store, mode="r", zarr_format=2)
    assert set(group.keys()) == {"sparse", "plain", "grp"}
    assert group["grp/inner"].shape == (5,)


def test_absent_chunks_and_unknown_keys_are_none(store):
    assert run(store.get("sparse/0.1")) is None
    assert run(store.get("sparse/9.9")) is None
    assert run(store.get("no/such/key")) is None


def test_keys_of_digits_other_than_ascii_are_no_chunk_keys(store):
    # str.isdigit() accepts "²" and "٣", which int() refuses or reads as another number.
    assert run(store.get("plain/².0")) is None
    assert run(store.get("plain/٠.0")) is None
    assert run(store.exists("plain/².0")) is False


@pytest.mark.parametrize("byte_range, window", [
    (RangeByteRequest(16, 80), slice(16, 80)),
    (OffsetByteRequest(400), slice(400, None)),
    (SuffixByteRequest(24), slice(-24, None)),
], ids=["range", "offset", "suffix"])
def test_byte_range_of_a_referenced_chunk_is_that_slice(store, sample, byte_range, window):
    with h5py.File(sample[0], "r") as f:
        chunk = f["plain"][...].tobytes()
    assert run(store.get("plain/0.0")).to_bytes() == chunk
    part = run(store.get("plain/0.0", default_buffer_prototype(), byte_range=byte_range))
    assert part.to_bytes() == chunk[window]


def test_partial_values_of_several_keys_come_back_in_order(store, sample):
    with h5py.File(sample[0], "r") as f:
        chunk = f["plain"][...].tobytes()
    results = run(store.get_partial_values(default_buffer_prototype(), [
        ("plain/0.0", RangeByteRequest(0, 8)), ("sparse/0.1", None),
        ("plain/0.0", SuffixByteRequest(8)), (".zgroup", None)]))
    assert results[0].to_bytes() == chunk[:8] and results[1] is None
    assert results[2].to_bytes() == chunk[-8:]
    assert json.loads(results[3].to_bytes()) == {"zarr_format": 2}


def test_store_is_read_only(store):
    from zarr.core.buffer import cpu

    assert store.read_only
    with pytest.raises(ValueError):
        run(store.set("plain/0.0", cpu.Buffer.from_bytes(b"x")))
    with pytest.raises(ValueError):
        run(store.delete("plain/0.0"))


def test_absent_chunks_read_as_the_fill_value(store):
    sparse = zarr.open_group(store, mode="r", zarr_format=2)["sparse"][...]
    assert (sparse[:10, :10] == 7).all() and (sparse[10:, 10:] == 8).all()
    assert (sparse[:10, 10:] == -1).all() and (sparse[10:, :10] == -1).all()


# --- pickling -------------------------------------------------------------------------------


def test_store_pickles_and_the_copy_reads_the_same(store, sample):
    before = read_plain(store)  # the original has opened its engine by now
    copy = pickle.loads(pickle.dumps(store))
    assert copy is not store and copy.index.chunk_count() == store.index.chunk_count()
    np.testing.assert_array_equal(read_plain(copy), before)


def test_store_reads_in_a_spawned_process(store, sample):
    read_plain(store)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        data = pool.apply(read_in_child, (store,))
    with h5py.File(sample[0], "r") as f:
        assert data == f["plain"][...].tobytes()


def test_open_store_with_options_keeps_the_index_and_changes_the_options(store):
    changed = refindex.open_store(store, max_concurrency=3)
    assert changed.index is store.index and changed.options.max_concurrency == 3
    assert refindex.open_store(store) is store


# --- Dask -----------------------------------------------------------------------------------


def test_dask_reads_every_variable_like_h5py(sample):
    path, sidecar = sample
    ds = xr.open_dataset(sidecar, engine="refindex", chunks={}, decode_cf=False)
    assert ds["sparse"].chunks == ((10, 10), (10, 10))
    computed = ds.compute()
    with h5py.File(path, "r") as f:
        for name in ("sparse", "plain"):
            np.testing.assert_array_equal(computed[name].values, f[name][...])
    inner = xr.open_dataset(sidecar, engine="refindex", chunks={}, group="grp").compute()
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(inner["inner"].values, f["grp/inner"][...])


def test_dask_computes_with_processes(sample):
    import dask

    path, sidecar = sample
    ds = xr.open_dataset(sidecar, engine="refindex", chunks={}, decode_cf=False)
    with dask.config.set(scheduler="processes", num_workers=2):
        total = int(ds["sparse"].sum().compute())
    with h5py.File(path, "r") as f:
        assert total == int(f["sparse"][...].sum())
