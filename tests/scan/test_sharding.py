"""Zarr v3 sharded stores (in a directory, a tar or a zip): one reference per inner chunk read
from each shard's index, so that v2-only readers read sharded data through refindex."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, TransposeCodec

import refindex
from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.index import ABSENT
from refindex.scan import ScanOptions, scan
from tests.roundtrip import assert_same_values
from tests.scan.zarr_stores import (
    assert_same_arrays,
    sharded_array,
    tar_of,
    v3_store,
    zip_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


@pytest.fixture(scope="module")
def sharded_store(tmp_path_factory) -> Path:
    return v3_store(tmp_path_factory.mktemp("sharded") / "s.zarr", sharded=True,
                    consolidated=True)


def read_v2(index_or_sidecar, path: str = "") -> np.ndarray:
    """The array at ``path`` read as Zarr v2 through refindex."""
    store = refindex.open_store(index_or_sidecar)
    if path:
        return zarr.open_group(store, mode="r", zarr_format=2)[path][...]
    return zarr.open_array(store, mode="r", zarr_format=2)[...]


@pytest.mark.parametrize("container", ["directory", "tar", "zip"])
def test_sharded_store_reads_as_the_store(sharded_store, tmp_path, container):
    location = {"directory": lambda: sharded_store,
                "tar": lambda: tar_of(sharded_store, tmp_path / "s.tar"),
                "zip": lambda: zip_of(sharded_store, tmp_path / "s.zip")}[container]()

    result = scan(location)

    assert result.skipped == []
    assert_same_arrays(sharded_store, result.index)


def test_v2_view_has_the_inner_chunks(sharded_store):
    index = scan(sharded_store).index
    node = index.arrays["grids/fine/temperature"]

    assert node.zarray["chunks"] == [8, 5]  # the inner chunks, not the (16, 10) shards
    assert node.chunks.grid == (5, 5)
    assert node.zarray["compressor"]["id"] == "blosc"


def test_each_inner_chunk_references_its_bytes_in_the_shard_file(tmp_path):
    values = sharded_array(tmp_path / "a.zarr")
    index = scan(tmp_path / "a.zarr").index
    node = index.arrays[""]

    ref = node.chunks.get(node.chunks.flat_index((2, 2)))  # shard (1, 1), inner chunk (0, 0)
    source = index.sources[ref.source]

    assert source.url == str(tmp_path / "a.zarr" / "c" / "1" / "1")
    assert ref.offset >= 0 and ref.offset + ref.length <= source.size
    assert_same_values(values, read_v2(index), "a")


def test_empty_inner_chunks_are_absent(tmp_path):
    sharded_array(tmp_path / "a.zarr")
    node = scan(tmp_path / "a.zarr").index.arrays[""]

    written = node.chunks.source != ABSENT
    # Every other inner chunk holds only the fill value, and zarr leaves those out.
    assert written.sum() == math.ceil(len(node.chunks) / 2)


def test_inner_chunks_of_edge_shards_outside_the_array_are_left_out(tmp_path):
    values = sharded_array(tmp_path / "a.zarr", shape=(9, 11), chunks=(2, 3), shard=(4, 6))
    node = scan(tmp_path / "a.zarr").index.arrays[""]

    assert node.chunks.grid == (5, 4)
    assert_same_values(values, read_v2(scan(tmp_path / "a.zarr").index), "edges")


@pytest.mark.parametrize("location", ["start", "end"])
@pytest.mark.parametrize("index_codecs", [[BytesCodec()], [BytesCodec(endian="big")],
                                          [BytesCodec(endian="big"), Crc32cCodec()]],
                         ids=["little", "big", "big_crc32c"])
def test_shard_index_placements_and_encodings(tmp_path, location, index_codecs):
    values = sharded_array(tmp_path / "a.zarr", index_location=location,
                           index_codecs=index_codecs)

    assert_same_values(values, read_v2(scan(tar_of(tmp_path / "a.zarr", tmp_path / "a.tar",
                                                   top="")).index), location)


def test_inner_codecs_transpose_blosc_and_checksum(tmp_path):
    values = sharded_array(
        tmp_path / "a.zarr",
        codecs=[TransposeCodec(order=(1, 0)), BytesCodec(endian="big"),
                BloscCodec(cname="zstd", shuffle="bitshuffle"), Crc32cCodec()])
    node = scan(tmp_path / "a.zarr").index.arrays[""]

    assert node.zarray["order"] == "F" and node.zarray["dtype"] == ">i4"
    assert [f["id"] for f in node.zarray["filters"]] == ["blosc"]
    assert node.zarray["compressor"]["id"] == "crc32c"
    assert_same_values(values, read_v2(scan(tmp_path / "a.zarr").index).astype("i4"), "codecs")


def test_bad_shard_index_checksum_names_the_shard(tmp_path):
    sharded_array(tmp_path / "a.zarr")
    shard = tmp_path / "a.zarr" / "c" / "0" / "1"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x01  # a bit of the index's last entry; its CRC32C no longer matches
    shard.write_bytes(bytes(data))

    with pytest.raises(ContainerError, match="CRC32C") as caught:
        scan(tmp_path / "a.zarr", ScanOptions(on_unsupported="error"))

    assert str(shard) in str(caught.value)


def test_shard_index_pointing_past_the_shard_is_an_error(tmp_path):
    sharded_array(tmp_path / "a.zarr", index_codecs=[BytesCodec()])
    shard = tmp_path / "a.zarr" / "c" / "0" / "0"
    data = bytearray(shard.read_bytes())
    entries = 4  # (8, 10) shards of (4, 5) chunks; the index has no checksum
    first = len(data) - 16 * entries
    data[first:first + 8] = (len(data) * 2).to_bytes(8, "little")  # chunk 0's offset
    shard.write_bytes(bytes(data))

    with pytest.raises(ContainerError, match="past the end of the shard"):
        scan(tmp_path / "a.zarr", ScanOptions(on_unsupported="error"))


def test_truncated_shard_is_an_error(tmp_path):
    sharded_array(tmp_path / "a.zarr")
    shard = tmp_path / "a.zarr" / "c" / "1" / "0"
    shard.write_bytes(shard.read_bytes()[:20])

    with pytest.raises(ContainerError, match="truncated|corrupt"):
        scan(tar_of(tmp_path / "a.zarr", tmp_path / "a.tar"))


def test_deflated_shard_in_a_zip_is_unsupported(tmp_path):
    sharded_array(tmp_path / "a.zarr")
    path = zip_of(tmp_path / "a.zarr", tmp_path / "a.zip", compression=zipfile.ZIP_DEFLATED)

    with pytest.raises(UnsupportedFeatureError, match="shard .* deflate"):
        scan(path, ScanOptions(on_unsupported="error"))


def test_nested_sharding_is_unsupported(tmp_path):
    inner = zarr.codecs.ShardingCodec(chunk_shape=(2, 5))
    sharded_array(tmp_path / "a.zarr", codecs=[inner])

    with pytest.raises(UnsupportedFeatureError, match="nested sharding"):
        scan(tmp_path / "a.zarr", ScanOptions(on_unsupported="error"))


def test_sidecar_of_a_sharded_archive_round_trips(sharded_store, tmp_path):
    sidecar = tmp_path / "s.refs.json"
    refindex.write_index(scan(tar_of(sharded_store, tmp_path / "s.tar")).index, sidecar,
                         "kerchunk")

    assert_same_arrays(sharded_store, sidecar)


def test_xarray_reads_a_sharded_dataset_as_it_reads_the_store(tmp_path):
    ds = xr.Dataset(
        {"t": (("time", "y"), np.arange(48, dtype="f4").reshape(8, 6), {"units": "K"}),
         "gaps": (("time",), np.array([0.5, -999.0, 2.5, 3.5, 4.5, -999.0, 6.5, 7.5]))},
        coords={"y": np.arange(6.0)})
    ds.gaps.encoding["_FillValue"] = -999.0
    store = tmp_path / "ds.zarr"
    ds.to_zarr(store, zarr_format=3, consolidated=False,
               encoding={"t": {"chunks": (2, 3), "shards": (4, 6)},
                         "gaps": {"chunks": (2,), "shards": (4,)}})
    sidecar = tmp_path / "ds.refs.json"
    refindex.write_index(scan(zip_of(store, tmp_path / "ds.zip")).index, sidecar)

    read = xr.open_dataset(sidecar, engine="refindex").load()

    assert read.identical(xr.open_zarr(store, consolidated=False).load())
    assert refindex.load_index(sidecar).arrays["t"].zarray["chunks"] == [2, 3]
