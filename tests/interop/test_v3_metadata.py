"""A ``.zarray`` as Zarr v3 metadata: codecs in v3 order with the same decoding, or a
refusal saying what has no Zarr v3 form."""

from __future__ import annotations

import base64
import struct

import pytest
from zarr.codecs import BytesCodec, TransposeCodec

from refindex.virtualizarr.metadata import Refusal, v3_metadata


def _zarray(**changes):
    return {"shape": [10, 4], "chunks": [5, 4], "dtype": "<f4", "fill_value": None,
            "order": "C", "filters": None, "compressor": None, **changes}


def _names(metadata):
    return [codec.to_dict()["name"] for codec in metadata.codecs]


def test_filters_then_compressor_become_array_codecs_bytes_and_byte_codecs():
    metadata = v3_metadata(_zarray(filters=[{"id": "delta", "dtype": "<f4"},
                                            {"id": "shuffle", "elementsize": 4}],
                                   compressor={"id": "zlib", "level": 1}), {}, {}, ("y", "x"))
    assert _names(metadata) == ["numcodecs.delta", "bytes", "numcodecs.shuffle",
                                "numcodecs.zlib"]
    assert metadata.dimension_names == ("y", "x")
    assert metadata.fill_value == 0  # v2's none: absent chunks read as the dtype's default


def test_big_endian_and_fortran_order_keep_their_layout():
    metadata = v3_metadata(_zarray(dtype=">i8", order="F"), {}, {}, ("y", "x"))
    transpose, serializer = metadata.codecs
    assert isinstance(transpose, TransposeCodec) and transpose.order == (1, 0)
    assert isinstance(serializer, BytesCodec) and serializer.endian.value == "big"


def test_refindex_codecs_keep_their_ids_under_the_numcodecs_prefix():
    metadata = v3_metadata(_zarray(compressor={"id": "refindex.lzf", "size": 80}), {}, {},
                           ("y", "x"))
    assert _names(metadata) == ["bytes", "numcodecs.refindex.lzf"]


@pytest.mark.parametrize(("zarray", "reason"), [
    (_zarray(filters=[{"id": "shuffle", "elementsize": 4}, {"id": "delta", "dtype": "<f4"}]),
     "no Zarr v3 order"),
    (_zarray(compressor={"id": "zfpy", "mode": 4, "tolerance": -1, "rate": -1,
                         "precision": -1}), "kerchunk output would drop it"),
    (_zarray(dtype="|O", filters=[{"id": "refindex.objects", "dtype": "|O"}]),
     "refindex.objects"),
    (_zarray(compressor={"id": "no-such-codec"}), "no-such-codec"),
])
def test_what_has_no_zarr_v3_form_is_refused(zarray, reason):
    pytest.importorskip("zfpy") if "zfpy" in str(zarray) else None
    with pytest.raises(Refusal, match=reason):
        v3_metadata(zarray, {}, {}, ("y", "x"))


def test_fill_value_attribute_is_encoded_as_xarray_reads_zarr_v3():
    metadata = v3_metadata(_zarray(), {"_FillValue": "NaN", "units": "K",
                                       "_ARRAY_DIMENSIONS": ["y", "x"]}, {}, ("y", "x"))
    expected = base64.standard_b64encode(struct.pack("<d", float("nan"))).decode()
    assert metadata.attributes == {"_FillValue": expected, "units": "K"}


def test_attributes_get_their_recorded_types_back():
    metadata = v3_metadata(_zarray(), {"scale": 0.5, "missing": "NaN"},
                           {"scale": "float32", "missing": "float64"}, ("y", "x"))
    assert metadata.attributes["scale"] == 0.5
    assert metadata.attributes["missing"] != metadata.attributes["missing"]  # a float NaN
