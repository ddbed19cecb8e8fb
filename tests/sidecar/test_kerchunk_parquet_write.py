"""kerchunk parquet references written by refindex: read lazily by fsspec's
ReferenceFileSystem under zarr (as kerchunk users read them), equal to what h5py, netCDF4 and
zarr read from the containers; and read back by refindex unchanged."""

from __future__ import annotations

import json

import fsspec
import netCDF4
import numpy as np
import pytest
import zarr
from fsspec.implementations.reference import LazyReferenceMapper

from refindex.errors import SidecarError
from refindex.index import ABSENT, INLINE, ArrayNode, ChunkTable, Index, Source
from refindex.scan import scan
from refindex.sidecar import load_index, write_index
from refindex.sidecar.kerchunk_parquet import write_kerchunk_parquet
from tests.combine import ncfiles
from tests.roundtrip import assert_same_values, expected_values, h5_datasets
from tests.scan import h5files, nc3files
from tests.scan.zarr_stores import array_paths, tar_of, v2_store, v3_store, zip_of
from tests.sidecar.indexes import assert_same_index, zarray

pytest.importorskip("pyarrow")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def fsspec_group(directory) -> zarr.Group:
    """The references opened as kerchunk users open parquet: lazily, record by record."""
    fs = fsspec.filesystem("reference", fo=str(directory), remote_protocol="file",
                           lazy=True, asynchronous=True)
    assert isinstance(fs.references, LazyReferenceMapper)
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    return zarr.open_group(store, mode="r", zarr_format=2)


def written(location, directory, **kwargs):
    index = scan(str(location)).index
    write_kerchunk_parquet(index, directory, **kwargs)
    return index


@pytest.mark.parametrize("factory", [h5files.netcdf4, h5files.standard_codecs, h5files.layouts,
                                     h5files.string_types, h5files.unwritten_chunks])
def test_hdf5_references_read_through_fsspec_as_h5py_reads(factory, tmp_path):
    path = tmp_path / "file.h5"
    factory(path)
    written(path, tmp_path / "refs")
    group = fsspec_group(tmp_path / "refs")
    for name, dset in h5_datasets(path).items():
        assert_same_values(expected_values(dset), group[name][...], name)


def test_netcdf3_references_read_through_fsspec_as_netcdf4_reads(tmp_path):
    path = tmp_path / "file.nc"
    nc3files.every_type(path, "NETCDF3_64BIT_OFFSET")
    written(path, tmp_path / "refs")
    group = fsspec_group(tmp_path / "refs")
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        for name, var in nc.variables.items():
            expected = np.asarray(var[...])
            assert group[name][...].astype(expected.dtype).tobytes() == expected.tobytes(), name


@pytest.mark.parametrize("archive", [tar_of, zip_of])
@pytest.mark.parametrize("version", [2, 3])
def test_zarr_store_references_read_through_fsspec_as_zarr_reads(archive, version, tmp_path):
    store = (v2_store if version == 2 else v3_store)(tmp_path / "store.zarr")
    packed = archive(store, tmp_path / "store.pack", top="")
    written(packed, tmp_path / "refs")
    group = fsspec_group(tmp_path / "refs")
    for path, array in array_paths(store).items():
        values = group[path][...]
        expected = array[...]
        if version == 3 and not values.dtype.isnative:
            values = values.astype(values.dtype.newbyteorder("="))
        assert_same_values(expected, values, path)


def test_many_records_with_absent_and_inline_chunks(tmp_path):
    values = np.arange(60 * 7, dtype="<i4").reshape(60, 7)
    grid = (20, 1)
    table = ChunkTable(grid)
    source_file = tmp_path / "data.bin"
    source_file.write_bytes(values.tobytes())
    rows = values.nbytes // 20
    for i in range(20):
        if i % 5 == 3:
            continue  # absent: fill value
        if i % 5 == 4:
            table.set_inline(i, values[3 * i:3 * i + 3].tobytes())
        else:
            table.set(i, 0, i * rows, rows)
    index = Index(sources=[Source(str(source_file), source_file.stat().st_size)])
    index.arrays["v"] = ArrayNode("v", {**zarray([60, 7], [3, 7]), "fill_value": -5}, {},
                                  table)
    write_kerchunk_parquet(index, tmp_path / "refs", record_size=4)

    assert sorted(p.name for p in (tmp_path / "refs" / "v").iterdir()) == [
        f"refs.{n}.parq" for n in range(5)]
    expected = values.copy()
    for i in range(3, 20, 5):
        expected[3 * i:3 * i + 3] = -5
    np.testing.assert_array_equal(fsspec_group(tmp_path / "refs")["v"][...], expected)
    back = load_index(tmp_path / "refs").arrays["v"].chunks
    assert (back.source[3::5] == ABSENT).all() and (back.source[4::5] == INLINE).all()


def test_records_without_chunks_are_not_written(tmp_path):
    table = ChunkTable((10,))
    table.set(9, 0, 0, 4)
    index = Index(sources=[Source("/nowhere/x.bin", 4)])
    index.arrays["v"] = ArrayNode("v", zarray([10], [1]), {}, table)
    write_kerchunk_parquet(index, tmp_path / "refs", record_size=3)
    assert sorted(p.name for p in (tmp_path / "refs" / "v").iterdir()) == ["refs.3.parq"]


def test_refindex_reads_its_parquet_back_with_the_sources_identities(tmp_path):
    path = tmp_path / "ocean.nc"
    h5files.netcdf4(path)
    index = written(path, tmp_path / "refs", record_size=5)
    back = load_index(tmp_path / "refs")
    assert back.sources == index.sources  # sizes and times kept: a changed source is refused
    assert_same_index(back, index)


def test_chunk_keys_use_dots_whatever_the_scan_recorded(tmp_path):
    store = v2_store(tmp_path / "store.zarr", separator="/")
    written(tar_of(store, tmp_path / "s.tar", top=""), tmp_path / "refs")
    metadata = json.loads((tmp_path / "refs" / ".zmetadata").read_bytes())["metadata"]
    separators = {v.get("dimension_separator") for k, v in metadata.items()
                  if k.endswith(".zarray")}
    assert separators == {"."}
    group = fsspec_group(tmp_path / "refs")
    for path, array in array_paths(store).items():
        assert_same_values(array[...], group[path][...], path)


def test_irregular_grids_are_refused_by_name(tmp_path):
    paths = [tmp_path / "a.nc", tmp_path / "b.nc"]
    ncfiles.one_file(paths[0], 0, length=3, chunk=2)
    ncfiles.one_file(paths[1], 3, length=3, chunk=2)
    from refindex.combine import combine

    index = combine([scan(str(p)).index for p in paths])
    with pytest.raises(SidecarError, match="'tas'.*differing"):
        write_kerchunk_parquet(index, tmp_path / "refs")


def test_write_index_and_convert_take_the_format_name(tmp_path):
    path = tmp_path / "a.nc"
    nc3files.every_type(path, "NETCDF3_CLASSIC")
    index = scan(str(path)).index
    write_index(index, tmp_path / "refs", "kerchunk-parquet")
    assert (tmp_path / "refs" / ".zmetadata").is_file()
    with pytest.raises(ValueError, match="directory"):
        write_index(index, tmp_path / "refs2", "kerchunk-parquet", layout="file")


def test_a_lazily_loaded_native_directory_round_trips_through_parquet(tmp_path):
    from tests.sidecar.indexes import grid_index

    index = grid_index(10_000, sources=3)
    write_index(index, tmp_path / "native", layout="directory", part_size=1000)
    lazy = load_index(tmp_path / "native")
    write_kerchunk_parquet(lazy, tmp_path / "refs", record_size=1500)
    assert_same_index(load_index(tmp_path / "refs"), index)


def test_foreign_json_keys_are_kept_in_zmetadata_and_others_refused(tmp_path):
    from refindex.index import ChunkRef

    index = Index()
    index.extra["notes/.zinfo"] = ChunkRef(INLINE, data=b'{"by": "hand"}')
    write_kerchunk_parquet(index, tmp_path / "refs")
    metadata = json.loads((tmp_path / "refs" / ".zmetadata").read_bytes())["metadata"]
    assert metadata["notes/.zinfo"] == {"by": "hand"}
    index.extra["stray"] = ChunkRef(INLINE, data=b"\x00\x01")
    with pytest.raises(SidecarError, match="'stray'"):
        write_kerchunk_parquet(index, tmp_path / "refs2")


def test_the_cli_converts_a_sidecar_to_parquet_references(tmp_path):
    from refindex.cli import main

    path = tmp_path / "ocean.nc"
    h5files.netcdf4(path)
    write_index(scan(str(path)).index, tmp_path / "ocean.json")
    assert main(["convert", str(tmp_path / "ocean.json"), str(tmp_path / "refs"),
                 "--format", "kerchunk-parquet"]) == 0
    group = fsspec_group(tmp_path / "refs")
    for name, dset in h5_datasets(path).items():
        assert_same_values(expected_values(dset), group[name][...], name)
