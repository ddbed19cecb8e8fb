"""zarr-python, opening ``http://127.0.0.1:PORT/NAME`` as any HTTP Zarr store, reads every
array of every kind of sidecar exactly — raw and transcoded, as Zarr v2 and as Zarr v3."""

from __future__ import annotations

import warnings

import netCDF4
import numpy as np
import pytest
import zarr

import refindex
from refindex.serve import ServeConfigError, build_app
from refindex.serve.config import make_config
from tests.roundtrip import assert_same_values, expected_values, h5_datasets
from tests.serve.conftest import dataset, serving

HDF5_FILES = ("filters", "standard", "netcdf4", "layouts")


def open_served(server, name: str, zarr_format: int = 2) -> zarr.Group:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's note that fsspec's HTTP store is experimental
        return zarr.open_group(f"{server.url}/{name}", mode="r", zarr_format=zarr_format)


def assert_reads_like_h5py(group: zarr.Group, source, where: str) -> None:
    datasets = h5_datasets(source)
    assert datasets
    for path, dset in datasets.items():
        assert_same_values(expected_values(dset), group[path][...], f"{where}:{path}")


@pytest.mark.parametrize("mode", ["auto", "off", "raw", "gzip", "zstd", "blosc"])
def test_every_hdf5_array_reads_exactly_in_every_transcoding_mode(files, mode):
    with serving(*(dataset(n, files[n], transcode=mode) for n in HDF5_FILES)) as server:
        for name in HDF5_FILES:
            assert_reads_like_h5py(open_served(server, name), files[name].source, name)


def test_auto_serves_only_codecs_every_reader_decodes(files):
    with serving(dataset("filters", files["filters"])) as server:
        group = open_served(server, "filters")
        for path, array in group.arrays():
            metadata = array.metadata
            assert not metadata.filters, path
            if metadata.compressor is not None:
                assert metadata.compressor.codec_id in {"zlib", "gzip", "blosc", "zstd"}, path
        # HDF5's deflate is served as it is stored, said as a compressor
        assert group["gzip"].metadata.compressor.codec_id == "zlib"
        assert group["shuffle_gzip"].metadata.compressor.codec_id == "gzip"


def test_netcdf3_variables_read_like_netcdf4_python(files):
    with serving(dataset("classic", files["netcdf3"])) as server:
        group = open_served(server, "classic")
        with netCDF4.Dataset(files["netcdf3"].source) as nc:
            nc.set_auto_maskandscale(False)
            nc.set_auto_chartostring(False)
            assert sorted(group.array_keys()) == sorted(nc.variables)
            for name, var in nc.variables.items():
                expected = np.asarray(var[...])
                actual = group[name][...]
                assert actual.astype(expected.dtype).tobytes() == expected.tobytes(), name


def test_a_packed_store_reads_like_the_directory_store(files):
    with serving(dataset("cells", files["packed"], transcode="off")) as server:
        group = open_served(server, "cells")
        original = zarr.open_group(files["packed"].source, mode="r", zarr_format=2)
        for path, array in original.arrays():
            served = group[path]
            assert served.attrs.asdict() == array.attrs.asdict(), path
            assert served[...].tobytes() == array[...].tobytes(), path


def test_a_combined_uneven_collection_is_served_retiled(files):
    members = sorted(files["combined"].source)
    raw = []
    for path in members:
        with netCDF4.Dataset(path) as f:
            f.set_auto_maskandscale(False)
            raw.append(f["pr"][:])
    expected = np.concatenate(raw)
    with serving(dataset("years", files["combined"], transcode="gzip")) as server:
        served = open_served(server, "years")["pr"]
        assert served.chunks == (30, 6, 4)
        np.testing.assert_array_equal(served[...], expected)


@pytest.mark.parametrize("mode", ["gzip", "zstd", "blosc", "raw"])
def test_the_zarr_v3_view_reads_exactly(files, mode):
    with serving(dataset("standard", files["standard"], transcode=mode,
                         zarr_formats=(3,))) as server:
        group = open_served(server, "standard", zarr_format=3)
        assert group.metadata.zarr_format == 3
        assert_reads_like_h5py(group, files["standard"].source, f"v3 {mode}")


def test_a_dataset_v3_cannot_say_is_refused_at_start(files):
    config = make_config([dataset("standard", files["standard"], transcode="off",
                                  zarr_formats=(3,))])
    with pytest.raises(ServeConfigError, match="cannot be served as Zarr v3.*zlib"):
        build_app(config)


def test_a_sidecar_on_s3_is_served(files, s3_env, s3_bucket, tmp_path):
    source = s3_env.upload(files["standard"].source, s3_bucket, "standard.h5")
    index = refindex.scan(source).index
    sidecar_url = f"s3://{s3_bucket}/standard.refs.json"
    local = tmp_path / "standard.refs.json"
    refindex.sidecar.write_index(index, local)
    s3_env.upload(local, s3_bucket, "standard.refs.json")
    with serving(refindex.serve.DatasetConfig("remote", sidecar_url)) as server:
        assert_reads_like_h5py(open_served(server, "remote"), files["standard"].source, "s3")


def test_the_v3_root_holds_every_node_so_one_request_opens_the_hierarchy(files):
    with serving(dataset("nc", files["netcdf4"], transcode="gzip",
                         zarr_formats=(3,))) as server:
        group = open_served(server, "nc", zarr_format=3)
        members = group.metadata.consolidated_metadata.metadata
        assert {"temp", "station", "forecast"} <= set(members)
        assert "skill" in members["forecast"].consolidated_metadata.metadata
        assert_reads_like_h5py(group, files["netcdf4"].source, "v3 consolidated")


@pytest.mark.parametrize(("format", "layout", "name"), [
    ("kerchunk", "file", "standard.json"), ("native", "directory", "standard.refs")])
def test_kerchunk_and_directory_sidecars_are_served(files, tmp_path, format, layout, name):
    index = refindex.scan(files["standard"].source).index
    sidecar = tmp_path / name
    refindex.sidecar.write_index(index, sidecar, format, layout=layout, part_size=2)
    with serving(refindex.serve.DatasetConfig("standard", str(sidecar))) as server:
        assert_reads_like_h5py(open_served(server, "standard"), files["standard"].source,
                               f"{format} {layout}")
