"""Factories of small HDF5 / NetCDF4 files, one per family of features the scanner must cover.

Each writes ``path`` and returns nothing; values are random but seeded, with NaNs and edge
chunks where they matter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

RNG_SEED = 1234


def _rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def layouts(path: Path, libver: str | None = None) -> None:
    """Chunked (edge chunks, unwritten chunks), contiguous (written, never written, large),
    compact, scalar, zero-size and null-dataspace datasets."""
    rng = _rng()
    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("chunked_edges", data=rng.random((37, 23)), chunks=(8, 5))
        sparse = f.create_dataset("chunked_sparse", shape=(40, 40), dtype="i4", chunks=(10, 10),
                                  fillvalue=-7)
        sparse[0:10, 0:10] = 1
        sparse[25:35, 31:40] = 2
        nan_fill = f.create_dataset("nan_fill", shape=(20,), dtype="f4", chunks=(5,),
                                    fillvalue=np.nan)
        nan_fill[:5] = np.arange(5)
        f.create_dataset("contiguous", data=rng.integers(0, 1000, (50, 30)).astype("u2"))
        f.create_dataset("contiguous_unwritten", shape=(10, 10), dtype="f8", fillvalue=3.5)
        f.create_dataset("contiguous_large", data=rng.random((1031, 1100)).astype("f8"))
        _compact(f, "compact", np.arange(24, dtype="i2").reshape(4, 6))
        f.create_dataset("scalar", data=np.float64(2.5))
        f.create_dataset("zero_size", shape=(0, 4), dtype="i4", chunks=(2, 2), maxshape=(None, 4))
        f.create_dataset("null_space", data=h5py.Empty("f4"))
        f.create_dataset("unlimited", data=np.arange(17, dtype="i8"), maxshape=(None,),
                         chunks=(4,))


def _compact(f: h5py.File, name: str, data: np.ndarray) -> h5py.Dataset:
    """A dataset with compact layout (its values live in the object header)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    space = h5py.h5s.create_simple(data.shape)
    dsid = h5py.h5d.create(f.id, name.encode(), h5py.h5t.py_create(data.dtype), space, dcpl=dcpl)
    dset = h5py.Dataset(dsid)
    dset[...] = data
    return dset


def builtin_filters(path: Path) -> None:
    """gzip, shuffle, fletcher32, lzf (with incompressible chunks), szip, scaleoffset, nbit."""
    rng = _rng()
    smooth = np.cumsum(rng.normal(size=(60, 45)), axis=0).astype("f4")
    noise = rng.integers(0, 2**31, (60, 45), dtype="i4")
    with h5py.File(path, "w") as f:
        f.create_dataset("gzip", data=smooth, chunks=(16, 16), compression="gzip",
                         compression_opts=6)
        f.create_dataset("shuffle_gzip", data=smooth, chunks=(16, 16), compression="gzip",
                         shuffle=True)
        f.create_dataset("shuffle_gzip_fletcher", data=smooth.astype(">f8"), chunks=(16, 16),
                         compression="gzip", shuffle=True, fletcher32=True)
        f.create_dataset("fletcher_only", data=noise, chunks=(7, 9), fletcher32=True)
        mixed = np.concatenate([np.zeros((30, 45), "i4"), noise[30:]])
        f.create_dataset("lzf_mixed", data=mixed, chunks=(10, 15), compression="lzf")
        f.create_dataset("szip", data=smooth, chunks=(16, 16), compression="szip",
                         compression_opts=("nn", 8))
        f.create_dataset("scaleoffset_int", data=(noise % 5000).astype("i4"), chunks=(16, 16),
                         scaleoffset=0)
        f.create_dataset("scaleoffset_float", data=smooth, chunks=(16, 16), scaleoffset=3)
        _nbit(f, "nbit", (noise % 4000).astype("i4"))
        f.create_dataset("float16_gzip", data=smooth.astype("f2"), chunks=(16, 16),
                         compression="gzip")


def _nbit(f: h5py.File, name: str, data: np.ndarray) -> None:
    """An nbit-filtered dataset of 12-bit precision integers."""
    tid = h5py.h5t.STD_I32LE.copy()
    tid.set_precision(12)
    tid.set_offset(4)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((16, 16))
    dcpl.set_filter(h5py.h5z.FILTER_NBIT, 0, ())
    space = h5py.h5s.create_simple(data.shape)
    dsid = h5py.h5d.create(f.id, name.encode(), tid, space, dcpl=dcpl)
    h5py.Dataset(dsid)[...] = data


def plugin_filters(path: Path) -> None:
    """The hdf5plugin family, written by a fresh interpreter: where netCDF4 was imported
    first, this process's HDF5 may load netCDF4's plugins, built for another libhdf5."""
    script = "import sys; from tests.scan import h5files; h5files.write_plugin_filters(sys.argv[1])"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("HDF5_PLUGIN_PATH", None)
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=root, env=env)


def write_plugin_filters(path: str) -> None:
    """What ``plugin_filters`` writes, in this process."""
    rng = _rng()
    data = np.cumsum(rng.normal(size=(40, 50)), axis=1).astype("f4")
    plugins = {
        "blosc_lz4": hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE),
        "blosc_zstd": hdf5plugin.Blosc(cname="zstd", clevel=3,
                                       shuffle=hdf5plugin.Blosc.BITSHUFFLE),
        "blosc2": hdf5plugin.Blosc2(cname="zstd", clevel=5),
        "zstd": hdf5plugin.Zstd(clevel=7),
        "lz4": hdf5plugin.LZ4(),
        "bitshuffle": hdf5plugin.Bitshuffle(),
        "bitshuffle_zstd": hdf5plugin.Bitshuffle(cname="zstd"),
        "bzip2": hdf5plugin.BZip2(),
    }
    with h5py.File(path, "w") as f:
        for name, plugin in plugins.items():
            f.create_dataset(name, data=data, chunks=(16, 16), **plugin)


def numeric_types(path: Path, libver: str | None = None) -> None:
    """Every integer and float width, both byte orders, bool, enum, complex."""
    rng = _rng()
    with h5py.File(path, "w", libver=libver) as f:
        for code in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8"):
            info = np.iinfo(code)
            values = rng.integers(info.min, info.max, (30, 7), dtype=code, endpoint=True)
            for order in "<>":
                f.create_dataset(f"{code}{order}".replace("<", "le").replace(">", "be"),
                                 data=values.astype(order + code), chunks=(8, 7))
        for code in ("f2", "f4", "f8"):
            values = rng.normal(size=(30, 7)).astype(code)
            values[3, 2], values[5, 5] = np.nan, np.inf
            for order in "<>":
                f.create_dataset(f"{code}{'le' if order == '<' else 'be'}",
                                 data=values.astype(order + code), chunks=(8, 7),
                                 compression="gzip")
        f.create_dataset("bool", data=rng.random((20,)) > 0.5, chunks=(6,))
        color = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 42}, basetype="u1")
        f.create_dataset("enum", data=np.array([0, 1, 42, 1], "u1"), dtype=color)
        c = rng.normal(size=(12, 5)) + 1j * rng.normal(size=(12, 5))
        f.create_dataset("complex64", data=c.astype("c8"), chunks=(4, 5))
        f.create_dataset("complex128", data=c.astype(">c16"), chunks=(4, 5), compression="gzip")


def string_types(path: Path) -> None:
    """Fixed-length ASCII/UTF-8 strings and variable-length ASCII/UTF-8 strings."""
    words = ["alpha", "β-beta", "", "gamma ray", "δ"]
    with h5py.File(path, "w") as f:
        f.create_dataset("fixed_ascii", data=np.array([b"abc", b"de", b"", b"fghij"], "S5"),
                         chunks=(2,))
        fixed_utf8 = f.create_dataset("fixed_utf8", shape=(5,),
                                      dtype=h5py.string_dtype("utf-8", 10))
        # Written with the file's own type: HDF5 2.0 converts no ASCII to UTF-8.
        fixed_utf8.id.write(h5py.h5s.ALL, h5py.h5s.ALL,
                            np.array([w.encode() for w in words], "S10"),
                            mtype=fixed_utf8.id.get_type())
        f.create_dataset("vlen_utf8", data=words, dtype=h5py.string_dtype("utf-8"),
                         chunks=(2,), compression="gzip")
        f.create_dataset("vlen_ascii", data=[b"one", b"two x", b"", b"four"],
                         dtype=h5py.string_dtype("ascii"))
        f.create_dataset("vlen_utf8_2d", data=np.array(words[:4], dtype=object).reshape(2, 2),
                         dtype=h5py.string_dtype())


def compound_types(path: Path) -> None:
    """Packed compounds, compounds with array members and nested compounds, padded ones."""
    packed = np.dtype([("id", "<i4"), ("x", "<f8"), ("flag", "u1")])
    with_array = np.dtype([("id", "<i2"), ("vec", "<f4", (3,)), ("name", "S4")])
    nested = np.dtype([("a", "<i4"), ("inner", [("p", ">f4"), ("q", "u2")])])
    padded = np.dtype({"names": ["a", "b"], "formats": ["u1", "<f8"], "offsets": [0, 8],
                       "itemsize": 16})
    rng = _rng()
    with h5py.File(path, "w") as f:
        data = np.zeros(25, packed)
        data["id"], data["x"], data["flag"] = np.arange(25), rng.random(25), 7
        f.create_dataset("packed", data=data, chunks=(10,), compression="gzip", shuffle=True)
        data = np.zeros(9, with_array)
        data["vec"] = rng.random((9, 3))
        data["name"] = b"ab"
        f.create_dataset("with_array", data=data, chunks=(4,))
        f.create_dataset("nested", data=np.zeros(6, nested))
        data = np.zeros(5, padded)
        data["a"], data["b"] = 3, rng.random(5)
        f.create_dataset("padded", data=data)


def vlen_and_references(path: Path) -> None:
    """Variable-length sequences, object and region references (and a null reference)."""
    with h5py.File(path, "w") as f:
        target = f.create_dataset("target", data=np.arange(10))
        group = f.create_group("grp")
        seq = f.create_dataset("vlen_seq", shape=(4,), dtype=h5py.vlen_dtype("i4"))
        for i in range(4):
            seq[i] = np.arange(i * 2, dtype="i4")
        refs = f.create_dataset("obj_refs", shape=(3,), dtype=h5py.ref_dtype)
        refs[0], refs[1] = target.ref, group.ref
        regions = f.create_dataset("region_refs", shape=(1,), dtype=h5py.regionref_dtype)
        regions[0] = target.regionref[2:5]
        target.attrs["self"] = target.ref


def nested_types(path: Path) -> None:
    """Long double, a nested compound with gaps, compounds with variable-length members,
    sequences of fixed strings and of records, an array of variable-length strings."""
    string = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.create_dataset("long_double", data=np.arange(10, dtype=np.longdouble) / 3,
                         chunks=(4,))
        inner = np.dtype({"names": ["x"], "formats": ["<f8"], "offsets": [4], "itemsize": 16})
        gapped = np.dtype({"names": ["a", "b"], "formats": ["<i4", inner], "offsets": [0, 8],
                           "itemsize": 32})
        f.create_dataset("gapped", data=np.array([(1, (2.5,)), (3, (-4.5,))], dtype=gapped),
                         chunks=(1,))
        named = np.dtype([("id", "<i4"), ("name", string), ("seq", h5py.vlen_dtype("<f4"))])
        records = f.create_dataset("named", shape=(3,), dtype=named)
        for i in range(3):
            records[i] = (i, f"n{i}é", np.arange(i, dtype="f4"))
        fixed = f.create_dataset("vlen_fixed_strings", shape=(2,),
                                 dtype=h5py.vlen_dtype(np.dtype("S5")))
        fixed[0], fixed[1] = np.array([b"ab", b"cdefg"], "S5"), np.array([], "S5")
        pair = np.dtype([("x", "<i2"), ("y", ">f8")])
        pairs = f.create_dataset("vlen_records", shape=(2,), dtype=h5py.vlen_dtype(pair))
        pairs[0], pairs[1] = np.array([(1, 2.5)], pair), np.array([(3, 4.5), (5, 6.5)], pair)
        tid = h5py.h5t.array_create(h5py.h5t.py_create(string, logical=True), (2,))
        h5py.h5d.create(f.id, b"string_pairs", tid, h5py.h5s.create_simple((2,)))
        f["string_pairs"][...] = np.array([["a", "b"], ["c", ""]], dtype=object)


def structure(path: Path, external: Path) -> None:
    """Nested groups, attributes of every type, soft/hard/external links, a dangling link."""
    with h5py.File(external, "w") as ext:
        ext.create_dataset("remote_data", data=np.arange(12, dtype="f4").reshape(3, 4),
                           chunks=(2, 2))
    rng = _rng()
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "structure test"
        f.attrs["bytes_attr"] = np.bytes_(b"raw bytes")
        f.attrs["int_array"] = np.arange(5, dtype="i2")
        f.attrs["float_nan"] = np.float64(np.nan)
        f.attrs["vlen_strings"] = ["a", "bc", "déf"]
        f.attrs["empty"] = h5py.Empty("f4")
        f.attrs["complex"] = np.complex64(1 + 2j)
        f.attrs["one_element"] = np.array([7.5])
        f.attrs["bool"] = np.bool_(True)
        deep = f.create_group("a/b/c")
        data = deep.create_dataset("data", data=rng.random((6, 4)), chunks=(3, 2))
        data.attrs["units"] = "m"
        data.attrs["valid_range"] = np.array([0.0, 1.0])
        f["hard_link"] = data
        f["soft_link"] = h5py.SoftLink("/a/b/c/data")
        f["dangling"] = h5py.SoftLink("/does/not/exist")
        f["external"] = h5py.ExternalLink(external.name, "/remote_data")
        f["a/b/loop"] = f["a"]  # a hard link cycle: a/b/loop is a


def dimension_scales(path: Path) -> None:
    """HDF5 dimension scales attached to data, including one in a parent group."""
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", data=np.linspace(0, 1, 11))
        y = f.create_dataset("y", data=np.arange(6, dtype="i4"))
        x.make_scale("x")
        y.make_scale("y")
        data = f.create_dataset("data", data=np.zeros((6, 11)), chunks=(3, 11))
        data.dims[0].attach_scale(y)
        data.dims[1].attach_scale(x)
        sub = f.create_group("sub").create_dataset("field", data=np.ones((6, 4)))
        sub.dims[0].attach_scale(y)


def netcdf4(path: Path) -> None:
    """A NetCDF4 file: unlimited time, a dimension without variable, CF attributes, groups,
    packed data, strings."""
    import netCDF4

    rng = _rng()
    with netCDF4.Dataset(path, "w") as nc:
        nc.Conventions = "CF-1.8"
        nc.createDimension("time", None)
        nc.createDimension("lat", 15)
        nc.createDimension("lon", 20)
        nc.createDimension("nv", 2)  # a dimension that no variable is named after
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "hours since 2020-01-01 00:00", "noleap"
        t[:] = np.arange(9) * 6
        nc.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-70, 70, 15)
        nc.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 342, 20)
        bounds = nc.createVariable("lat_bnds", "f4", ("lat", "nv"))
        bounds[:] = np.stack([np.linspace(-75, 65, 15), np.linspace(-65, 75, 15)], axis=1)
        temp = nc.createVariable("temp", "f4", ("time", "lat", "lon"), zlib=True,
                                 chunksizes=(4, 8, 8), fill_value=np.float32(1e20))
        temp.units, temp.standard_name = "K", "air_temperature"
        values = (280 + 10 * rng.normal(size=(9, 15, 20))).astype("f4")
        temp[:] = np.ma.masked_array(values, rng.random(values.shape) < 0.1)
        packed = nc.createVariable("precip", "i2", ("time", "lat", "lon"), zlib=True,
                                   fill_value=np.int16(-9999))
        packed.scale_factor, packed.add_offset = np.float32(0.01), np.float32(5.0)
        packed[:] = rng.random((9, 15, 20)) * 10
        station = nc.createVariable("station", str, ("lat",))
        station[:] = np.array([f"st{i}" for i in range(15)], dtype=object)
        group = nc.createGroup("forecast")
        group.createDimension("step", 3)
        group.createVariable("step", "i4", ("step",))[:] = [0, 6, 12]
        group.createVariable("skill", "f8", ("step", "lat"))[:] = rng.random((3, 15))


def standard_codecs(path: Path) -> None:
    """Only filters every numcodecs reader decodes: gzip, shuffle, fletcher32, zstd, blosc."""
    rng = _rng()
    smooth = np.cumsum(rng.normal(size=(50, 40)), axis=0).astype("f4")
    with h5py.File(path, "w") as f:
        f.create_dataset("gzip", data=smooth, chunks=(16, 16), compression="gzip")
        f.create_dataset("shuffle_gzip", data=smooth.astype("f8"), chunks=(16, 16),
                         compression="gzip", shuffle=True)
        f.create_dataset("shuffle_gzip_fletcher", data=smooth, chunks=(16, 16),
                         compression="gzip", shuffle=True, fletcher32=True)
        f.create_dataset("zstd", data=smooth, chunks=(16, 16), **hdf5plugin.Zstd(clevel=3))
        # Rounded, so that blosc (an optional filter) compresses every chunk.
        f.create_dataset("blosc_lz4", data=np.round(smooth), chunks=(16, 16),
                         **hdf5plugin.Blosc(cname="lz4", shuffle=hdf5plugin.Blosc.SHUFFLE))
        f.create_dataset("plain", data=np.arange(30, dtype="i8").reshape(6, 5))


def kerchunk_codecs(path: Path) -> None:
    """The part of ``standard_codecs`` that kerchunk's HDF5 scanner handles (no fletcher32)."""
    standard_codecs(path)
    with h5py.File(path, "a") as f:
        del f["shuffle_gzip_fletcher"]


def external_storage(path: Path) -> np.ndarray:
    """Datasets in external raw files next to ``path``: one segment after a header, three
    equal segments over two files, and two unequal segments. Returns the values, (12, 10) f8,
    which all three datasets hold (h5py itself only finds the raw files from their folder)."""
    values = np.arange(120, dtype="<f8").reshape(12, 10)
    rows = [values[i:i + 4].tobytes() for i in (0, 4, 8)]
    (path.parent / "single.bin").write_bytes(b"header--" * 2 + values.tobytes())
    (path.parent / "segments_a.bin").write_bytes(rows[0] + b"gap" + rows[2])
    (path.parent / "segments_b.bin").write_bytes(rows[1])
    (path.parent / "unequal.bin").write_bytes(values.tobytes()[:400] + b"gap" +
                                              values.tobytes()[400:])
    block = len(rows[0])
    with h5py.File(path, "w") as f:
        f.create_dataset("single", shape=values.shape, dtype="<f8",
                         external=[("single.bin", 16, values.nbytes)])
        f.create_dataset("equal_segments", shape=values.shape, dtype="<f8",
                         external=[("segments_a.bin", 0, block), ("segments_b.bin", 0, block),
                                   ("segments_a.bin", block + 3, block)])
        f.create_dataset("unequal_segments", shape=values.shape, dtype="<f8",
                         external=[("unequal.bin", 0, 400), ("unequal.bin", 403, 560)])
    return values


def virtual_stack(path: Path) -> None:
    """A virtual dataset stacking ``data`` of two source files next to ``path`` (relative
    names), with a fill value where a third row has no source."""
    layout = h5py.VirtualLayout(shape=(3, 10), dtype="i4")
    for i in range(2):
        name = f"{path.stem}_source{i}.h5"
        with h5py.File(path.parent / name, "w") as f:
            f.create_dataset("data", data=np.arange(10, dtype="i4") + 100 * i)
        layout[i] = h5py.VirtualSource(name, "data", shape=(10,))
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("stacked", layout, fillvalue=-1)
        f.create_dataset("plain", data=np.arange(4, dtype="i2"))


def mixed_filter_masks(path: Path) -> None:
    """Optional filters HDF5 skipped for the chunks they did not shrink: LZF (alone and after
    shuffle) and szip (nn and ec), over half zero, half random chunks."""
    noise = _rng().integers(0, 2**31, (40, 40), dtype="i4")
    mixed = np.concatenate([np.zeros((20, 40), "i4"), noise[20:]])
    with h5py.File(path, "w") as f:
        f.create_dataset("lzf", data=mixed, chunks=(10, 10), compression="lzf")
        f.create_dataset("shuffle_lzf", data=mixed, chunks=(10, 10), compression="lzf",
                         shuffle=True)
        f.create_dataset("szip_nn", data=mixed, chunks=(10, 10), compression="szip",
                         compression_opts=("nn", 8))
        f.create_dataset("szip_ec", data=mixed, chunks=(10, 10), compression="szip",
                         compression_opts=("ec", 32))
        f.create_dataset("szip_mostly_skipped", data=np.concatenate([mixed[:10], noise[10:]]),
                         chunks=(10, 10), compression="szip", compression_opts=("nn", 8))


def unwritten_chunks(path: Path) -> None:
    """Chunked datasets with chunks never written: an integer fill value, a NaN fill value,
    compressed, and one with no chunk written at all."""
    with h5py.File(path, "w") as f:
        ints = f.create_dataset("int_fill", shape=(30, 30), dtype="i2", chunks=(10, 10),
                                fillvalue=-99, compression="gzip")
        ints[10:20, 0:10] = 5
        nans = f.create_dataset("nan_fill", shape=(25,), dtype="f8", chunks=(10,),
                                fillvalue=np.nan)
        nans[12:14] = [1.5, 2.5]
        f.create_dataset("never_written", shape=(8, 8), dtype="f4", chunks=(4, 4),
                         fillvalue=2.25)
