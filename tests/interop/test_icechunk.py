"""Indexes exported into Icechunk repositories and read back with icechunk + zarr (and xarray):
every value equals what h5py, netCDF4 or zarr read from the containers, a changed source is
refused through the recorded checksum, and a grown collection is appended."""

from __future__ import annotations

import os
import shutil
import time
import warnings

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.combine import combine
from refindex.errors import UnsupportedFeatureError
from refindex.export import IcechunkExportError, IcechunkOptions, open_icechunk, to_icechunk
from refindex.index import ArrayNode, ChunkTable, Index, Source
from refindex.io.options import ReadOptions
from refindex.scan import scan
from tests.combine import ncfiles
from tests.roundtrip import assert_same_values, expected_values, h5_datasets
from tests.scan import h5files, nc3files
from tests.scan.zarr_stores import array_paths, tar_of, v2_store, v3_store, zip_of

icechunk = pytest.importorskip("icechunk")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def read_group(repository, branch: str = "main", options: ReadOptions | None = None):
    repo = open_icechunk(str(repository), options)
    return zarr.open_group(repo.readonly_session(branch).store, mode="r", zarr_format=3)


def native(values: np.ndarray) -> np.ndarray:
    """Zarr v3 hands out native byte order."""
    values = np.asarray(values)
    if values.dtype.fields is None and not values.dtype.isnative:
        return values.astype(values.dtype.newbyteorder("="))
    return values


def export(location, repository, **options):
    index = scan(str(location)).index
    return index, to_icechunk(index, str(repository), IcechunkOptions(**options))


def assert_matches_h5py(h5_path, repository, skipped) -> int:
    group = read_group(repository)
    compared = 0
    for path, dset in h5_datasets(h5_path).items():
        if path in skipped:
            continue
        assert_same_values(native(expected_values(dset)), group[path][...], path)
        compared += 1
    return compared


# --- every container kind, round trip ------------------------------------------------------


@pytest.mark.parametrize("factory", [h5files.netcdf4, h5files.standard_codecs, h5files.layouts,
                                     h5files.numeric_types, h5files.unwritten_chunks])
def test_hdf5_exported_reads_as_h5py_reads(factory, tmp_path):
    path = tmp_path / "file.h5"
    factory(path)
    index, report = export(path, tmp_path / "repo", on_unsupported="skip")

    compared = assert_matches_h5py(path, tmp_path / "repo", report.skipped)

    assert compared == report.arrays >= 1
    assert report.virtual + report.inline >= 1


def test_skipped_arrays_are_named_with_their_reason(tmp_path):
    path = tmp_path / "strings.h5"
    h5files.string_types(path)
    index, report = export(path, tmp_path / "repo", on_unsupported="skip")
    assert report.skipped
    assert all("Zarr v3" in reason for reason in report.skipped.values())
    assert report.arrays + len(report.skipped) == len(index.arrays)


def test_an_array_without_a_v3_form_stops_the_export_by_name(tmp_path):
    path = tmp_path / "strings.h5"
    h5files.string_types(path)
    index = scan(str(path)).index
    with pytest.raises(UnsupportedFeatureError, match=r"dataset '/\w+'.*variable-length"):
        to_icechunk(index, str(tmp_path / "repo"))
    assert not (tmp_path / "repo").exists()


def test_a_codec_without_a_v3_form_is_refused_by_name(tmp_path):
    table = ChunkTable((1,))
    table.set(0, 0, 0, 4)
    index = Index(sources=[Source(str(tmp_path / "x.bin"), 4)])
    index.arrays["v"] = ArrayNode("v", {"zarr_format": 2, "shape": [1], "chunks": [1],
                                        "dtype": "<i4", "compressor": {"id": "no-such-codec"},
                                        "filters": None, "fill_value": 0, "order": "C"},
                                  {}, table)
    with pytest.raises(UnsupportedFeatureError, match=r"'/v'.*'no-such-codec'.*Zarr v3"):
        to_icechunk(index, str(tmp_path / "repo"))


def test_lzf_is_exported_when_zarr_has_a_v3_codec_for_it_else_refused(tmp_path):
    from zarr.registry import get_codec_class

    path = tmp_path / "lzf.h5"
    values = np.arange(100_000, dtype="i4") // 7
    with h5py.File(path, "w") as f:
        f.create_dataset("packed", data=values, chunks=(10_000,), compression="lzf")
    index = scan(str(path)).index
    try:
        get_codec_class("numcodecs.refindex.lzf")
    except (KeyError, ImportError):
        with pytest.raises(UnsupportedFeatureError, match=r"'/packed'.*refindex\.lzf"):
            to_icechunk(index, str(tmp_path / "repo"))
        return
    to_icechunk(index, str(tmp_path / "repo"))
    np.testing.assert_array_equal(read_group(tmp_path / "repo")["packed"][...], values)


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET"])
def test_netcdf3_exported_reads_as_netcdf4_reads(fmt, tmp_path):
    path = tmp_path / "file.nc"
    nc3files.every_type(path, fmt)
    export(path, tmp_path / "repo")
    group = read_group(tmp_path / "repo")
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        assert sorted(group.array_keys()) == sorted(nc.variables)
        for name, var in nc.variables.items():
            expected = np.asarray(var[...])
            actual = group[name][...]
            assert actual.shape == expected.shape, name
            assert actual.astype(expected.dtype).tobytes() == expected.tobytes(), name
            assert list(group[name].metadata.dimension_names) == list(var.dimensions), name


@pytest.mark.parametrize("archive", [tar_of, zip_of])
@pytest.mark.parametrize("version", [2, 3])
def test_zarr_stores_in_archives_exported_read_the_same(archive, version, tmp_path):
    store = (v2_store if version == 2 else v3_store)(tmp_path / "store.zarr")
    packed = archive(store, tmp_path / f"store.{archive.__name__[:3]}", top="")
    index, report = export(packed, tmp_path / "repo", on_unsupported="skip")
    group = read_group(tmp_path / "repo")
    compared = 0
    for path, array in array_paths(store).items():
        if path in report.skipped:
            continue
        assert_same_values(native(array[...]), native(group[path][...]), path)
        compared += 1
    assert compared == report.arrays >= 3


def test_xarray_opens_the_exported_repository(tmp_path):
    path = tmp_path / "ocean.nc"
    h5files.netcdf4(path)
    export(path, tmp_path / "repo", on_unsupported="skip")
    store = open_icechunk(str(tmp_path / "repo")).readonly_session("main").store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = xr.open_zarr(store, consolidated=False, zarr_format=3, decode_cf=False)
        expected = xr.open_dataset(path, engine="netcdf4", decode_cf=False)
    for name in ds.data_vars:
        assert ds[name].dims == expected[name].dims, name
        np.testing.assert_array_equal(ds[name].values, expected[name].values, err_msg=name)


def test_inline_chunks_are_real_chunks(tmp_path):
    path = tmp_path / "compact.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("small", data=np.arange(6, dtype="<i2"))  # contiguous: inlined? no
        space = h5py.h5s.create_simple((4,))
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        h5py.h5d.create(f.id, b"compact", h5py.h5t.STD_I32LE, space, plist).write(
            h5py.h5s.ALL, h5py.h5s.ALL, np.array([4, 3, 2, 1], dtype="<i4"))
    index, report = export(path, tmp_path / "repo")
    assert report.inline >= 1
    os.remove(path)  # inline chunks need no source
    np.testing.assert_array_equal(read_group(tmp_path / "repo")["compact"][...], [4, 3, 2, 1])


# --- changed sources are refused -----------------------------------------------------------


def test_a_source_overwritten_after_export_is_refused_by_icechunk(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(64, dtype="f8").reshape(8, 8), chunks=(4, 4))
    export(path, tmp_path / "repo")
    group = read_group(tmp_path / "repo")
    np.testing.assert_array_equal(group["x"][...], np.arange(64.0).reshape(8, 8))

    with h5py.File(path, "r+") as f:
        f["x"][0, 0] = -1.0
    later = time.time() + 5  # Icechunk compares whole seconds
    os.utime(path, (later, later))

    with pytest.raises(icechunk.IcechunkError, match="checksum"):
        read_group(tmp_path / "repo")["x"][...]


def test_an_s3_source_replaced_after_export_is_refused_through_its_etag(s3_env, s3_bucket,
                                                                        tmp_path):
    path = tmp_path / "a.h5"
    values = np.arange(400, dtype="<i4").reshape(20, 20)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(10, 10), compression="gzip")
    url = s3_env.upload(path, s3_bucket, "data/a.h5")
    index = scan(url).index
    assert index.sources[0].etag
    report = to_icechunk(index, str(tmp_path / "repo"))
    assert report.virtual == 4
    np.testing.assert_array_equal(read_group(tmp_path / "repo")["x"][...], values)

    with h5py.File(path, "r+") as f:
        f["x"][0, 0] = -1
    s3_env.upload(path, s3_bucket, "data/a.h5")

    with pytest.raises(icechunk.IcechunkError, match="checksum"):
        read_group(tmp_path / "repo")["x"][...]


def test_a_repository_in_s3_with_sources_in_s3(s3_env, s3_bucket, tmp_path):
    path = tmp_path / "ocean.nc"
    h5files.netcdf4(path)
    url = s3_env.upload(path, s3_bucket, "ocean.nc")
    repository = f"s3://{s3_bucket}/repos/ocean"
    report = to_icechunk(scan(url).index, repository, IcechunkOptions(on_unsupported="skip"))
    assert report.virtual >= 1
    assert_matches_h5py(path, repository, report.skipped)


# --- branches, commits, collections --------------------------------------------------------


def test_branch_and_message_are_those_asked_for(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(10))
    export(path, tmp_path / "repo")
    export(path, tmp_path / "repo", branch="daily", message="first daily")
    repo = open_icechunk(str(tmp_path / "repo"))
    assert "daily" in repo.list_branches()
    assert next(iter(repo.ancestry(branch="daily"))).message == "first daily"


def test_a_grown_collection_is_appended_along_its_dimension(tmp_path):
    paths = sorted(ncfiles.daily(tmp_path / "days", days=5))
    repository = str(tmp_path / "repo")
    first = to_icechunk(combine([scan(str(p)).index for p in paths[:3]]), repository)
    assert not first.appended

    index = combine([scan(str(p)).index for p in paths])
    grown = to_icechunk(index, repository)

    per_day = len(index.arrays["tas"].chunks) // 5
    assert grown.appended["tas"] == 2 * per_day  # the new days' chunks; the first three kept
    group = read_group(repository)
    expected = xr.open_mfdataset(paths, engine="netcdf4", decode_cf=False, combine="by_coords")
    np.testing.assert_array_equal(group["tas"][...], expected["tas"].values)
    np.testing.assert_array_equal(group["time"][...], expected["time"].values)


def test_without_append_every_chunk_is_written_on_a_new_branch(tmp_path):
    paths = sorted(ncfiles.daily(tmp_path / "days", days=3))
    repository = str(tmp_path / "repo")
    to_icechunk(combine([scan(str(p)).index for p in paths[:2]]), repository)
    index = combine([scan(str(p)).index for p in paths])
    report = to_icechunk(index, repository, IcechunkOptions(branch="all", append=False))
    assert not report.appended
    assert report.virtual + report.inline == sum(
        int((node.chunks.source != -1).sum()) for node in index.arrays.values())
    assert read_group(repository, "all")["tas"].shape[0] == 3
    assert read_group(repository, "main")["tas"].shape[0] == 2


def test_a_changed_member_is_written_anew_not_appended(tmp_path):
    paths = sorted(ncfiles.daily(tmp_path / "days", days=4))
    repository = str(tmp_path / "repo")
    to_icechunk(combine([scan(str(p)).index for p in paths[1:3]]), repository)
    # An earlier day arrives: the chunks the branch holds no longer begin the collection.
    report = to_icechunk(combine([scan(str(p)).index for p in paths]), repository)
    assert "tas" not in report.appended
    expected = xr.open_mfdataset(paths, engine="netcdf4", decode_cf=False, combine="by_coords")
    np.testing.assert_array_equal(read_group(repository)["tas"][...], expected["tas"].values)


def test_an_irregular_grid_is_refused_by_name(tmp_path):
    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    ncfiles.one_file(paths[0], 0, length=3, chunk=2)
    ncfiles.one_file(paths[1], 3, length=3, chunk=2)
    index = combine([scan(str(p)).index for p in paths])
    assert any(node.irregular for node in index.arrays.values())
    with pytest.raises(UnsupportedFeatureError, match="regular chunk grid"):
        to_icechunk(index, str(tmp_path / "repo"))


def test_the_cli_exports_a_sidecar(tmp_path):
    from refindex.cli import main

    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(100.0).reshape(10, 10), chunks=(5, 5))
    refindex.write_index(scan(str(path)).index, tmp_path / "a.json")
    code = main(["convert", str(tmp_path / "a.json"), str(tmp_path / "repo"), "--format",
                 "icechunk", "--branch", "b1", "-m", "from the cli"])
    assert code == 0
    np.testing.assert_array_equal(read_group(tmp_path / "repo", "b1")["x"][...],
                                  np.arange(100.0).reshape(10, 10))


def test_a_repository_url_of_another_scheme_is_refused(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(10))
    with pytest.raises(IcechunkExportError, match="local path or an s3://"):
        to_icechunk(scan(str(path)).index, "gs://bucket/repo")


def test_batches_smaller_than_the_table_write_every_chunk(tmp_path):
    path = tmp_path / "many.h5"
    values = np.arange(50 * 40, dtype="<u2").reshape(50, 40)
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(3, 7))
    index, report = export(path, tmp_path / "repo", batch_size=7)
    assert report.virtual == len(index.arrays["x"].chunks)
    np.testing.assert_array_equal(read_group(tmp_path / "repo")["x"][...], values)
    shutil.rmtree(tmp_path / "repo")


def test_local_sources_in_different_top_directories_get_a_container_each(tmp_path):
    from refindex.export.sources import ExportSource, container_prefixes

    sources = [ExportSource(f"file://{p}", 1, None, None)
               for p in ("/data/a/x.h5", "/data/b/y.h5", "/scratch/z.h5")]
    assert container_prefixes(sources) == ["file:///data/", "file:///scratch/"]


def test_a_commit_that_conflicts_with_another_writer_is_an_export_error(tmp_path):
    from refindex.export.icechunk import _commit

    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(10))
    export(path, tmp_path / "repo")
    repo = open_icechunk(str(tmp_path / "repo"))
    late, early = repo.writable_session("main"), repo.writable_session("main")
    zarr.open_group(early.store).attrs["by"] = "early"
    early.commit("early")
    zarr.open_group(late.store).attrs["by"] = "late"
    with pytest.raises(IcechunkExportError, match="branch 'main'.*another writer"):
        _commit(late, "late", {}, str(tmp_path / "repo"), "main")


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"branch": ""},
                                 {"on_unsupported": "ignore"}])
def test_invalid_options_are_refused_when_made(bad):
    with pytest.raises(ValueError):
        IcechunkOptions(**bad)
