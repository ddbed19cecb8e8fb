"""refindex's codecs under their Zarr v3 names: one wrapper per bytes-to-bytes codec,
declared as a ``zarr.codecs`` entry point, decoding as the numcodecs codec does."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from zarr.core.buffer import default_buffer_prototype
from zarr.registry import get_codec_class

from refindex.codecs import LzfCodec
from refindex.virtualizarr import zarr_codecs

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
NO_V3_FORM = {"refindex.objects", "refindex.guarded"}
"""Arrays of objects (refused by the parser), and the store's guard (never in sidecars)."""


def test_every_refindex_codec_has_a_zarr_v3_name():
    ids = set(tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["numcodecs.codecs"])
    wrapped = {cls.codec_name.removeprefix(zarr_codecs.PREFIX) for cls in zarr_codecs.CODECS}
    assert ids - NO_V3_FORM == wrapped


def test_the_wrappers_are_declared_as_zarr_codecs_entry_points():
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["zarr.codecs"]
    assert declared == {cls.codec_name: f"{cls.__module__}:{cls.__name__}"
                        for cls in zarr_codecs.CODECS}


@pytest.mark.parametrize("cls", zarr_codecs.CODECS, ids=lambda cls: cls.codec_name)
def test_zarr_resolves_each_name_to_its_wrapper(cls):
    assert get_codec_class(cls.codec_name) is cls


def test_a_wrapper_decodes_as_its_numcodecs_codec():
    data = (np.arange(4096, dtype="<i4") // 9).tobytes()
    encoded = LzfCodec(size=len(data)).encode(data)
    codec = get_codec_class("numcodecs.refindex.lzf").from_dict(
        {"name": "numcodecs.refindex.lzf", "configuration": {"size": len(data)}})
    assert codec.to_dict()["configuration"] == {"size": len(data)}
    buffer = default_buffer_prototype().buffer.from_bytes(encoded)
    spec = SimpleNamespace(prototype=default_buffer_prototype())  # all a bytes codec uses
    decoded = asyncio.run(codec._decode_single(buffer, spec))
    assert decoded.to_bytes() == data
