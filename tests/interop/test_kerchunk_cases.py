"""The HDF5 cases of kerchunk's own tests (kerchunk/tests/test_hdf.py), made here, through
refindex.virtualizarr.Parser: times, variable-length strings, records with strings, compact
datasets, compression filters (including those kerchunk refuses) and links."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np
import pytest
import xarray as xr

from refindex.errors import UnsupportedFeatureError
from refindex.virtualizarr import Parser
from tests.interop.virtual import (
    assert_round_trips,
    local_registry,
    open_virtual,
    url_of,
)

TEXT = "the change of water into water vapour"


def test_times_decode_as_the_dataset_written(tmp_path):
    lat = xr.DataArray(np.linspace(-90, 90, 10), dims=["lat"], name="lat")
    lon = xr.DataArray(np.linspace(-90, 90, 10), dims=["lon"], name="lon")
    time = xr.DataArray(np.arange(-631108800000000000, -630158390000000000,
                                  86400000000000).view("datetime64[ns]"), dims=["time"],
                        name="time", attrs={"axis": "T", "long_name": "time",
                                            "standard_name": "time"})
    x1 = xr.DataArray(np.zeros((12, 10, 10)), dims=["time", "lat", "lon"],
                      coords={"time": time, "lat": lat, "lon": lon}, name="prcp")
    path = tmp_path / "x1.nc"
    x1.to_netcdf(path, engine="h5netcdf")
    assert_round_trips(path, tmp_path)
    vds = open_virtual(path, loadable_variables=["prcp", "time", "lat", "lon"],
                       decode_times=True)
    xr.testing.assert_equal(vds.load(), x1.to_dataset())


def test_variable_length_strings_are_loaded(tmp_path):
    path = tmp_path / "vlen.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("vlen_str", data=np.array([TEXT, "", ""], dtype=h5py.string_dtype()))
    vds = assert_round_trips(path, tmp_path)
    # Loaded even though nothing asked for it: a manifest cannot reference the strings.
    assert vds["vlen_str"].values.tolist() == [TEXT, "", ""]
    assert open_virtual(path, loadable_variables=[])["vlen_str"].values[0] == TEXT


def test_records_with_strings_are_refused_by_name(tmp_path):
    path = tmp_path / "vlen2.h5"
    kind = np.dtype([("ints", "i4"), ("strs", h5py.string_dtype())])
    with h5py.File(path, "w") as f:
        f.create_dataset("vlen_str", data=np.array([(10, "water"), (0, "")], dtype=kind))
        f.create_dataset("other", data=np.arange(3))
    with pytest.raises(UnsupportedFeatureError) as caught:
        Parser()(url_of(path), local_registry())
    message = str(caught.value)
    assert "vlen2.h5" in message and "/vlen_str" in message and "refindex.objects" in message
    assert "drop_variables=['vlen_str']" in message
    vds = open_virtual(path, parser=Parser(drop_variables=["vlen_str"]))
    assert list(vds.variables) == ["other"]


def test_compact_datasets_are_loaded(tmp_path):
    path = tmp_path / "compact.h5"
    with h5py.File(path, "w") as f:
        space = h5py.h5s.create_simple((6,))
        plist = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        plist.set_layout(h5py.h5d.COMPACT)
        dataset = h5py.h5d.create(f.id, b"epoch", h5py.h5t.IEEE_F64LE, space, plist)
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.full(6, 1.19880002e09))
    vds = assert_round_trips(path, tmp_path)
    assert np.allclose(vds["epoch"].values, 1.19880002e09)


COMPRESSION = {  # filters, and the Zarr v3 codec that decodes them
    "gzip": ({"compression": "gzip"}, "numcodecs.zlib"),
    "lzf": ({"compression": "lzf"}, "numcodecs.refindex.lzf"),
    "shuffle_gzip_fletcher32": ({"compression": "gzip", "shuffle": True, "fletcher32": True},
                                "numcodecs.fletcher32"),
    "scaleoffset": ({"scaleoffset": 0}, "numcodecs.refindex.hdf5"),  # HDF5 decodes it
    "lz4": (hdf5plugin.LZ4(), "numcodecs.refindex.lz4h5"),  # kerchunk refuses these two
    "bitshuffle": (hdf5plugin.Bitshuffle(), "numcodecs.refindex.bitshuffle_h5"),
}


@pytest.mark.parametrize("name", sorted(COMPRESSION))
def test_compression_filters_round_trip(name, tmp_path):
    path = tmp_path / f"hdf5_compression_{name}.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=(np.arange(10_000, dtype="i4") // 7).reshape(100, 100),
                         chunks=(50, 50), **COMPRESSION[name][0])
    vds = assert_round_trips(path, tmp_path)
    names = [codec.to_dict()["name"] for codec in vds["data"].data.metadata.codecs]
    assert names[0] == "bytes" and COMPRESSION[name][1] in names


def test_hard_and_soft_links_read_as_their_targets(tmp_path):
    path = tmp_path / "air_linked.nc"
    with h5py.File(path, "w") as f:
        f.create_dataset("lat", data=np.linspace(-90, 90, 25), chunks=(5,),
                         compression="gzip")
        f.create_dataset("time", data=np.arange(10.0))
        f["lat_hard"] = f["lat"]
        f["time_hard"] = f["time"]
        f["lat_soft"] = h5py.SoftLink("/lat")
        f["time_soft"] = h5py.SoftLink("/time")
    vds = assert_round_trips(path, tmp_path)
    for link in ("lat_hard", "lat_soft"):
        assert vds[link].data.manifest == vds["lat"].data.manifest
