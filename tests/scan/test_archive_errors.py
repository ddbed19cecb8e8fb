"""Corrupt, compressed or unsupported archives give a clear, typed error naming the archive,
the member and the problem; never a half-right index."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.scan import ScanOptions, scan
from tests.scan.zarr_stores import tar_of, v2_store, zip_of

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return v2_store(tmp_path_factory.mktemp("store") / "v2.zarr")


def small_store(path: Path) -> Path:
    """A v2 array of two uncompressed chunks."""
    array = zarr.create_array(str(path), shape=(4,), chunks=(2,), dtype="<i4", zarr_format=2,
                              compressors=None)
    array[...] = [1, 2, 3, 4]
    return path


def assert_error(kind: type[Exception], path: Path, *phrases: str, **options) -> str:
    options.setdefault("on_unsupported", "error")  # what cannot be indexed: an error, not left out
    with pytest.raises(kind) as caught:
        scan(path, ScanOptions(**options))
    message = str(caught.value)
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message, message
    return message


@pytest.mark.parametrize(("name", "compress"), [("gzip", gzip.compress),
                                               ("bzip2", bz2.compress), ("xz", lzma.compress)])
def test_compressed_tar_is_refused(store, tmp_path, name, compress):
    plain = tar_of(store, tmp_path / "store.tar")
    path = tmp_path / "store.tar.z"
    path.write_bytes(compress(plain.read_bytes()))

    assert_error(ContainerError, path, f"{name}-compressed", "no byte ranges", "decompress it")


def test_tar_truncated_inside_a_member(store, tmp_path):
    path = tar_of(store, tmp_path / "store.tar")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 + 100])

    assert_error(ContainerError, path, "truncated")


def test_tar_truncated_between_members_lacks_its_end_marker(tmp_path):
    path = tar_of(small_store(tmp_path / "a.zarr"), tmp_path / "a.tar")
    with tarfile.open(path) as archive:
        last = archive.getmembers()[-1]
    path.write_bytes(path.read_bytes()[:last.offset])  # cut before the last header

    assert_error(ContainerError, path, "end-of-archive marker", "truncated")


def test_tar_with_a_damaged_header(tmp_path):
    path = tar_of(small_store(tmp_path / "a.zarr"), tmp_path / "a.tar")
    with tarfile.open(path) as archive:
        second = archive.getmembers()[1]
    data = bytearray(path.read_bytes())
    data[second.offset + 10] ^= 0xFF  # a byte of its name: the checksum no longer matches
    path.write_bytes(bytes(data))

    assert_error(ContainerError, path, f"byte {second.offset}", "corrupt")


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write sparse files")
def test_sparse_tar_member_is_refused(tmp_path):
    store = small_store(tmp_path / "a.zarr")
    holes = store / "holes"
    with open(holes, "wb") as f:
        f.seek(10 * 2**20)
        f.write(b"end")
    path = tmp_path / "a.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(path), "-C", str(store),
                    "."], check=True)

    assert_error(ContainerError, path, "'./holes'", "sparse")


def test_archive_without_zarr_metadata(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    path = tmp_path / "notes.tar"
    with tarfile.open(path, "w") as archive:
        archive.add(notes, arcname="notes.txt")

    assert_error(ContainerError, path, "no Zarr metadata", "not a Zarr store")


def test_invalid_metadata_json_names_the_member(tmp_path):
    store = small_store(tmp_path / "a.zarr")
    (store / ".zarray").write_text("{not json")

    assert_error(ContainerError, tar_of(store, tmp_path / "a.tar"), "store.zarr/.zarray",
                 "not valid JSON")


def test_zip_member_compressed_with_bzip2_is_unsupported(tmp_path):
    store = small_store(tmp_path / "a.zarr")
    path = zip_of(store, tmp_path / "a.zip", compression=zipfile.ZIP_BZIP2)

    assert_error(UnsupportedFeatureError, path, "bzip2", "stored and deflated")


def test_zip_mixing_stored_and_deflated_chunks_of_one_array(tmp_path):
    store = small_store(tmp_path / "a.zarr")
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, method in ((".zarray", zipfile.ZIP_STORED), ("0", zipfile.ZIP_STORED),
                             ("1", zipfile.ZIP_DEFLATED)):
            archive.write(store / name, f"a/{name}", compress_type=method)

    assert_error(UnsupportedFeatureError, path, "'a'", "both deflated and uncompressed")


def test_encrypted_zip_member_is_unsupported(tmp_path):
    path = zip_of(small_store(tmp_path / "a.zarr"), tmp_path / "a.zip", top="")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("0")
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 48] != b"0P":  # the central record of member "0"
        central = data.index(b"PK\x01\x02", central + 4)
    data[member.header_offset + 6] |= 1  # the "encrypted" flag, in both headers
    data[central + 8] |= 1
    path.write_bytes(bytes(data))

    assert_error(UnsupportedFeatureError, path, "encryption")


def test_zip_member_without_its_local_header(tmp_path):
    path = zip_of(small_store(tmp_path / "a.zarr"), tmp_path / "a.zip")
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("store.zarr/0")
    data = bytearray(path.read_bytes())
    data[member.header_offset:member.header_offset + 4] = b"XXXX"
    path.write_bytes(bytes(data))

    assert_error(ContainerError, path, "'store.zarr/0'", "local file header", "corrupt")


def test_truncated_zip(tmp_path):
    path = zip_of(small_store(tmp_path / "a.zarr"), tmp_path / "a.zip")
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # the end of the central directory is gone

    assert_error(ContainerError, path)


def test_corrupt_deflated_metadata_is_caught_by_its_crc(tmp_path):
    store = small_store(tmp_path / "a.zarr")
    (store / ".zattrs").write_text(json.dumps({"note": "x" * 400}))
    path = zip_of(store, tmp_path / "a.zip", compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("store.zarr/.zattrs")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(data))

    assert_error(ContainerError, path, "'store.zarr/.zattrs'", "corrupt")


def unsupported_v3_array(path: Path) -> Path:
    """A v3 store whose array ``b`` names a codec nothing knows, beside a readable ``a``."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    for name in ("a", "b"):
        array = root.create_array(name, shape=(4,), chunks=(2,), dtype="i2")
        array[...] = np.arange(4)
    metadata = json.loads((path / "b" / "zarr.json").read_text())
    metadata["codecs"].append({"name": "lzw", "configuration": {}})
    (path / "b" / "zarr.json").write_text(json.dumps(metadata))
    return path


def test_unknown_v3_codec_names_the_array_and_codec(tmp_path):
    path = tar_of(unsupported_v3_array(tmp_path / "s.zarr"), tmp_path / "s.tar")

    assert_error(UnsupportedFeatureError, path, "'b'", "codec 'lzw'")


def test_unsupported_arrays_are_left_out_and_recorded_by_default(tmp_path):
    path = tar_of(unsupported_v3_array(tmp_path / "s.zarr"), tmp_path / "s.tar")

    result = scan(path)

    assert list(result.index.arrays) == ["a"]
    assert list(result.left_out) == ["b"] and "'lzw'" in result.left_out["b"]
