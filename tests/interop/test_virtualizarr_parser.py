"""refindex.virtualizarr.Parser's own behaviours: what it takes (containers of every kind,
sidecars), what it makes (columnar manifests, loaded inline arrays), what it refuses by
name, and ``open_virtual_mfdataset`` over several files."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import virtualizarr as vz
import xarray as xr
import zarr
from virtualizarr.manifests import ManifestArray
from zarr.codecs import TransposeCodec

import refindex
from refindex.combine import CombineOptions, combine
from refindex.errors import UnsupportedFeatureError
from refindex.scan import ScanOptions
from refindex.virtualizarr import InlineManifestStore, Parser
from tests.combine import ncfiles
from tests.interop.virtual import (
    RAW,
    assert_round_trips,
    assert_same,
    assert_same_values,
    loaded,
    local_registry,
    open_virtual,
    through_icechunk,
    through_kerchunk,
    url_of,
)
from tests.scan.zarr_stores import array_paths, tar_of, v2_store, v3_store, zip_of


def test_importing_refindex_imports_no_virtualizarr():
    code = ("import sys, refindex, refindex.virtualizarr; "
            "print('virtualizarr' in sys.modules, 'obstore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


def _chunked(path, **kwargs):
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.arange(400.0).reshape(20, 20), chunks=(5, 5),
                         compression="gzip", **kwargs)
        f["data"][:5, :5] = 0  # still written: a chunk of zeros
    return path


def test_manifests_are_columns_of_the_chunk_table(tmp_path):
    path = _chunked(tmp_path / "a.h5")
    store = Parser()(url_of(path), local_registry())
    manifest = store._group.arrays["data"].manifest
    index = refindex.scan(path).index
    table = index.arrays["data"].chunks
    assert manifest.shape_chunk_grid == (4, 4)
    assert manifest._paths.dtype == np.dtypes.StringDType()
    assert set(manifest._paths.ravel().tolist()) == {f"file://{path}"}
    assert manifest._offsets.ravel().tolist() == table.offset.tolist()
    assert manifest._lengths.ravel().tolist() == table.length.tolist()


def test_chunks_never_written_are_missing_entries(tmp_path):
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=(20,), chunks=(5,), dtype="i2", fillvalue=-7)
        f["data"][5:10] = 3
    vds = assert_round_trips(path, tmp_path)
    assert vds["data"].data.manifest._paths.tolist() == ["", f"file://{path}", "", ""]


def test_inline_arrays_are_loaded_whatever_loadable_variables_says(tmp_path):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=np.array(["a", "bcd"], dtype=h5py.string_dtype()))
        f.create_dataset("x", data=np.arange(2.0))
    store = Parser()(url_of(path), local_registry())
    assert isinstance(store, InlineManifestStore) and store.inline_arrays == {"names"}
    for loadable in (None, [], ["x"]):
        vds = store.to_virtual_dataset(loadable_variables=loadable)
        assert isinstance(vds["names"].variable._data, np.ndarray) or \
            vds["names"].values.tolist() == ["a", "bcd"]
    assert vds["names"].values.tolist() == ["a", "bcd"]
    assert isinstance(vds["x"].values, np.ndarray)


def test_coordinates_stay_references_by_default(tmp_path):
    path = tmp_path / "coord.nc"
    xr.Dataset({"v": ("x", np.arange(4.0))}, coords={"x": np.arange(4)}).to_netcdf(
        path, engine="h5netcdf")
    store = Parser()(url_of(path), local_registry())
    assert store.inline_arrays == frozenset()
    assert store._group.arrays["x"].manifest._paths.tolist() == [f"file://{path}"]


def test_arrays_left_out_by_the_scan_are_refused_by_name(tmp_path):
    path = tmp_path / "left.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=np.array(["a", "b"], dtype=h5py.string_dtype()))
        f.create_dataset("x", data=np.arange(2.0))
    parser = Parser(scan_options=ScanOptions(max_inline=0, inline_coords=0))
    with pytest.raises(UnsupportedFeatureError, match=r"left\.h5: dataset '/names': left out"):
        parser(url_of(path), local_registry())
    keep = Parser(drop_variables=["names"], scan_options=parser.scan_options)
    assert list(open_virtual(path, parser=keep).variables) == ["x"]


def test_uneven_combined_arrays_are_refused_by_name(tmp_path):
    paths = ncfiles.yearly(tmp_path / "yearly", years=(2000, 2001), chunk=30)
    index = combine([refindex.scan(p).index for p in sorted(paths)],
                    CombineOptions(concat_dims=("time",)))
    sidecar = tmp_path / "years.refs.json"
    refindex.write_index(index, sidecar)
    with pytest.raises(UnsupportedFeatureError) as caught:
        Parser()(url_of(sidecar), local_registry())
    assert "years.refs.json" in str(caught.value) and "uneven" in str(caught.value)


@pytest.mark.parametrize("form", ["native", "directory", "kerchunk"])
def test_a_sidecar_reads_as_the_file_it_describes(form, tmp_path):
    path = _chunked(tmp_path / "a.h5", shuffle=True)
    sidecar = tmp_path / ("a.refs" if form == "directory" else "a.refs.json")
    refindex.write_index(refindex.scan(path).index, sidecar,
                         format="kerchunk" if form == "kerchunk" else "native",
                         layout="directory" if form == "directory" else "file")
    from_sidecar = Parser()(url_of(sidecar), local_registry())
    scanned = Parser()(url_of(path), local_registry())
    assert from_sidecar._group.arrays["data"].manifest == scanned._group.arrays["data"].manifest
    vds = from_sidecar.to_virtual_dataset()
    with h5py.File(path) as f:
        assert_same_values(loaded(vds, from_sidecar)["data"].values, f["data"][()])
        assert_same_values(through_kerchunk(vds, tmp_path)["data"].values, f["data"][()])


def test_kerchunk_parquet_references_read_as_the_file(tmp_path):
    path = _chunked(tmp_path / "a.h5", shuffle=True)
    vds = open_virtual(path)
    vds.vz.to_kerchunk(str(tmp_path / "a.parq"), format="parquet")
    store = Parser()(url_of(tmp_path / "a.parq"), local_registry())
    assert store._group.arrays["data"].manifest == vds["data"].data.manifest
    with h5py.File(path) as f:
        assert_same_values(loaded(vds, store)["data"].values, f["data"][()])


def _assert_zarr_store_round_trips(container, original, tmp_path):
    store = Parser()(url_of(container), local_registry())
    vds = store.to_virtual_dataset()
    expected = {path: array[...] for path, array in array_paths(original).items()}
    via_manifests = zarr.open_group(store, mode="r", zarr_format=3)
    # Fortran order (a v3 transpose) has no form in VirtualiZarr's kerchunk writer: it raises.
    transposed = [name for name, variable in vds.variables.items()
                  if isinstance(variable.data, ManifestArray)
                  and isinstance(variable.data.metadata.codecs[0], TransposeCodec)]
    if transposed:
        with pytest.raises(Exception, match="transpose"):
            through_kerchunk(vds[transposed], tmp_path)
    kerchunked = through_kerchunk(vds.drop_vars(transposed), tmp_path)
    icechunked = through_icechunk(vds, tmp_path / "ice", container.parent)
    for path, values in expected.items():
        assert_same_values(via_manifests[path][...], values, path)
        if "/" not in path:
            assert_same_values(icechunked[path].values, values, path)
            if path not in transposed and values.ndim:  # 0-d: see the test below
                assert_same_values(kerchunked[path].values, values, path)


@pytest.mark.parametrize("kind", ["tar", "zip", "directory"])
def test_zarr_v2_stores_in_archives_and_directories(kind, tmp_path):
    original = v2_store(tmp_path / "v2.zarr")
    container = {"tar": lambda: tar_of(original, tmp_path / "v2.tar"),
                 "zip": lambda: zip_of(original, tmp_path / "v2.zip"),
                 "directory": lambda: original}[kind]()
    _assert_zarr_store_round_trips(container, original, tmp_path)


def test_sharded_zarr_v3_store_in_a_tar(tmp_path):
    original = v3_store(tmp_path / "v3.zarr", sharded=True)
    _assert_zarr_store_round_trips(tar_of(original, tmp_path / "v3.tar"), original, tmp_path)


def test_open_virtual_mfdataset_over_daily_files(tmp_path):
    paths = sorted(ncfiles.daily(tmp_path / "daily", days=4))
    vds = vz.open_virtual_mfdataset([url_of(p) for p in paths], registry=local_registry(),
                                    parser=Parser(), combine="nested", concat_dim="time",
                                    coords="minimal", compat="override")
    expected = xr.open_mfdataset(paths, engine="h5netcdf", combine="nested",
                                 concat_dim="time", coords="minimal", compat="override",
                                 data_vars="all", **RAW).load()
    assert vds["tas"].data.manifest.shape_chunk_grid[0] == 4
    assert_same(through_kerchunk(vds, tmp_path), expected)
    assert_same(through_icechunk(vds, tmp_path, tmp_path / "daily"), expected)


@pytest.mark.xfail(strict=True, reason="VirtualiZarr 2.5's kerchunk writer keys the one chunk "
                   "of a 0-d array 'name/' instead of 'name/0', so readers see the fill value")
def test_virtualizarr_kerchunk_output_keeps_scalars(tmp_path):
    path = tmp_path / "scalar.h5"
    with h5py.File(path, "w") as f:
        f["value"] = 3.5
    vds = open_virtual(path)
    assert float(through_kerchunk(vds, tmp_path)["value"]) == 3.5


def test_groups_a_kerchunk_sidecar_leaves_implicit_are_kept(tmp_path):
    path = tmp_path / "deep.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("a/b/data", data=np.arange(6.0))
    index = refindex.scan(path).index
    index.groups = {"": {}}  # as a foreign sidecar that names no groups
    sidecar = tmp_path / "deep.refs.json"
    refindex.write_index(index, sidecar, format="kerchunk")
    store = Parser(group="a/b")(url_of(sidecar), local_registry())
    with h5py.File(path) as f:
        assert_same_values(loaded(store.to_virtual_dataset(), store)["data"].values,
                           f["a/b/data"][()])
    assert "a" in Parser()(url_of(sidecar), local_registry())._group.groups


def test_containers_recognised_by_content_need_nothing_of_the_parser(tmp_path):
    # MRC: a container kind added after the parser; scan() recognises it by content.
    from tests.scan import mrcfiles

    path = tmp_path / "volume.mrc"
    data = mrcfiles.values("<f4", (6, 8, 10))
    mrcfiles.write(path, data)
    store = Parser()(url_of(path), local_registry())
    vds = store.to_virtual_dataset()
    assert_same_values(loaded(vds, store)["data"].values, mrcfiles.read(path))
    assert_same_values(through_icechunk(vds, tmp_path, tmp_path)["data"].values,
                       mrcfiles.read(path))


@pytest.mark.parametrize("compression, predictor", [("lzw", 2), ("packbits", None),
                                                     ("deflate", 3)])
def test_tiff_codecs_virtualize_through_their_zarr_v3_wrappers(tmp_path, compression,
                                                               predictor):
    # TIFF sidecars name imagecodecs' codecs and refindex.tiff_predictor: each has a Zarr v3
    # name (numcodecs.imagecodecs_lzw, ...), so VirtualiZarr and Icechunk read them.
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / f"{compression}.tif"
    dtype = "<f4" if predictor == 3 else "<u2"
    data = (np.arange(40 * 48).reshape(40, 48) % 977).astype(dtype)
    tifffile.imwrite(path, data, tile=(16, 16), compression=compression, predictor=predictor)
    store = Parser()(url_of(path), local_registry())
    vds = store.to_virtual_dataset()
    name = next(iter(vds.data_vars))
    assert_same_values(loaded(vds, store)[name].values, tifffile.imread(path))
    assert_same_values(through_icechunk(vds, tmp_path, tmp_path)[name].values,
                       tifffile.imread(path))


def test_local_paths_with_spaces_and_accents(tmp_path):
    # VirtualiZarr gives the parser percent-encoded file URIs; its ManifestStore and kerchunk
    # writer read the path after file:// as it is, so the manifests hold it unencoded.
    directory = tmp_path / "données brutes"
    directory.mkdir()
    path = _chunked(directory / "a b.h5")
    vds = assert_round_trips(path, directory)
    assert vds["data"].data.manifest._paths[0, 0] == f"file://{path}"


def test_a_datatree_loads_inline_arrays_and_the_coordinates_of_every_group(tmp_path):
    path = tmp_path / "tree.nc"
    with h5py.File(path, "w") as f:
        group = f.create_group("g")
        group.create_dataset("names", data=np.array(["a", "bcd"], dtype=h5py.string_dtype()))
        group.create_dataset("x", data=np.arange(10.0))
        group["x"].make_scale("x")
        group.create_dataset("v", data=np.arange(10.0), chunks=(5,))
        group["v"].dims[0].attach_scale(group["x"])
    tree = vz.open_virtual_datatree(url_of(path), registry=local_registry(), parser=Parser())
    assert tree["g/names"].values.tolist() == ["a", "bcd"]
    assert_same_values(tree["g/x"].values, np.arange(10.0))  # loaded: a dimension coordinate
    assert isinstance(tree["g/v"].data, ManifestArray)
