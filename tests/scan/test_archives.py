"""Zarr stores in tar and zip archives: every chunk is referenced where it lies in the archive,
metadata is inlined, and what refindex serves equals the original store, array by array and
chunk key by chunk key, through zarr and through xarray."""

from __future__ import annotations

import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.cli import main
from refindex.index import ABSENT
from refindex.scan import ScanOptions, scan
from refindex.sidecar import write_index
from tests.scan.zarr_stores import (
    METADATA_NAMES,
    assert_same_arrays,
    assert_same_chunk_bytes,
    store_files,
    tar_of,
    v2_store,
    v3_store,
    zip_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """The stores the archives below are made of, written once."""
    root = tmp_path_factory.mktemp("stores")
    return {
        "v2": v2_store(root / "v2.zarr"),
        "v2_nested": v2_store(root / "v2_nested.zarr", separator="/", consolidated=False),
        "v3": v3_store(root / "v3.zarr"),
        "v3_consolidated": v3_store(root / "v3c.zarr", consolidated=True),
    }


ARCHIVES = {
    "pax_tar": lambda store, path: tar_of(store, path.with_suffix(".tar")),
    "gnu_tar": lambda store, path: tar_of(store, path.with_suffix(".tar"),
                                          format=tarfile.GNU_FORMAT),
    "ustar_tar": lambda store, path: tar_of(store, path.with_suffix(".tar"),
                                            format=tarfile.USTAR_FORMAT),
    "zip": lambda store, path: zip_of(store, path.with_suffix(".zip")),
    "zip64": lambda store, path: zip_of(store, path.with_suffix(".zip"), zip64=True),
}


@pytest.mark.parametrize("archive", ARCHIVES)
@pytest.mark.parametrize("store", ["v2", "v2_nested", "v3", "v3_consolidated"])
def test_archived_store_reads_as_the_store(stores, tmp_path, archive, store):
    path = ARCHIVES[archive](stores[store], tmp_path / store)

    result = scan(path)

    assert [s.url for s in result.index.sources] == [str(path)]
    assert result.skipped == []
    assert_same_arrays(stores[store], result.index)


@pytest.mark.parametrize("store", ["v2", "v2_nested"])
def test_every_v2_chunk_key_serves_the_archived_bytes(stores, tmp_path, store):
    path = tar_of(stores[store], tmp_path / "store.tar")

    compared = assert_same_chunk_bytes(stores[store], scan(path).index)

    assert compared == _chunk_file_count(stores[store])


def test_every_v3_chunk_is_served_under_its_v2_key_byte_for_byte(stores, tmp_path):
    original = stores["v3"]
    store = refindex.open_store(scan(zip_of(original, tmp_path / "v3.zip")).index)
    group = zarr.open_group(str(original), mode="r")
    compared = 0
    for path, array in group.members(max_depth=None):
        if not isinstance(array, zarr.Array):
            continue
        encoding = array.metadata.chunk_key_encoding
        for file in store_files(original / path):
            name = file.relative_to(original / path).as_posix()
            if name in METADATA_NAMES:
                continue
            key = f"{path}/{_v2_chunk_name(name, encoding.separator)}"
            assert zarr.core.sync.sync(store.get(key)).to_bytes() == file.read_bytes(), key
            compared += 1
    assert compared == _chunk_file_count(original)


def _chunk_file_count(store: Path) -> int:
    count = sum(1 for file in store_files(store) if file.name not in METADATA_NAMES)
    assert count > 40  # every array has chunks
    return count


def _v2_chunk_name(v3_name: str, separator: str) -> str:
    """The v2 name refindex serves for a v3 chunk name (``c/1/2`` or ``1.2`` -> ``1/2``)."""
    if v3_name in ("c", "0"):
        return "0"
    coords = v3_name.removeprefix("c" + separator).split(separator)
    return "/".join(coords)


def test_chunks_are_references_into_the_archive_at_the_member_data(stores, tmp_path):
    path = tar_of(stores["v2"], tmp_path / "v2.tar")
    node = scan(path).index.arrays["grids/fine/temperature"]

    with tarfile.open(path) as archive:
        member = archive.getmember("store.zarr/grids/fine/temperature/1.2")
    ref = node.chunks.get(node.chunks.flat_index((1, 2)))

    assert (ref.source, ref.offset, ref.length) == (0, member.offset_data, member.size)


def test_chunks_never_written_are_absent(stores, tmp_path):
    node = scan(zip_of(stores["v3"], tmp_path / "v3.zip")).index.arrays["sparse"]

    assert (node.chunks.source != ABSENT).sum() == 1
    assert node.chunks.get(node.chunks.flat_index((0, 1))).source == 0


def test_metadata_is_inlined_and_hierarchy_kept(stores, tmp_path):
    index = scan(tar_of(stores["v3"], tmp_path / "v3.tar")).index

    assert set(index.groups) == {"", "grids", "grids/fine"}
    assert index.groups[""] == {"title": "a v3 store", "version": 3}
    assert index.groups["grids/fine"] == {"resolution": 0.25}
    assert index.arrays["grids/fine/temperature"].attrs["_ARRAY_DIMENSIONS"] == ["y", "x"]


def test_store_at_the_top_of_the_archive_reads_like_one_in_a_directory(stores, tmp_path):
    top = scan(tar_of(stores["v2"], tmp_path / "top.tar", top="")).index
    nested = scan(tar_of(stores["v2"], tmp_path / "nested.tar", top="a/b.zarr")).index

    assert set(top.arrays) == set(nested.arrays) == {
        "grids/fine/temperature", "grids/count", "big_endian", "flags", "text", "sparse",
        "scalar"}


def test_consolidated_metadata_is_enough(stores, tmp_path):
    """With .zmetadata (v2) or consolidated zarr.json (v3) at the root, the other metadata
    documents are not needed: the archive may leave them out."""
    for name, keep in (("v2", ".zmetadata"), ("v3_consolidated", "zarr.json")):
        original = stores[name]
        path = tmp_path / f"{name}.tar"
        with tarfile.open(path, "w") as archive:
            for file in store_files(original):
                is_root = file.parent == original
                if file.name in METADATA_NAMES and not (is_root and file.name == keep):
                    continue
                archive.add(file, arcname=file.relative_to(original).as_posix())
        assert_same_arrays(original, scan(path).index)


def test_deflated_zip_members_decode_through_a_raw_deflate_codec(stores, tmp_path):
    path = zip_of(stores["v2"], tmp_path / "v2.zip", compression=zipfile.ZIP_DEFLATED)

    index = scan(path).index
    zarray = index.arrays["grids/count"].zarray

    assert zarray["compressor"] == {"id": "refindex.deflate"}
    assert [f["id"] for f in zarray["filters"]] == ["delta", "zstd"]
    assert_same_arrays(stores["v2"], index)


def test_deflated_v3_zip_members_read_exactly(stores, tmp_path):
    path = zip_of(stores["v3"], tmp_path / "v3.zip", compression=zipfile.ZIP_DEFLATED)

    assert_same_arrays(stores["v3"], scan(path).index)


def test_sidecars_of_archives_round_trip_in_both_formats(stores, tmp_path):
    path = zip_of(stores["v3"], tmp_path / "v3.zip", compression=zipfile.ZIP_DEFLATED)
    index = scan(path).index
    for format in ("native", "kerchunk"):
        sidecar = tmp_path / f"v3.{format}.json"
        write_index(index, sidecar, format)
        assert_same_arrays(stores["v3"], sidecar)


def test_later_tar_member_of_the_same_name_wins(tmp_path):
    store = zarr.create_array(str(tmp_path / "a.zarr"), shape=(4,), chunks=(2,), dtype="i4",
                              zarr_format=2, compressors=None)
    store[...] = [1, 2, 3, 4]
    path = tar_of(tmp_path / "a.zarr", tmp_path / "a.tar", top="")
    replacement = tmp_path / "replacement"
    replacement.write_bytes(np.array([7, 8], dtype="<i4").tobytes())
    with tarfile.open(path, "a") as archive:
        archive.add(replacement, arcname="0")

    read = zarr.open_array(refindex.open_store(scan(path).index), mode="r", zarr_format=2)

    assert read[...].tolist() == [7, 8, 3, 4]


def test_hard_links_to_archived_chunks_are_read(tmp_path):
    store = zarr.create_array(str(tmp_path / "a.zarr"), shape=(4,), chunks=(2,), dtype="i4",
                              zarr_format=2, compressors=None)
    store[...] = [5, 6, 5, 6]
    (tmp_path / "a.zarr" / "1").unlink()
    (tmp_path / "a.zarr" / "1").hardlink_to(tmp_path / "a.zarr" / "0")
    path = tar_of(tmp_path / "a.zarr", tmp_path / "a.tar", top="")
    with tarfile.open(path) as archive:
        assert archive.getmember("1").islnk()

    read = zarr.open_array(refindex.open_store(scan(path).index), mode="r", zarr_format=2)

    assert read[...].tolist() == [5, 6, 5, 6]


def test_a_single_array_store_keeps_its_name(tmp_path):
    array = zarr.create_array(str(tmp_path / "image.zarr"), shape=(6,), chunks=(4,),
                              dtype="u1", zarr_format=3)
    array[...] = np.arange(6)

    index = scan(tar_of(tmp_path / "image.zarr", tmp_path / "one.tar", top="image.zarr")).index

    assert list(index.arrays) == ["image.zarr"]
    group = zarr.open_group(refindex.open_store(index), mode="r", zarr_format=2)
    assert group["image.zarr"][...].tolist() == list(range(6))


def test_a_single_array_at_the_archive_top_is_the_root(tmp_path):
    array = zarr.create_array(str(tmp_path / "image.zarr"), shape=(6,), chunks=(4,),
                              dtype="u1", zarr_format=2)
    array[...] = np.arange(6)

    index = scan(tar_of(tmp_path / "image.zarr", tmp_path / "one.tar", top="")).index

    assert list(index.arrays) == [""] and "" not in index.groups
    read = zarr.open_array(refindex.open_store(index), mode="r", zarr_format=2)
    assert read[...].tolist() == list(range(6))


def test_other_files_in_the_archive_are_reported_not_referenced(stores, tmp_path):
    path = tar_of(stores["v2"], tmp_path / "v2.tar")
    readme = tmp_path / "README"
    readme.write_text("about this store")
    with tarfile.open(path, "a") as archive:
        archive.add(readme, arcname="store.zarr/README")
        archive.add(readme, arcname="store.zarr/grids/count/notes.txt")

    result = scan(path)

    assert len(result.skipped) == 1 and "2 member(s)" in result.skipped[0]
    assert "README" in result.skipped[0]


@pytest.mark.parametrize("version", [2, 3])
def test_xarray_reads_an_archived_dataset_as_it_reads_the_store(tmp_path, version):
    ds = xr.Dataset(
        {"t": (("time", "y"), np.arange(12, dtype="f4").reshape(4, 3), {"units": "K"}),
         "masked": (("time",), np.array([0, 1, -9, 3], dtype="i2")),
         "gaps": (("time",), np.array([0.5, -999.0, 2.5, 3.5]))},
        coords={"time": np.arange("2020-01-01", "2020-01-05", dtype="datetime64[D]")
                .astype("datetime64[ns]"), "y": [10.0, 20.0, 30.0]})
    ds.masked.encoding["_FillValue"] = -9
    ds.gaps.encoding["_FillValue"] = -999.0
    store = tmp_path / "ds.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(store, zarr_format=version, consolidated=True)
    sidecar = tmp_path / "ds.refs.json"
    write_index(scan(tar_of(store, tmp_path / "ds.tar")).index, sidecar)

    for options in ({}, {"decode_cf": False}):
        read = xr.open_dataset(sidecar, engine="refindex", **options).load()
        original = xr.open_zarr(store, **options).load()
        assert read.identical(original), options
    assert np.isnan(xr.open_dataset(sidecar, engine="refindex")["masked"].values[2])


def test_cli_scans_an_archive(stores, tmp_path, capsys):
    path = tar_of(stores["v3"], tmp_path / "v3.tar")
    out = tmp_path / "v3.refs.json"

    assert main(["scan", str(path), "-o", str(out)]) == 0

    assert "8 arrays" in capsys.readouterr().err
    assert_same_arrays(stores["v3"], out)


def test_directory_store_references_each_file(stores):
    result = scan(stores["v2_nested"])

    node = result.index.arrays["grids/count"]
    ref = node.chunks.get(node.chunks.flat_index((3,)))
    source = result.index.sources[ref.source]

    assert source.url == str(stores["v2_nested"] / "grids" / "count" / "3")
    assert (ref.offset, ref.length) == (0, source.size)
    assert_same_arrays(stores["v2_nested"], result.index)


def test_directory_store_records_the_url_readers_will_use(stores):
    result = scan(stores["v2_nested"], ScanOptions(url="s3://bucket/v2.zarr/"))

    assert {s.url for s in result.index.sources} >= {"s3://bucket/v2.zarr/grids/count/3"}
    assert all(s.url.startswith("s3://bucket/v2.zarr/") for s in result.index.sources)
