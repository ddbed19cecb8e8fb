"""The TIFF codecs on single strips and tiles: ``refindex.tiff_predictor`` undoes what
imagecodecs' predictor encoders did (TIFF's, row by row, in any number of rows) and
``refindex.tiff_jpeg`` decodes with tables given apart from the stream; both go through
numcodecs by id, with JSON configs."""

from __future__ import annotations

import base64
import json

import imagecodecs
import numcodecs
import numpy as np
import pytest

import refindex.codecs  # noqa: F401 - registers the codecs
from refindex.codecs import TiffPredictorCodec


def _encoded(values: np.ndarray, predictor: int) -> bytes:
    """What a TIFF writer stores: predicted in native order, then (integers) in the file's."""
    native = values.astype(values.dtype.newbyteorder("="))
    if predictor == 2:
        return imagecodecs.delta_encode(native, axis=-2).astype(values.dtype).tobytes()
    return imagecodecs.floatpred_encode(native, axis=-2).tobytes()


@pytest.mark.parametrize("dtype, predictor", [("<u2", 2), (">u2", 2), ("<i4", 2), (">i4", 2),
                                              ("|u1", 2), ("<f4", 3), (">f4", 3),
                                              ("<f8", 3), (">f8", 3)])
@pytest.mark.parametrize("rows", [1, 5])
def test_the_predictor_is_undone_row_by_row_in_any_number_of_rows(dtype, predictor, rows):
    values = (np.arange(rows * 7 * 3) * 37 % 251).astype(dtype).reshape(rows, 7, 3)
    codec = numcodecs.get_codec({"id": "refindex.tiff_predictor", "predictor": predictor,
                                 "dtype": dtype, "width": 7, "samples": 3})
    decoded = np.frombuffer(codec.decode(_encoded(values, predictor)), dtype)
    assert decoded.tobytes() == values.tobytes()
    assert codec.decode(codec.encode(values.tobytes())).tobytes() == values.tobytes()


def test_a_config_is_json_and_round_trips():
    codec = TiffPredictorCodec(3, ">f4", 41, 1)
    config = json.loads(json.dumps(codec.get_config()))
    assert numcodecs.get_codec(config).get_config() == codec.get_config()


def test_bytes_that_are_not_whole_rows_are_refused():
    codec = TiffPredictorCodec(2, "<u2", 7, 3)
    with pytest.raises(ValueError, match="not whole rows of 7 × 3 values of <u2"):
        codec.decode(bytes(7 * 3 * 2 + 2))


def test_an_unknown_predictor_is_refused():
    with pytest.raises(ValueError, match="TIFF predictor 5"):
        TiffPredictorCodec(5, "<u2", 7)


def test_jpeg_decodes_an_abbreviated_stream_with_tables_given_apart():
    from tests.scan.tifffiles import _segments, image

    tile = image((16, 16))
    parts = _segments(imagecodecs.jpeg8_encode(tile, level=90))
    tables = b"\xff\xd8" + b"".join(p for p in parts if p[1] in (0xDB, 0xC4)) + b"\xff\xd9"
    stream = b"\xff\xd8" + b"".join(p for p in parts if p[1] not in (0xDB, 0xC4, 0xE0))
    codec = numcodecs.get_codec({"id": "refindex.tiff_jpeg",
                                 "tables": base64.b64encode(tables).decode()})
    expected = imagecodecs.jpeg8_decode(stream, tables=tables)
    assert np.asarray(codec.decode(stream)).tobytes() == expected.tobytes()


@pytest.mark.parametrize("codec_id", ["imagecodecs_lzw", "imagecodecs_packbits"])
def test_imagecodecs_codecs_named_by_tiff_sidecars_are_found_by_id(codec_id):
    data = bytes(range(256)) * 8
    codec = numcodecs.get_codec({"id": codec_id})
    encoded = getattr(imagecodecs, codec_id.split("_")[1] + "_encode")(data)
    assert bytes(codec.decode(encoded)) == data
