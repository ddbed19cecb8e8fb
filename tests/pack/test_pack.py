"""``refindex pack``: a Zarr v2 directory store becomes a few standard tar files of about the
target size (metadata first, chunks in C order) and a sidecar that reads them as the store,
key for key; a rerun keeps what is still good and redoes the rest."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import subprocess
import tarfile
import warnings
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import TransposeCodec, ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import refindex
from refindex.cli import main
from refindex.codecs.guarded import unguarded_codecs
from refindex.errors import ContainerError, RefindexError, UnsupportedFeatureError
from refindex.pack import PackOptions, PackProgress, pack, tar_part
from refindex.pack.tar_part import write_part
from refindex.pack.ustar import member_header, padding
from refindex.pack.zarr_tree import FileEntry, read_store
from refindex.scan import scan
from tests.scan import zarr_stores

METADATA_NAMES = (".zgroup", ".zarray", ".zattrs", ".zmetadata")
SHARD, INNER = (20, 12), (5, 6)  # of the sharded array of make_v3_store


def make_store(root: Path) -> Path:
    """A Zarr v2 store with what real ones have: nested groups and attributes, chunks left
    unwritten (fill value), a ``/``-separated array, a 0-d and an empty array, consolidated
    metadata, and a file that is no part of the hierarchy."""
    rng = np.random.default_rng(7)
    group = zarr.open_group(root, mode="w", zarr_format=2, attributes={"title": "test store"})
    volume = group.create_array("volume", shape=(40, 50, 60), chunks=(8, 16, 16), dtype="f4",
                                fill_value=np.nan, attributes={"units": "K"})
    volume[:30] = rng.random((30, 50, 60), dtype="f4")  # the last z chunks are never written
    labels = group.create_group("labels", attributes={"kind": "segmentation"})
    mask = labels.create_array("mask", shape=(64, 70), chunks=(16, 16), dtype="u2",
                               chunk_key_encoding={"name": "v2", "separator": "/"},
                               compressors=numcodecs.Zstd(level=3))
    mask[:] = rng.integers(0, 1000, (64, 70), dtype="u2")
    scalar = group.create_array("scalar", shape=(), dtype="i8")
    scalar[...] = 42
    group.create_array("empty", shape=(0, 5), chunks=(2, 5), dtype="f8")
    zarr.consolidate_metadata(root)
    (root / "README.txt").write_text("notes next to the data, not Zarr\n")
    return root


def store_files(root: Path) -> dict[str, Path]:
    """Every file of a directory store by its key."""
    return {path.relative_to(root).as_posix(): path
            for path in sorted(root.rglob("*")) if path.is_file()}


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def read_keys(store, keys: list[str]) -> list[bytes | None]:
    """The bytes ``store`` gives for ``keys``, asked for all at once (as zarr does)."""
    prototype = default_buffer_prototype()

    async def get_all():
        return await asyncio.gather(*(store.get(key, prototype) for key in keys))

    return [None if found is None else found.to_bytes() for found in sync(get_all())]


def assert_same_store(original: Path, sidecar, **options) -> None:
    """The sidecar reads exactly as the directory store: every file's bytes by its key
    (metadata as the same JSON), and every array's values through zarr."""
    store = refindex.open_store(sidecar, **options)
    files = store_files(original)
    keys = list(files)
    for key, got in zip(keys, read_keys(store, keys), strict=True):
        expected = files[key].read_bytes()
        if got is None and key.endswith(".zattrs") and json.loads(expected) == {}:
            continue  # the store leaves out empty attributes
        assert got is not None, f"{key}: missing"
        if key.rsplit("/", 1)[-1] in METADATA_NAMES:
            if key.endswith(".zmetadata"):
                continue  # the store renders its own consolidated metadata
            # The store serves each codec guarded (refindex.codecs.guarded).
            served = json.loads(got)
            if key.endswith(".zarray"):
                served = unguarded_codecs(served)
            assert served == json.loads(expected), f"{key}: metadata differs"
        else:
            assert got == expected, f"{key}: bytes differ"
    packed = zarr.open_group(store, mode="r", zarr_format=2)
    source = zarr.open_group(original, mode="r", zarr_format=2)
    for path, array in source.arrays():
        assert packed[path].attrs.asdict() == array.attrs.asdict(), path
        assert packed[path][...].tobytes() == array[...].tobytes(), f"{path}: values differ"
    for path, group in source.groups():
        assert packed[path].attrs.asdict() == group.attrs.asdict(), path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "cells.zarr")


# --- the archives -------------------------------------------------------------------------


def test_packed_store_reads_like_the_original_key_for_key(store, tmp_path):
    result = pack(store, tmp_path / "out", PackOptions(target_size=20_000))

    assert len(result.parts) > 3
    assert result.sidecar == tmp_path / "out" / "cells.refs.json"
    assert_same_store(store, result.sidecar)


def test_parts_are_standard_tars_holding_every_file_by_its_key(store, tmp_path):
    result = pack(store, tmp_path / "out", PackOptions(target_size=20_000))

    members: dict[str, bytes] = {}
    for part in result.parts:
        with tarfile.open(part.path) as tar:
            for info in tar:
                assert info.isfile()
                members[info.name] = tar.extractfile(info).read()
        listed = subprocess.run(["tar", "-tf", str(part.path)], capture_output=True,
                                text=True, check=True).stdout.split()
        with tarfile.open(part.path) as tar:
            assert listed == tar.getnames(), "GNU tar reads the part as tarfile does"
    assert members == {key: path.read_bytes() for key, path in store_files(store).items()}


def test_metadata_comes_first_then_each_arrays_chunks_in_c_order(store, tmp_path):
    result = pack(store, tmp_path / "out", PackOptions(target_size=10**9))

    with tarfile.open(result.parts[0].path) as tar:
        names = tar.getnames()
    kinds = ["meta" if n.rsplit("/", 1)[-1] in METADATA_NAMES else "data" for n in names]
    assert kinds == sorted(kinds, key=lambda kind: kind != "meta")
    volume = [tuple(int(c) for c in n.split("/")[1].split(".")) for n in names
              if n.startswith("volume/") and not n.endswith((".zarray", ".zattrs"))]
    assert volume == sorted(volume) and len(volume) == 4 * 4 * 4  # 4 of 5 z chunks written
    mask = [n for n in names if n.startswith("labels/mask/") and "/." not in n]
    assert mask[:3] == ["labels/mask/0/0", "labels/mask/0/1", "labels/mask/0/2"]


def test_parts_are_about_the_target_size(store, tmp_path):
    target = 30_000
    result = pack(store, tmp_path / "out", PackOptions(target_size=target))

    sizes = [part.size for part in result.parts]
    # A tar ends with two empty blocks and is padded to whole 10 KiB records.
    assert all(size <= target + 10_240 for size in sizes)
    assert sum(sizes) / len(sizes) > target / 2
    assert sum(part.members for part in result.parts) == result.files


def test_sidecar_names_the_local_parts_with_their_sizes(store, tmp_path):
    result = pack(store, tmp_path / "out", PackOptions(target_size=50_000, name="x"))

    assert [s.url for s in result.index.sources] == [str(p.path) for p in result.parts]
    assert [s.size for s in result.index.sources] == [p.path.stat().st_size
                                                      for p in result.parts]
    assert all(p.path.name.startswith("x-") for p in result.parts)


def test_a_store_that_is_one_array(tmp_path):
    root = tmp_path / "plain.zarr"
    array = zarr.create_array(root, shape=(30, 30), chunks=(7, 7), dtype="i4", zarr_format=2)
    array[:] = np.arange(900, dtype="i4").reshape(30, 30)

    result = pack(root, tmp_path / "out")

    packed = zarr.open_array(refindex.open_store(result.sidecar), mode="r", zarr_format=2)
    assert np.array_equal(packed[...], array[...])


# --- resuming -----------------------------------------------------------------------------


class _InterruptAfter(PackProgress):
    """Interrupts packing (as Ctrl-C would) after ``files`` files."""

    def __init__(self, files: int) -> None:
        self.left = files

    def packed(self, files: int, nbytes: int) -> None:
        self.left -= files
        if self.left <= 0:
            raise KeyboardInterrupt


def test_rerun_keeps_every_finished_part_untouched(store, tmp_path):
    first = pack(store, tmp_path / "out", PackOptions(target_size=20_000))
    stamps = [part.path.stat().st_mtime_ns for part in first.parts]

    again = pack(store, tmp_path / "out", PackOptions(target_size=20_000))

    assert all(part.kept for part in again.parts)
    assert [part.path.stat().st_mtime_ns for part in again.parts] == stamps
    assert_same_store(store, again.sidecar)


def test_interrupted_pack_resumes_where_it_stopped(store, tmp_path):
    options = PackOptions(target_size=20_000)
    with pytest.raises(KeyboardInterrupt):
        pack(store, tmp_path / "out", options, _InterruptAfter(files=60))
    written = sorted(path.name for path in (tmp_path / "out").glob("*.tar"))
    assert written and list((tmp_path / "out").glob("*.partial"))

    result = pack(store, tmp_path / "out", options)

    kept = [part.name for part in result.parts if part.kept]
    assert kept == written
    assert not list((tmp_path / "out").glob("*.partial"))
    assert_same_store(store, result.sidecar)


def test_a_changed_chunk_rewrites_only_the_part_that_holds_it(store, tmp_path):
    options = PackOptions(target_size=20_000)
    first = pack(store, tmp_path / "out", options)
    volume = zarr.open_array(store / "volume", mode="r+", zarr_format=2)
    volume[0, 0, 0] = -1.0  # rewrites chunk volume/0.0.0 with new bytes

    again = pack(store, tmp_path / "out", options)

    holder = next(part for part in first.parts if "volume/0.0.0" in tar_names(part.path))
    assert [part.name for part in again.parts if not part.kept] == [holder.name]
    assert_same_store(store, again.sidecar)


def test_a_damaged_part_is_detected_by_its_checksum_and_rewritten(store, tmp_path):
    options = PackOptions(target_size=20_000)
    first = pack(store, tmp_path / "out", options)
    damaged = first.parts[1].path
    data = bytearray(damaged.read_bytes())
    data[5000] ^= 0xFF  # same size, one byte different
    damaged.write_bytes(bytes(data))

    again = pack(store, tmp_path / "out", options)

    assert [part.kept for part in again.parts] == [i != 1 for i in range(len(again.parts))]
    assert_same_store(store, again.sidecar)


def test_another_target_size_replaces_the_former_parts(store, tmp_path):
    pack(store, tmp_path / "out", PackOptions(target_size=10_000))

    result = pack(store, tmp_path / "out", PackOptions(target_size=10**9))

    assert [path.name for path in (tmp_path / "out").glob("*.tar")] == ["cells-00000.tar"]
    assert len(result.parts) == 1
    assert_same_store(store, result.sidecar)


# --- Zarr v3 stores ------------------------------------------------------------------------


def make_v3_store(root: Path) -> Path:
    """A Zarr v3 store written by zarr: nested groups with attributes; a float volume with NaN
    (values and fill value), dimension names and chunks never written, with more than ten
    chunks along an axis (so that C order is not the order of the names); chunk keys of both
    encodings with both separators; a sharded array with empty inner chunks; 0-d arrays of
    both encodings; and a file that is no part of the hierarchy."""
    rng = np.random.default_rng(11)
    group = zarr.open_group(root, mode="w", zarr_format=3, attributes={"title": "v3 store"})
    volume = group.create_array("volume", shape=(24, 30, 12), chunks=(2, 8, 6), dtype="f4",
                                fill_value=np.nan, dimension_names=["z", "y", "x"],
                                attributes={"units": "K"})
    values = rng.random((20, 30, 12), dtype="f4")
    values[3, 4, 5] = np.nan
    volume[:20] = values  # the last two of twelve z chunks are never written
    labels = group.create_group("labels", attributes={"kind": "segmentation"})
    mask = labels.create_array("mask", shape=(64, 70), chunks=(16, 16), dtype="u2",
                               chunk_key_encoding={"name": "v2", "separator": "."},
                               compressors=ZstdCodec(level=3))
    mask[:] = rng.integers(0, 1000, (64, 70), dtype="u2")
    counts = labels.create_array("counts", shape=(30, 4), chunks=(4, 2), dtype="i2",
                                 chunk_key_encoding={"name": "v2", "separator": "/"})
    counts[:] = np.arange(120, dtype="i2").reshape(30, 4)
    flags = labels.create_array("flags", shape=(40,), chunks=(6,), dtype="bool",
                                chunk_key_encoding={"name": "default", "separator": "."})
    flags[:] = rng.random(40) > 0.5
    sharded = group.create_array("sharded", shape=(40, 36), chunks=INNER, shards=SHARD,
                                 dtype="i4", fill_value=-1)
    data = np.arange(40 * 36, dtype="i4").reshape(40, 36)
    data[5:10] = -1  # a row of inner chunks left at the fill value: empty in their shards
    sharded[:] = data
    group.create_array("scalar", shape=(), dtype="i8")[...] = 42
    group.create_array("scalar_v2", shape=(), dtype="f8",
                       chunk_key_encoding={"name": "v2", "separator": "."})[...] = 2.5
    (root / "README.txt").write_text("notes next to the data, not Zarr\n")
    return root


def assert_same_v3_store(original: Path, sidecar) -> None:
    """zarr reads the packed store (served as Zarr v2) as the original: every array's values
    (NaN-aware), fill value and attributes (dimension names as ``_ARRAY_DIMENSIONS``), every
    group's attributes; files that are no part of the hierarchy by their own keys."""
    store = refindex.open_store(sidecar)
    packed = zarr.open_group(store, mode="r")
    source = zarr.open_group(original, mode="r")
    with warnings.catch_warnings():  # zarr warns of README.txt, no part of the hierarchy
        warnings.simplefilter("ignore")
        members = dict(source.members(max_depth=None))
    assert members
    for path, node in members.items():
        expected = node.attrs.asdict()
        if isinstance(node, zarr.Array):
            if node.metadata.dimension_names:
                expected["_ARRAY_DIMENSIONS"] = list(node.metadata.dimension_names)
            np.testing.assert_array_equal(packed[path][...], node[...], err_msg=path)
            np.testing.assert_array_equal(packed[path].fill_value, node.fill_value,
                                          err_msg=path)
        assert packed[path].attrs.asdict() == expected, path
    assert packed.attrs.asdict() == source.attrs.asdict()
    readme = original / "README.txt"
    if readme.exists():
        assert read_keys(store, ["README.txt"]) == [readme.read_bytes()]


def chunk_coords(names: list[str], array: str) -> list[tuple[int, ...]]:
    """Grid coordinates of the chunk (or shard) keys of ``array`` among ``names``, in order."""
    found = []
    for name in names:
        if name.startswith(array + "/") and not name.endswith("zarr.json"):
            chunk = name[len(array) + 1:].removeprefix("c/").removeprefix("c.")
            found.append(tuple(int(c) for c in chunk.replace("/", ".").split(".")))
    return found


@pytest.fixture
def v3_store(tmp_path: Path) -> Path:
    return make_v3_store(tmp_path / "cells3.zarr")


def test_packed_v3_store_reads_like_the_original(v3_store, tmp_path):
    result = pack(v3_store, tmp_path / "out", PackOptions(target_size=20_000))

    assert len(result.parts) > 3
    assert_same_v3_store(v3_store, result.sidecar)


def test_packed_v3_store_with_consolidated_metadata_and_every_codec(tmp_path):
    root = zarr_stores.v3_store(tmp_path / "codecs.zarr", sharded=True, consolidated=True)

    result = pack(root, tmp_path / "out", PackOptions(target_size=4_000))

    assert len(result.parts) > 1
    zarr_stores.assert_same_arrays(root, result.sidecar)


def test_v3_parts_hold_metadata_first_then_each_arrays_chunks_in_c_order(v3_store, tmp_path):
    result = pack(v3_store, tmp_path / "out", PackOptions(target_size=10**9))

    names = tar_names(result.parts[0].path)
    assert sorted(names) == sorted(store_files(v3_store))
    kinds = ["meta" if n.rsplit("/", 1)[-1] == "zarr.json" else "data" for n in names]
    assert kinds == sorted(kinds, key=lambda kind: kind != "meta")
    volume = chunk_coords(names, "volume")
    assert volume == sorted(volume) and len(volume) == 10 * 4 * 2
    assert volume[:2 * 4 * 2][-1] == (1, 3, 1) and volume[2 * 4 * 2] == (2, 0, 0)
    for array in ("labels/mask", "labels/counts", "labels/flags", "sharded"):
        coords = chunk_coords(names, array)
        assert coords == sorted(coords) and coords, array
    assert "scalar/c" in names and "scalar_v2/0" in names


def test_sharded_array_is_indexed_by_its_inner_chunks_within_the_packed_shards(v3_store,
                                                                                tmp_path):
    result = pack(v3_store, tmp_path / "out", PackOptions(target_size=10**9))

    node = result.index.arrays["sharded"]
    assert node.zarray["chunks"] == list(INNER) and node.chunks.grid == (8, 6)
    present = node.chunks.present()
    assert len(present) == 8 * 6 - 6  # the row of inner chunks at the fill value is empty
    with tarfile.open(result.parts[0].path) as tar:
        shards = {info.name: info for info in tar if info.name.startswith("sharded/c/")}
    per_shard = np.array(SHARD) // np.array(INNER)
    for flat in present.tolist():
        ref = node.chunks.get(flat)
        shard = shards["sharded/c/{}/{}".format(*(np.array(node.chunks.coords(flat))
                                                    // per_shard))]
        assert shard.offset_data <= ref.offset
        assert ref.offset + ref.length <= shard.offset_data + shard.size
    v2_only = zarr.open_array(refindex.open_store(result.sidecar), path="sharded", mode="r",
                              zarr_format=2)
    np.testing.assert_array_equal(v2_only[...], zarr.open_array(v3_store / "sharded")[...])


def test_one_part_pack_indexes_arrays_as_a_scan_of_the_part(v3_store, tmp_path):
    result = pack(v3_store, tmp_path / "out", PackOptions(target_size=10**9))

    scanned = scan(result.parts[0].path).index
    assert result.index.groups == scanned.groups
    assert result.index.arrays.keys() == scanned.arrays.keys()
    for path, node in result.index.arrays.items():
        other = scanned.arrays[path]
        assert (node.zarray, node.attrs) == (other.zarray, other.attrs), path
        for column in ("source", "offset", "length"):
            assert np.array_equal(getattr(node.chunks, column), getattr(other.chunks, column))


def test_rerun_keeps_every_part_of_a_v3_store(v3_store, tmp_path):
    options = PackOptions(target_size=20_000)
    first = pack(v3_store, tmp_path / "out", options)
    stamps = [part.path.stat().st_mtime_ns for part in first.parts]

    again = pack(v3_store, tmp_path / "out", options)

    assert all(part.kept for part in again.parts)
    assert [part.path.stat().st_mtime_ns for part in again.parts] == stamps
    assert_same_v3_store(v3_store, again.sidecar)


def test_stale_consolidated_metadata_is_followed_and_what_it_leaves_out_reported(v3_store,
                                                                              tmp_path):
    with warnings.catch_warnings():  # v3 consolidated metadata is not in the spec (yet)
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(v3_store)
    late = zarr.open_group(v3_store, mode="r+", use_consolidated=False)
    late.create_array("late", shape=(4,), chunks=(2,), dtype="i1")[:] = 7

    result = pack(v3_store, tmp_path / "out")

    assert "late" not in zarr.open_group(v3_store, mode="r")  # as zarr reads the store
    assert "late" not in result.index.arrays
    assert any("'late/c/0'" in note for note in result.skipped)
    assert "late/c/0" in tar_names(result.parts[0].path)


def test_a_store_that_is_one_v3_array(tmp_path):
    root = tmp_path / "plain.zarr"
    array = zarr.create_array(root, shape=(30, 30), chunks=(7, 7), shards=(14, 14),
                              dtype="i4", zarr_format=3)
    array[:] = np.arange(900, dtype="i4").reshape(30, 30)

    result = pack(root, tmp_path / "out")

    packed = zarr.open_array(refindex.open_store(result.sidecar), mode="r")
    np.testing.assert_array_equal(packed[...], array[...])


@pytest.mark.parametrize(("text", "problem"), [
    ('{"zarr_format": 3, "node_type": "array", ', "cannot be read as JSON"),
    ('{"zarr_format": 3, "node_type": "dataset"}', "node_type 'dataset'"),
    ('{"zarr_format": 2, "node_type": "group"}', "not Zarr v3 metadata"),
])
def test_a_corrupt_zarr_json_names_the_file(v3_store, tmp_path, text, problem):
    (v3_store / "labels" / "mask" / "zarr.json").write_text(text)

    with pytest.raises(ContainerError, match=rf"cells3\.zarr: labels/mask/zarr\.json: {problem}"):
        pack(v3_store, tmp_path / "out")


def test_a_corrupt_shard_index_names_the_part_and_the_shard(v3_store, tmp_path):
    shard = v3_store / "sharded" / "c" / "1" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0x01  # a bit of the index's last entry: its CRC32C no longer matches
    shard.write_bytes(bytes(data))

    with pytest.raises(ContainerError, match=r"cells3-00000\.tar: member 'sharded/c/1/0': "
                                             r"the shard index's CRC32C"):
        pack(v3_store, tmp_path / "out", PackOptions(target_size=10**9))


def test_pack_command_packs_a_v3_store(v3_store, tmp_path, capsys):
    code = main(["pack", str(v3_store), "-o", str(tmp_path / "out"), "--target-size", "40KB"])

    assert code == 0
    assert "tar parts" in capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("cells3-*.tar"))) > 1
    assert_same_v3_store(v3_store, tmp_path / "out" / "cells3.refs.json")


# --- what pack refuses --------------------------------------------------------------------


def test_a_v3_array_without_a_v2_equivalent_is_refused_before_packing(tmp_path):
    root = tmp_path / "odd.zarr"
    group = zarr.open_group(root, mode="w", zarr_format=3)
    group.create_array("turned", shape=(2, 3, 4), chunks=(2, 3, 4), dtype="i1",
                       filters=[TransposeCodec(order=(1, 0, 2))])[...] = 1

    with pytest.raises(UnsupportedFeatureError, match=r"odd\.zarr.*turned.*transpose"):
        pack(root, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.tar"))


def test_a_folder_that_is_no_zarr_store_is_refused(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.txt").write_text("x")

    with pytest.raises(ContainerError, match=r"plain: not a Zarr v2 store .* nor a Zarr v3"):
        pack(tmp_path / "plain", tmp_path / "out")


def test_broken_array_metadata_names_the_file_and_key(store, tmp_path):
    (store / "labels" / "mask" / ".zarray").write_text('{"zarr_format": 2, "shape": [4]}')

    with pytest.raises(ContainerError, match=r"cells\.zarr: labels/mask/\.zarray: missing"):
        read_store(store)


def test_a_chunk_that_changes_while_packing_is_an_error(store, tmp_path):
    class _Grow(PackProgress):
        def planned(self, files, data_bytes, parts):
            with open(store / "volume" / "3.3.3", "ab") as chunk:
                chunk.write(b"more")

    with pytest.raises(ContainerError, match=r"volume/3\.3\.3: changed while packing"):
        pack(store, tmp_path / "out", progress=_Grow())


def test_a_part_that_cannot_be_written_is_an_error_naming_it(store, tmp_path, monkeypatch):
    def full_disk(fd, pieces):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tar_part.os, "writev", full_disk)

    with pytest.raises(RefindexError, match=r"out/\S+\.tar\.partial: cannot write the part: "
                                            r"No space left on device"):
        pack(store, tmp_path / "out")


# --- the command --------------------------------------------------------------------------


def test_pack_command_writes_parts_and_sidecar(store, tmp_path, capsys):
    code = main(["pack", str(store), "-o", str(tmp_path / "out"), "--target-size", "40KB"])

    assert code == 0
    assert "tar parts" in capsys.readouterr().err
    assert len(list((tmp_path / "out").glob("cells-*.tar"))) > 1
    assert_same_store(store, tmp_path / "out" / "cells.refs.json")


def test_pack_command_refuses_a_size_it_cannot_read(store, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["pack", str(store), "-o", str(tmp_path / "out"), "--target-size", "lots"])

    assert exited.value.code == 2
    assert "'lots' is not a size" in capsys.readouterr().err


def test_packing_keeps_memory_bounded_by_streaming(store, tmp_path, monkeypatch):
    """Every store file is read in bounded pieces, never whole."""
    import refindex.pack.tar_part as tar_part

    largest = max(path.stat().st_size for path in store_files(store).values())
    monkeypatch.setattr(tar_part, "COPY_BUFFER", 1024)
    store_fds: set[int] = set()
    reads = []
    real_open, real_read = os.open, os.read

    def recording_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).startswith(str(store) + os.sep):
            store_fds.add(fd)
        return fd

    def recording_read(fd, size):
        if fd in store_fds:
            reads.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "read", recording_read)
    pack(store, tmp_path / "out")

    assert largest > 1024 and reads and max(reads) <= 1024


def test_files_larger_than_the_copy_buffer_are_packed_whole(store, tmp_path, monkeypatch):
    import refindex.pack.tar_part as tar_part

    monkeypatch.setattr(tar_part, "COPY_BUFFER", 1000)  # no multiple of the 512-byte block
    result = pack(store, tmp_path / "out")

    assert_same_store(store, result.sidecar)


# --- the tar headers ----------------------------------------------------------------------

MTIME = 1_700_000_000
LONG_DIR = "group-" + "d" * 90  # with a chunk key below it, a name of more than 100 bytes


def tarfile_header(name: str, size: int, mtime: int = MTIME) -> bytes:
    """The header ``tarfile`` writes for a member as pack describes it (pax format)."""
    info = tarinfo_as_packed(name, size, mtime)
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def tarinfo_as_packed(name: str, size: int, mtime: int = MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info


def header_fields(info: tarfile.TarInfo) -> tuple:
    """What a reader learns of a member from its header (the checksum checked on reading)."""
    return (info.name, info.size, info.mtime, info.mode, info.type, info.linkname, info.uid,
            info.gid, info.uname, info.gname)


def write_files(root: Path, files: dict[str, bytes]) -> list[FileEntry]:
    """``files`` (bytes by key) written under ``root``, all modified at MTIME."""
    entries = []
    for key, data in files.items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (MTIME, MTIME))
        entries.append(FileEntry(key, len(data), MTIME * 1_000_000_000))
    return entries


@pytest.mark.parametrize("name", ["a", "volume/0.0.0", "x" * 100, f"{LONG_DIR[:90]}/0.0"])
@pytest.mark.parametrize("size", [0, 1, 512, 12_345])
def test_a_ustar_header_is_byte_for_byte_the_one_tarfile_writes(name, size):
    header = member_header(name, size, MTIME)

    assert len(header) == 512
    assert header == tarfile_header(name, size)


def test_a_long_splittable_name_takes_one_ustar_block_with_a_prefix():
    name = f"{LONG_DIR}/{'e' * 60}/1.2.3"  # 164 bytes
    header = member_header(name, 10, MTIME)

    assert len(header) == 512 and header[156:157] == b"0", "one plain ustar block"
    assert header[345:500].rstrip(b"\0") == LONG_DIR.encode()
    info = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
    assert header_fields(info) == header_fields(tarinfo_as_packed(name, 10))


@pytest.mark.parametrize("name", [
    "x" * 101,  # no slash to split at
    "d" * 156 + "/0.0",  # the prefix would pass 155 bytes
    "d/" + "x" * 101,  # the name would pass 100 bytes
    "x" * 100 + "/",  # the name would be empty
    "/" + "x" * 100,  # the prefix would be empty
    "zellkern-\u00fc/0.0",  # not ASCII
    "surrogate-\udcff/0.0",  # a file name that is not UTF-8
])
def test_a_name_ustar_cannot_hold_gets_the_pax_header_tarfile_writes(name):
    assert member_header(name, 10, MTIME) == tarfile_header(name, 10)


@pytest.mark.parametrize("size, mtime", [(8**11, MTIME), (20 * 2**30, MTIME), (10, 8**11),
                                         (10, -1)])
def test_a_size_or_mtime_past_ustar_gets_the_pax_header_tarfile_writes(size, mtime):
    assert member_header("c/0.0", size, mtime) == tarfile_header("c/0.0", size, mtime)


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 1024])
def test_padding_fills_the_last_block(size):
    assert (size + len(padding(size))) % 512 == 0 and len(padding(size)) < 512


HEADER_CASES = {
    ".zgroup": b"{}",
    "empty": b"",
    "one-block": bytes(range(256)) * 2,
    "two-blocks": b"\xff" * 1024,
    "odd": b"z" * 1000,
    "x" * 100: b"exactly 100 bytes of name",
    f"{LONG_DIR}/{'e' * 60}/1.2.3": b"long, splittable",
    f"{'d' * 160}/0.0": b"long, not splittable",
    "k\u00e4se/0.0": b"not ASCII",
}


def test_tarfile_reads_every_header_field_as_tarfile_itself_writes_it(tmp_path):
    entries = write_files(tmp_path / "files", HEADER_CASES)
    written = write_part(tmp_path / "part.tar", tmp_path / "files", entries, len(entries))

    with tarfile.open(tmp_path / "part.tar") as tar:
        infos = tar.getmembers()
        assert [header_fields(info) for info in infos] == [
            header_fields(tarinfo_as_packed(key, len(data))) for key, data in HEADER_CASES.items()]
        assert [tar.extractfile(info).read() for info in infos] == list(HEADER_CASES.values())
    assert written.offsets.tolist() == [info.offset_data for info in infos]


def test_a_part_is_byte_for_byte_the_tar_tarfile_writes_but_for_split_names(tmp_path):
    """The same members, header sizes and end of archive; only a long name that ustar can
    split is written without tarfile's pax header."""
    cases = {key: data for key, data in HEADER_CASES.items() if "e" * 60 not in key}
    entries = write_files(tmp_path / "files", cases)
    written = write_part(tmp_path / "part.tar", tmp_path / "files", entries, len(entries))

    with tarfile.open(tmp_path / "reference.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for key, data in cases.items():
            with open(tmp_path / "files" / key, "rb") as file:
                tar.addfile(tarinfo_as_packed(key, len(data)), file)
    data = (tmp_path / "part.tar").read_bytes()
    assert data == (tmp_path / "reference.tar").read_bytes()
    assert (written.size, written.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_gnu_tar_extracts_every_member_with_its_name_bytes_and_mtime(tmp_path):
    entries = write_files(tmp_path / "files", HEADER_CASES)
    write_part(tmp_path / "part.tar", tmp_path / "files", entries, len(entries))
    (tmp_path / "x").mkdir()

    subprocess.run(["tar", "-xf", str(tmp_path / "part.tar"), "-C", str(tmp_path / "x")],
                   check=True, env={**os.environ, "LC_ALL": "C.UTF-8"})

    for key, data in HEADER_CASES.items():
        extracted = tmp_path / "x" / key
        assert extracted.read_bytes() == data, key
        assert extracted.stat().st_mtime == MTIME, key


def test_a_store_with_long_keys_packs_and_reads_back_through_the_scanner(tmp_path):
    root = tmp_path / "long.zarr"
    group = zarr.open_group(root, mode="w", zarr_format=2)
    deep = group.create_group(LONG_DIR).create_group("e" * 40)
    array = deep.create_array("values", shape=(30, 30), chunks=(10, 10), dtype="i4")
    array[:] = np.arange(900, dtype="i4").reshape(30, 30)
    assert max(len(key) for key in store_files(root)) > 100

    result = pack(root, tmp_path / "out")

    assert_same_store(root, result.sidecar)
    scanned = scan(result.parts[0].path).index
    path = f"{LONG_DIR}/{'e' * 40}/values"
    assert scanned.arrays.keys() == result.index.arrays.keys() == {path}
    for column in ("offset", "length"):
        assert np.array_equal(getattr(scanned.arrays[path].chunks, column),
                              getattr(result.index.arrays[path].chunks, column))
