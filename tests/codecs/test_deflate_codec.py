"""refindex.deflate: the raw DEFLATE streams zip archives store members in."""

from __future__ import annotations

import zipfile

import numcodecs
import numpy as np
import pytest

from refindex.codecs import RawDeflateCodec
from refindex.errors import RefindexError


def test_decodes_a_deflated_zip_member_to_the_file(tmp_path):
    data = np.arange(5000, dtype="<i4").tobytes()
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("chunk", data)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("chunk")
    raw = path.read_bytes()
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)

    decoded = RawDeflateCodec().decode(raw[start:start + info.compress_size])

    assert bytes(decoded) == data


def test_is_registered_with_numcodecs_and_round_trips():
    codec = numcodecs.get_codec({"id": "refindex.deflate", "level": 6})
    data = np.linspace(0, 1, 1000).tobytes()

    assert isinstance(codec, RawDeflateCodec)
    assert bytes(codec.decode(codec.encode(data))) == data


def test_truncated_stream_is_an_error():
    encoded = RawDeflateCodec().encode(np.arange(1000, dtype="i8").tobytes())

    with pytest.raises(RefindexError, match="truncated"):
        RawDeflateCodec().decode(encoded[: len(encoded) // 2])
