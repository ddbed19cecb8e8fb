"""Factories of small Zarr stores written by zarr itself (v2 and v3, sharded or not), of tar
and zip archives of them, and the checks the archive tests make: what refindex serves equals
the original store, array by array and chunk key by chunk key."""

from __future__ import annotations

import os
import tarfile
import warnings
import zipfile
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    ShardingCodec,
    TransposeCodec,
    ZstdCodec,
)

import refindex
from tests.roundtrip import assert_same_values

RNG_SEED = 2024
METADATA_NAMES = {".zgroup", ".zarray", ".zattrs", ".zmetadata", "zarr.json"}


def _rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def _temperature(rng: np.random.Generator) -> np.ndarray:
    values = rng.normal(280, 10, (37, 23)).astype("f4")
    values[3, 4] = np.nan
    return values


def _consolidate(path: Path) -> None:
    with warnings.catch_warnings():  # v3 consolidated metadata is not in the spec (yet)
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(path))


def v2_store(path: Path, separator: str = ".", consolidated: bool = True) -> Path:
    """Nested groups with attributes; float with NaN and edge chunks (blosc), unsigned with
    a delta filter (zstd), big-endian (gzip), bool (no compressor), strings (vlen-utf8),
    a sparse array (absent chunks), a 0-d array."""
    rng = _rng()
    keys = {"name": "v2", "separator": separator}
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs.update({"title": "a v2 store", "version": 2})
    fine = root.create_group("grids/fine")
    fine.attrs["resolution"] = 0.25
    temperature = fine.create_array(
        "temperature", shape=(37, 23), chunks=(8, 5), dtype="<f4", fill_value=np.nan,
        compressors=numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE),
        chunk_key_encoding=keys, attributes={"units": "K", "_ARRAY_DIMENSIONS": ["y", "x"]})
    temperature[...] = _temperature(rng)
    count = root.create_array(
        "grids/count", shape=(50,), chunks=(7,), dtype="<u2",
        filters=[numcodecs.Delta("<u2")], compressors=numcodecs.Zstd(3),
        chunk_key_encoding=keys)
    count[...] = np.arange(50, dtype="u2") * 3
    big = root.create_array("big_endian", shape=(6, 4), chunks=(4, 4), dtype=">i8",
                            compressors=numcodecs.GZip(6), chunk_key_encoding=keys)
    big[...] = rng.integers(-2**40, 2**40, (6, 4))
    flags = root.create_array("flags", shape=(20,), chunks=(6,), dtype="bool",
                              compressors=None, chunk_key_encoding=keys)
    flags[...] = rng.random(20) > 0.5
    text = root.create_array("text", shape=(5,), chunks=(2,), dtype=str,
                             chunk_key_encoding=keys)
    text[...] = np.array(["alpha", "β", "", "delta delta", "ε"])
    sparse = root.create_array("sparse", shape=(30, 30), chunks=(10, 10), dtype="<i4",
                               fill_value=-7, chunk_key_encoding=keys)
    sparse[0:10, 10:20] = 5
    scalar = root.create_array("scalar", shape=(), dtype="<f8", chunk_key_encoding=keys)
    scalar[...] = 3.5
    if consolidated:
        _consolidate(path)
    return path


def v3_store(path: Path, sharded: bool = False, consolidated: bool = False) -> Path:
    """The same kinds of arrays as :func:`v2_store` in Zarr v3, with dimension names, the
    default and the v2 chunk key encodings, blosc/zstd/gzip/crc32c, big-endian bytes and a
    transpose; ``sharded`` puts most arrays in shards of several inner chunks."""
    rng = _rng()
    root = zarr.open_group(path, mode="w", zarr_format=3)
    root.attrs.update({"title": "a v3 store", "version": 3})
    fine = root.create_group("grids/fine")
    fine.attrs["resolution"] = 0.25

    def shards(shape: tuple[int, ...]) -> dict:
        return {"shards": shape} if sharded else {}

    temperature = fine.create_array(
        "temperature", shape=(37, 23), chunks=(8, 5), dtype="float32", fill_value=np.nan,
        compressors=[BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
        dimension_names=["y", "x"], attributes={"units": "K"}, **shards((16, 10)))
    temperature[...] = _temperature(rng)
    count = root.create_array(
        "grids/count", shape=(50,), chunks=(7,), dtype="uint16",
        compressors=[ZstdCodec(level=3, checksum=True), Crc32cCodec()],
        dimension_names=["n"], **shards((21,)))
    count[...] = np.arange(50, dtype="u2") * 3
    big = root.create_array("big_endian", shape=(6, 4), chunks=(4, 4), dtype="int64",
                            serializer=BytesCodec(endian="big"), compressors=[GzipCodec(level=6)],
                            chunk_key_encoding={"name": "v2", "separator": "."},
                            **shards((4, 4)))
    big[...] = rng.integers(-2**40, 2**40, (6, 4))
    flags = root.create_array("flags", shape=(20,), chunks=(6,), dtype="bool", compressors=None,
                              chunk_key_encoding={"name": "default", "separator": "."})
    flags[...] = rng.random(20) > 0.5
    ordered = root.create_array("fortran", shape=(9, 7), chunks=(4, 3), dtype="int16",
                                filters=[TransposeCodec(order=(1, 0))], **shards((8, 6)))
    ordered[...] = np.arange(63, dtype="i2").reshape(9, 7)
    text = root.create_array("text", shape=(5,), chunks=(2,), dtype=str)
    text[...] = np.array(["alpha", "β", "", "delta delta", "ε"])
    sparse = root.create_array("sparse", shape=(30, 30), chunks=(10, 10), dtype="int32",
                               fill_value=-7, **shards((20, 20)))
    sparse[0:10, 10:20] = 5
    scalar = root.create_array("scalar", shape=(), dtype="float64")
    scalar[...] = 3.5
    if consolidated:
        _consolidate(path)
    return path


def sharded_array(path: Path, *, index_location: str = "end", index_codecs: list | None = None,
                  shape: tuple[int, ...] = (23, 30), chunks: tuple[int, ...] = (4, 5),
                  shard: tuple[int, ...] = (8, 10), codecs: list | None = None,
                  fill: int = -1) -> np.ndarray:
    """A sharded v3 int32 array at ``path`` (shards of ``shard``, inner chunks of
    ``chunks``) with every other inner chunk left at the fill value (empty in the shard);
    returns its values."""
    sharding = ShardingCodec(
        chunk_shape=chunks, codecs=codecs or [BytesCodec(), ZstdCodec(level=1)],
        index_codecs=index_codecs or [BytesCodec(), Crc32cCodec()],
        index_location=index_location)
    array = zarr.create_array(str(path), shape=shape, chunks=shard, dtype="int32",
                              serializer=sharding, compressors=None, filters=None,
                              fill_value=fill, zarr_format=3, overwrite=True)
    values = np.arange(np.prod(shape), dtype="i4").reshape(shape)
    grid = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    for position, start in enumerate(np.stack(np.meshgrid(*grid, indexing="ij"), -1)
                                     .reshape(-1, len(shape))):
        if position % 2:
            region = tuple(slice(s, s + c) for s, c in zip(start, chunks, strict=True))
            values[region] = fill
    array[...] = values
    return values


def store_files(store: Path) -> list[Path]:
    """Every file of a directory store, in a stable order."""
    return sorted(p for p in store.rglob("*") if p.is_file())


def tar_of(store: Path, target: Path, top: str = "store.zarr",
           format: int = tarfile.PAX_FORMAT) -> Path:
    """An uncompressed tar of ``store`` with its files below ``top`` (``""``: at the top)."""
    with tarfile.open(target, "w", format=format) as archive:
        for path in store_files(store):
            name = path.relative_to(store).as_posix()
            archive.add(path, arcname=f"{top}/{name}" if top else name)
    return target


def zip_of(store: Path, target: Path, top: str = "store.zarr",
           compression: int = zipfile.ZIP_STORED, zip64: bool = False) -> Path:
    """A zip of ``store`` (members compressed with ``compression``; ``zip64`` forces zip64
    records for every member)."""
    with zipfile.ZipFile(target, "w", compression=compression) as archive:
        for path in store_files(store):
            name = path.relative_to(store).as_posix()
            arcname = f"{top}/{name}" if top else name
            if zip64:
                with archive.open(arcname, "w", force_zip64=True) as member:
                    member.write(path.read_bytes())
            else:
                archive.write(path, arcname)
    return target


def array_paths(store: Path) -> dict[str, zarr.Array]:
    """Every array of the store at ``store`` by its path (``""`` for a store that is one
    array)."""
    root = zarr.open(str(store), mode="r")
    if isinstance(root, zarr.Array):
        return {"": root}
    return {path: node for path, node in root.members(max_depth=None)
            if isinstance(node, zarr.Array)}


def assert_same_arrays(original: Path, sidecar) -> None:
    """Every array of the store ``original`` (archived with its files at the archive's top)
    read through refindex (as Zarr v2) has its values, dtype, fill value and attributes."""
    served = zarr.open(refindex.open_store(sidecar), mode="r", zarr_format=2)
    arrays = array_paths(original)
    assert arrays
    for path, array in arrays.items():
        read = served[path] if path else served
        values, dtype = read[...], read.dtype
        if array.metadata.zarr_format == 3:  # v3 hands out native byte order, v2 the stored
            values, dtype = _native(values), _native(dtype)
        assert_same_values(array[...], values, path)
        assert dtype == array.dtype, path
        assert_same_values(np.asarray(array.fill_value, dtype=array.dtype),
                           np.asarray(read.fill_value, dtype=array.dtype), path)
        attrs = dict(read.attrs)
        if array.metadata.zarr_format == 3 and array.metadata.dimension_names:
            assert attrs.pop("_ARRAY_DIMENSIONS") == list(array.metadata.dimension_names)
        if array.metadata.zarr_format == 2 and array.fill_value is not None:
            # The missing-value marker xarray reads from a v2 fill_value, as an attribute.
            assert_same_values(np.asarray(array.fill_value, dtype=array.dtype),
                               np.asarray(attrs.pop("_FillValue"), dtype=array.dtype), path)
        assert attrs == dict(array.attrs), path


def _native(value):
    """``value`` (an array or a dtype) in native byte order."""
    if isinstance(value, np.dtype):
        return value.newbyteorder("=") if value.byteorder in "<>" else value
    return value.astype(_native(value.dtype)) if value.dtype.kind not in "OTU" else value


def assert_same_chunk_bytes(original: Path, sidecar) -> int:
    """Every chunk file of the v2 store ``original`` is served, byte for byte, under its own
    key; returns how many were compared."""
    store = refindex.open_store(sidecar)
    compared = 0
    for path in store_files(original):
        if path.name in METADATA_NAMES:
            continue
        key = path.relative_to(original).as_posix()
        served = zarr.core.sync.sync(store.get(key))
        assert served is not None, key
        assert served.to_bytes() == path.read_bytes(), key
        compared += 1
    return compared


def remove_prefix_files(store: Path, names: set[str]) -> None:
    """Delete the files called ``names`` below ``store`` (but the root's)."""
    for directory, _, files in os.walk(store):
        if Path(directory) == store:
            continue
        for name in files:
            if name in names:
                Path(directory, name).unlink()
