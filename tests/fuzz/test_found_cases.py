"""What the fuzzer found, each made by hand: damaged containers and sidecars end in a
RefindexError that names the file (and the object), never in another exception, a wrong value
or a decompression bomb."""

from __future__ import annotations

import base64
import struct
import zipfile
import zlib

import h5py
import numpy as np
import pytest
import ujson
import zarr
from numcodecs import Zstd

from refindex.errors import (
    ChunkDecodeError,
    ContainerError,
    FetchError,
    SidecarError,
    UnsupportedFeatureError,
)
from refindex.index import Index
from refindex.scan import scan
from refindex.sidecar import load_index, parse_index, write_index
from refindex.sidecar.chunk_parts import encode_column
from refindex.store import open_store

ZARRAY = {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<i4", "compressor": None,
          "filters": None, "fill_value": 0, "order": "C"}


def _kerchunk(chunk, zarray=None, **refindex) -> dict:
    refs = {".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(zarray or ZARRAY),
            "a/0": chunk}
    return {"version": 1, "refs": refs, **({"refindex": refindex} if refindex else {})}


def _read(document: dict | Index, path: str = "a") -> np.ndarray:
    index = document if isinstance(document, Index) else parse_index(document)
    return zarr.open_array(open_store(index), path=path, mode="r", zarr_format=2)[...]


# HDF5: h5py's KeyError, ValueError and TypeError for damaged metadata.

def test_an_object_header_with_a_bad_checksum_is_a_container_error(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("x", data=np.arange(10.0))
        address = h5py.h5o.get_info(f["x"].id).addr
    data = bytearray(path.read_bytes())
    data[address + 8] ^= 0xFF  # inside the object header, under its checksum
    path.write_bytes(bytes(data))
    with pytest.raises(ContainerError, match=r"f\.h5.*'/x'.*corrupt"):
        scan(path)


def test_a_member_name_that_is_not_utf8_is_a_container_error(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(b"caf\xe9", data=np.arange(3))
    with pytest.raises(ContainerError, match=r"f\.h5: group '/': member name .* not UTF-8"):
        scan(path)


def test_a_sidecar_with_text_that_is_not_utf8_is_refused_when_written(tmp_path):
    index = Index(groups={"": {"title": "caf\udce9"}})
    with pytest.raises(SidecarError, match="not UTF-8"):
        write_index(index, tmp_path / "out.json")


# zip: a central directory that puts a member before the archive.

def test_a_member_before_the_start_of_the_zip_is_a_container_error(tmp_path):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("store.zarr/.zgroup", '{"zarr_format": 2}')
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    (directory_offset,) = struct.unpack_from("<I", data, end + 16)
    struct.pack_into("<I", data, end + 16, directory_offset + 100)  # zipfile: offset -100
    path.write_bytes(bytes(data))
    with pytest.raises(ContainerError, match=r"s\.zip: member .* outside the archive"):
        scan(path)


# Sidecars: values of the wrong type where zarr or the source policy would trip on them.

def test_a_source_url_that_is_not_text_is_a_sidecar_error():
    document = _kerchunk(["x", 0, 16], sources=[{"url": ["x"]}], generator={})
    with pytest.raises(SidecarError, match=r"refindex\.sources\[0\]: 'url' must be"):
        parse_index(document)


@pytest.mark.parametrize("field, value", [("order", ["x", 1]), ("dimension_separator", 7),
                                          ("fill_value", ["x", 0, 1]), ("dtype", -1)])
def test_zarray_fields_zarr_would_refuse_are_refused_when_loading(field, value):
    with pytest.raises(SidecarError, match=r"a/\.zarray: not valid Zarr v2 array metadata"):
        parse_index(_kerchunk(["x", 0, 16], {**ZARRAY, field: value}))


@pytest.mark.parametrize("compressor, filters", [([1, 2], None), (None, 1.5), (None, ["x"])])
def test_codecs_that_are_not_codec_maps_are_refused_when_loading(compressor, filters):
    zarray = {**ZARRAY, "compressor": compressor, "filters": filters}
    with pytest.raises(SidecarError, match=r"a/\.zarray: 'compressor' must be"):
        parse_index(_kerchunk(["x", 0, 16], zarray))


def test_a_grid_of_more_chunks_than_int64_holds_is_refused():
    zarray = {**ZARRAY, "shape": [2**62, 2**62], "chunks": [1, 1]}
    with pytest.raises(SidecarError, match="more than"):
        parse_index(_kerchunk(["x", 0, 16], zarray))


# Chunk bytes: whatever a codec raises is a ChunkDecodeError; bombs stop before memory goes.

def test_a_chunk_failing_its_checksum_is_a_chunk_decode_error(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(40, dtype="i4"), chunks=(10,), fletcher32=True)
    index = scan(path).index
    table = index.arrays["x"].chunks
    ref = table.get(0)
    table.set(0, ref.source, ref.offset + 1, ref.length)  # a sidecar off by one byte
    with pytest.raises(ChunkDecodeError, match=r"array 'x'.*fletcher32"):
        _read(index, "x")


def test_an_inline_zlib_bomb_is_refused_before_it_inflates():
    bomb = zlib.compress(bytes(2**28), 9)  # 256 MiB of zeros in 260 KB
    zarray = {**ZARRAY, "compressor": {"id": "zlib", "level": 1}}
    document = _kerchunk("base64:" + base64.b64encode(bomb).decode(), zarray)
    with pytest.raises(ChunkDecodeError, match="more than"):
        _read(document)


def test_a_zstd_frame_declaring_a_huge_size_is_refused_before_allocating():
    frame = bytearray(Zstd().encode(np.arange(4, dtype="<i4").tobytes()))
    zarray = {**ZARRAY, "compressor": {"id": "zstd", "level": 1}}
    huge = b"\x28\xb5\x2f\xfd\xe0" + (2**40).to_bytes(8, "little") + bytes(frame[6:])
    document = _kerchunk("base64:" + base64.b64encode(huge).decode(), zarray)
    with pytest.raises(ChunkDecodeError, match="declares 1099511627776 decoded bytes"):
        _read(document)


def test_a_raw_chunk_of_the_wrong_length_is_a_chunk_decode_error():
    document = _kerchunk("base64:" + base64.b64encode(bytes(12)).decode())
    with pytest.raises(ChunkDecodeError, match="decodes to 12 bytes, a chunk of this array "
                                               "has 16"):
        _read(document)


def test_guarded_reads_stay_exact(tmp_path):
    path = tmp_path / "f.h5"
    values = np.random.default_rng(0).random((30, 7)).astype("f4")
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(8, 7), compression="gzip", shuffle=True,
                         fletcher32=True)
    sidecar = tmp_path / "f.json"
    write_index(scan(path).index, sidecar)
    read = zarr.open_array(open_store(load_index(sidecar)), path="x", mode="r",
                           zarr_format=2)[...]
    assert read.tobytes() == values.tobytes()


# Native chunk tables: values of the wrong type, references that cannot be read.

def _native_part(tmp_path, **column_changes) -> dict:
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(40, dtype="i4"), chunks=(10,))
    sidecar = tmp_path / "f.json"
    write_index(scan(path).index, sidecar)
    document = ujson.loads(sidecar.read_text())
    part = document["arrays"]["x"]["chunks"]["parts"][0]
    for name, values in column_changes.items():
        part[name] = encode_column(np.asarray(values, dtype=np.int64))
    return document


def test_a_column_dtype_that_is_not_text_is_a_sidecar_error(tmp_path):
    document = _native_part(tmp_path)
    document["arrays"]["x"]["chunks"]["parts"][0]["source"]["dtype"] = ["<i1"]
    with pytest.raises(SidecarError, match="column 'source' must be"):
        _read(document, "x")


def test_a_whole_object_reference_not_at_offset_0_is_a_sidecar_error(tmp_path):
    document = _native_part(tmp_path, length=[-1, 40, 40, 40], gap=[5, 0, 0, 0])
    with pytest.raises(SidecarError, match="whole-object reference .* offset other than 0"):
        _read(document, "x")


def test_a_chunk_past_the_recorded_end_of_its_source_is_a_fetch_error(tmp_path):
    document = _native_part(tmp_path, length=[40, 40, 40, 2**40])
    with pytest.raises(FetchError, match=r"x/3: .*past the end of the object"):
        _read(document, "x")


def test_a_chunk_longer_than_any_object_is_refused_before_planning(tmp_path):
    document = _native_part(tmp_path, length=[40, 40, 40, 2**62])
    document["sources"][0].pop("size")
    with pytest.raises(FetchError, match="beyond any object"):
        _read(document, "x")


def test_a_codec_that_is_not_installed_is_an_unsupported_feature_error():
    zarray = {**ZARRAY, "compressor": {"id": "no-such-codec"}}
    with pytest.raises(UnsupportedFeatureError, match="codec 'no-such-codec' cannot be made"):
        _read(_kerchunk(["x", 0, 16], zarray))


def test_an_offset_past_int64_is_a_sidecar_error():
    with pytest.raises(SidecarError, match=r"a/0: offset and length must be integers from 0"):
        parse_index(_kerchunk(["x", 2**64, 16]))


def test_an_attribute_name_that_is_not_utf8_is_refused_when_written(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.attrs[b"titl\xff"] = 1
        f.create_dataset("x", data=np.arange(3))
    index = scan(path).index
    with pytest.raises(SidecarError, match="not UTF-8 text"):
        write_index(index, tmp_path / "f.json")


def test_a_chunk_that_hdf5_lists_but_cannot_look_up_is_a_container_error(tmp_path):
    # A v1 B-tree key's trailing (element) offset damaged: H5Dchunk_iter still lists the
    # chunk, but HDF5's reads do not find it and give fill values.
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(16, dtype="i2").reshape(4, 4), chunks=(4, 4),
                         fillvalue=-3)
        address = f["x"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    # The key before the child pointer: size (4), filter mask (4), offsets (3 x 8).
    pointer = data.index(struct.pack("<Q", address))
    data[pointer - 4:pointer] = b"\xff" * 4  # the high half of the element offset
    path.write_bytes(bytes(data))
    assert (h5py.File(path, "r")["x"][...] == -3).all()  # what h5py reads
    with pytest.raises(ContainerError, match=r"'/x'.*chunk lookup does not find the chunk"):
        scan(path)


def test_a_kerchunk_grid_too_large_for_memory_is_a_sidecar_error():
    zarray = {**ZARRAY, "shape": [2**40], "chunks": [1]}
    with pytest.raises(SidecarError, match=r"a/\.zarray: a grid of 1099511627776 chunks"):
        parse_index(_kerchunk(["x", 0, 16], zarray))
