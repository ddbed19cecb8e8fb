"""Zarr v3 array metadata as the equivalent Zarr v2 ``.zarray``: exact where v2 can say it,
an UnsupportedFeatureError naming the array and the feature where it cannot."""

from __future__ import annotations

import numcodecs
import pytest
from zarr.core.metadata.v2 import ArrayV2Metadata

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.scan.zarrstore.v3 import v3_array


def metadata(**changes) -> dict:
    """A v3 zarr.json of a little-endian float32 (10, 6) array in (4, 3) chunks."""
    doc = {
        "zarr_format": 3, "node_type": "array", "shape": [10, 6], "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 3]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "NaN",
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": {"units": "m"}, "dimension_names": ["y", "x"],
    }
    doc.update(changes)
    return doc


def translate(**changes):
    spec = v3_array(metadata(**changes), "a", "store.tar")
    ArrayV2Metadata.from_dict(spec.zarray)  # zarr itself accepts the result
    return spec


def test_plain_array():
    spec = translate()

    assert spec.zarray == {
        "zarr_format": 2, "shape": [10, 6], "chunks": [4, 3], "dtype": "<f4",
        "fill_value": "NaN", "order": "C", "filters": None, "compressor": None,
        "dimension_separator": "/"}
    assert spec.attrs == {"units": "m", "_ARRAY_DIMENSIONS": ["y", "x"]}
    assert spec.keys.coords("c/2/1") == (2, 1) and spec.keys.coords("2/1") is None
    assert spec.grid == (3, 2) and spec.shard is None


def test_big_endian_bytes_codec_is_the_dtype_byte_order():
    spec = translate(data_type="int16", fill_value=-1,
                     codecs=[{"name": "bytes", "configuration": {"endian": "big"}}])

    assert spec.zarray["dtype"] == ">i2" and spec.zarray["fill_value"] == -1


def test_bytes_to_bytes_codecs_become_filters_then_compressor():
    spec = translate(codecs=[
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 3, "shuffle": "bitshuffle",
                                            "typesize": 4, "blocksize": 0}},
        {"name": "crc32c"}])

    assert spec.zarray["filters"] == [
        {"id": "blosc", "cname": "lz4", "clevel": 3, "shuffle": 2, "blocksize": 0}]
    assert spec.zarray["compressor"] == {"id": "crc32c", "location": "end"}
    for config in (*spec.zarray["filters"], spec.zarray["compressor"]):
        numcodecs.get_codec(config)


def test_numcodecs_bytes_codecs_keep_their_configuration():
    spec = translate(codecs=[{"name": "bytes", "configuration": {"endian": "little"}},
                             {"name": "numcodecs.zlib", "configuration": {"level": 4}}])

    assert spec.zarray["compressor"] == {"id": "zlib", "level": 4}


def test_reversing_transpose_is_fortran_order():
    spec = translate(codecs=[{"name": "transpose", "configuration": {"order": [1, 0]}},
                             {"name": "bytes", "configuration": {"endian": "little"}}])

    assert spec.zarray["order"] == "F"


def test_other_transposes_are_unsupported():
    with pytest.raises(UnsupportedFeatureError, match="'a'.*transpose to axes \\[1, 2, 0\\]"):
        translate(shape=[2, 3, 4], dimension_names=None,
                  chunk_grid={"name": "regular", "configuration": {"chunk_shape": [1, 1, 1]}},
                  codecs=[{"name": "transpose", "configuration": {"order": [1, 2, 0]}},
                          {"name": "bytes", "configuration": {"endian": "little"}}])


def test_strings_get_their_object_codec_as_first_filter():
    spec = translate(data_type="string", fill_value="",
                     codecs=[{"name": "vlen-utf8"}, {"name": "zstd",
                                                     "configuration": {"level": 1}}])

    assert spec.zarray["dtype"] == "|O"
    assert spec.zarray["filters"] == [{"id": "vlen-utf8"}]
    assert spec.zarray["compressor"] == {"id": "zstd", "level": 1, "checksum": False}


def test_v2_chunk_key_encoding():
    spec = translate(chunk_key_encoding={"name": "v2", "configuration": {"separator": "."}})

    assert spec.keys.coords("2.1") == (2, 1) and spec.keys.coords("c/2/1") is None


def test_nan_with_a_payload_cannot_be_a_v2_fill_value():
    with pytest.raises(UnsupportedFeatureError, match="fill value '0x7fc00001'"):
        translate(fill_value="0x7fc00001")


def test_xarray_encoded_fill_value_attribute_is_decoded():
    spec = translate(attributes={"_FillValue": "AAAAAAAAWcA="})  # -100.0, as xarray writes

    assert spec.attrs["_FillValue"] == -100.0


@pytest.mark.parametrize(("changes", "feature"), [
    ({"codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                 {"name": "lzw"}]}, "codec 'lzw'"),
    ({"chunk_grid": {"name": "rectilinear", "configuration": {}}}, "chunk grid 'rectilinear'"),
    ({"storage_transformers": [{"name": "offset"}]}, "storage transformers"),
    ({"data_type": "bfloat17"}, "data type 'bfloat17'"),
    ({"chunk_key_encoding": {"name": "morton"}}, "chunk key encoding 'morton'"),
], ids=["codec", "grid", "transformer", "dtype", "key_encoding"])
def test_what_v2_cannot_express_is_named(changes, feature):
    with pytest.raises(UnsupportedFeatureError) as caught:
        translate(**changes)

    assert "store.tar" in str(caught.value) and "'a'" in str(caught.value)
    assert feature in str(caught.value)


def test_invalid_metadata_is_a_container_error():
    with pytest.raises(ContainerError, match="invalid chunk_shape"):
        translate(chunk_grid={"name": "regular", "configuration": {"chunk_shape": [4]}})
