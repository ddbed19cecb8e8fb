"""The valid containers and sidecars the fuzzer mutates: small, so that most mutations land in
metadata, and covering the layouts and codecs a scan meets most (chunked with gzip, shuffle and
fletcher32, contiguous, compact, NetCDF3 fixed and record variables, Zarr v2 and v3 stores in
tar and zip archives, an MRC volume stack with an extended header, an OME-TIFF pyramid of
zlib tiles with a predictor and a page of short strips).

``build_seeds(directory)`` writes every seed once and returns ``{kind: path}`` (a directory
for ``native_dir``); each kind's metadata regions (where mutations are aimed) are in
``tests.fuzz.mutate``.
"""

from __future__ import annotations

import os
import tarfile
import warnings
import zipfile
from pathlib import Path

import h5py
import mrcfile
import netCDF4
import numpy as np
import tifffile
import zarr

from refindex.scan import scan
from refindex.sidecar import write_index

SEED_KINDS = ("hdf5", "hdf5_latest", "netcdf3", "netcdf3_64bit", "tar", "zip", "zip_v3",
              "mrc", "tiff", "native", "kerchunk", "native_dir")
CONTAINER_KINDS = SEED_KINDS[:9]
SIDECAR_KINDS = SEED_KINDS[9:]


def _values(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = (rng.random(shape) * 1000).astype(dtype)
    if values.dtype.kind == "f" and values.size > 3:
        values.flat[3] = np.nan
    return values


def hdf5_file(path: Path, libver: str = "earliest") -> None:
    """Chunked (gzip + shuffle, fletcher32, edge chunks, unwritten chunks), contiguous, compact
    and scalar datasets in a group, with attributes and a dimension scale."""
    with h5py.File(path, "w", libver=libver) as f:
        f.attrs["title"] = "fuzz seed"
        time = f.create_dataset("time", data=np.arange(12, dtype="f8"))
        time.make_scale("time")
        gz = f.create_dataset("gzip", data=_values((12, 10), "f4", 1), chunks=(5, 4),
                              compression="gzip", shuffle=True)
        gz.dims[0].attach_scale(time)
        gz.attrs["units"] = "K"
        f.create_dataset("fletcher", data=_values((9,), "i4", 2), chunks=(4,), fletcher32=True)
        sparse = f.create_dataset("sparse", shape=(8, 8), dtype="i2", chunks=(4, 4),
                                  fillvalue=-3)
        sparse[:4, :4] = 5
        group = f.create_group("group")
        group.create_dataset("contiguous", data=_values((6, 5), "u2", 3))
        group.create_dataset("scalar", data=np.float64(2.5))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple((3, 2))
        compact = h5py.h5d.create(group.id, b"compact", h5py.h5t.NATIVE_INT16, space, dcpl=dcpl)
        h5py.Dataset(compact)[...] = np.arange(6, dtype="i2").reshape(3, 2)


def netcdf3_file(path: Path, fmt: str) -> None:
    """Fixed and record variables of several types, with attributes."""
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.title = "fuzz seed"
        nc.createDimension("time", None)
        nc.createDimension("x", 5)
        time = nc.createVariable("time", "f8", ("time",))
        time[:] = np.arange(4)
        temp = nc.createVariable("temp", "f4", ("time", "x"))
        temp.units = "K"
        temp[:] = _values((4, 5), "f4", 4)
        count = nc.createVariable("count", "i2", ("time",))
        count[:] = np.arange(4, dtype="i2")
        fixed = nc.createVariable("fixed", "i4", ("x",))
        fixed[:] = _values((5,), "i4", 5)
        nc.createVariable("scalar", "f8", ())[...] = 1.5


def mrc_file(path: Path) -> None:
    """A big-endian float32 volume stack (two volumes of 3 sections) with an FEI1 extended
    header of one entry, so mutations of ispg, mz, nsymbt and the stamp all matter."""
    with mrcfile.new(path) as mrc, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the NaN among the values
        mrc.set_data(_values((2, 3, 4, 5), ">f4", 6))
        mrc.set_extended_header(np.zeros(1, mrcfile.dtypes.get_ext_header_dtype(b"FEI1")))
        mrc.header.exttyp = b"FEI1"


def tiff_file(path: Path) -> None:
    """An OME-TIFF: a two-level pyramid (SubIFDs) of zlib tiles with horizontal differencing,
    then a series of LZW strips whose rows per strip do not divide the height."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        data = _values((2, 24, 20), "<u2", 7)
        tif.write(data, subifds=1, tile=(16, 16), compression="zlib", predictor=2,
                  photometric="minisblack", metadata={"axes": "ZYX"})
        tif.write(data[:, ::2, ::2], subfiletype=1, tile=(16, 16), compression="zlib",
                  predictor=2, photometric="minisblack")
        tif.write(_values((9, 11), "<f4", 8), rowsperstrip=4, compression="lzw",
                  photometric="minisblack", metadata={"axes": "YX"})


def zarr_store(path: Path, zarr_format: int) -> Path:
    """A small Zarr store: a compressed chunked array with edge chunks, an uncompressed one
    and, in v3, a sharded one."""
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    root.attrs["title"] = "fuzz seed"
    a = root.create_array("temp", shape=(10, 6), chunks=(4, 4), dtype="f4")
    a[:] = _values((10, 6), "f4", 6)
    raw = root.create_array("raw", shape=(7,), chunks=(3,), dtype="i8", compressors=None)
    raw[:] = np.arange(7) * 11
    if zarr_format == 3:
        sharded = root.create_array("sharded", shape=(8, 8), chunks=(2, 2), shards=(4, 8),
                                    dtype="u1")
        sharded[:] = np.arange(64, dtype="u1").reshape(8, 8)
    return path


# One modification time for every seed file, so that the same case number gives the same
# mutant in every run (archives and sidecars record it).
MTIME = 1_700_000_000


def _files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file())


def tar_of(store: Path, target: Path) -> None:
    with tarfile.open(target, "w", format=tarfile.USTAR_FORMAT) as archive:
        for file in _files(store):
            info = archive.gettarinfo(file, f"store.zarr/{file.relative_to(store).as_posix()}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
            with file.open("rb") as data:
                archive.addfile(info, data)


def zip_of(store: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for file in _files(store):
            info = zipfile.ZipInfo(f"store.zarr/{file.relative_to(store).as_posix()}",
                                   date_time=(2023, 11, 14, 22, 13, 20))
            archive.writestr(info, file.read_bytes())


def build_seeds(directory: Path) -> dict[str, Path]:
    """Write every seed into ``directory``; ``{kind: path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    seeds = {kind: directory / f"seed-{kind}" for kind in SEED_KINDS}
    hdf5_file(seeds["hdf5"])
    hdf5_file(seeds["hdf5_latest"], libver="latest")
    netcdf3_file(seeds["netcdf3"], "NETCDF3_CLASSIC")
    netcdf3_file(seeds["netcdf3_64bit"], "NETCDF3_64BIT_OFFSET")
    tar_of(zarr_store(directory / "v2.zarr", 2), seeds["tar"])
    zip_of(directory / "v2.zarr", seeds["zip"])
    zip_of(zarr_store(directory / "v3.zarr", 3), seeds["zip_v3"])
    mrc_file(seeds["mrc"])
    tiff_file(seeds["tiff"])
    os.utime(seeds["hdf5"], (MTIME, MTIME))
    index = scan(seeds["hdf5"]).index
    index.generator = {"name": "refindex", "scanned_at": "2023-11-14T22:13:20Z"}
    write_index(index, seeds["native"], "native")
    write_index(index, seeds["kerchunk"], "kerchunk")
    # A directory sidecar: index.json and a part file per two chunks of each array.
    write_index(index, seeds["native_dir"], "native", layout="directory", part_size=2)
    return seeds
