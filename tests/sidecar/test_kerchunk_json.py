"""kerchunk reference JSON: reading v0/v1 (templates, gen), writing v1, clear errors."""

import base64

import pytest
import ujson

from refindex.errors import SidecarError
from refindex.index import ABSENT, INLINE, WHOLE
from refindex.sidecar import parse_index
from refindex.sidecar.kerchunk_json import from_kerchunk, to_kerchunk

ZARRAY = {"zarr_format": 2, "shape": [4, 6], "chunks": [2, 3], "dtype": "<i4",
          "compressor": None, "filters": None, "fill_value": 0, "order": "C"}


def v1(refs, **extra):
    return {"version": 1, "refs": refs, **extra}


def test_v0_document_is_the_refs_themselves():
    doc = {".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
           "a/0.0": ["/data/f.h5", 100, 24]}
    index = from_kerchunk(doc)
    ref = index.arrays["a"].chunks.get(0)
    assert (index.sources[ref.source].url, ref.offset, ref.length) == ("/data/f.h5", 100, 24)


def test_v1_templates_are_substituted():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/1.1": ["{{u}}/f.h5", 8, 24]}, templates={"u": "s3://bucket/dir"})
    index = from_kerchunk(doc)
    table = index.arrays["a"].chunks
    flat = table.flat_index((1, 1))
    assert index.sources[table.source[flat]].url == "s3://bucket/dir/f.h5"
    assert table.source[0] == ABSENT


def test_v1_gen_expands_with_arithmetic():
    gen = {"key": "a/{{i}}.{{j}}", "url": "{{u}}", "offset": "{{(i * 2 + j) * 24}}",
           "length": "24", "dimensions": {"i": {"stop": 2}, "j": [0, 1]}}
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY)},
             templates={"u": "/f.h5"}, gen=[gen])
    table = from_kerchunk(doc).arrays["a"].chunks
    assert table.offset[table.flat_index((1, 1))] == 72
    assert (table.source >= 0).sum() == 4


def test_inline_text_and_base64_and_whole_object_refs():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/0.0": "base64:" + base64.b64encode(b"\x00\x01").decode(),
              "a/0.1": "plain", "a/1.0": ["s3://b/whole.bin"]})
    table = from_kerchunk(doc).arrays["a"].chunks
    assert table.get(0).data == b"\x00\x01"
    assert table.get(1).data == b"plain" and table.source[1] == INLINE
    assert table.get(table.flat_index((1, 0))).length == WHOLE


def test_write_then_read_preserves_every_reference():
    doc = v1({".zgroup": '{"zarr_format":2}', ".zattrs": '{"title":"t"}',
              "g/.zgroup": '{"zarr_format":2}', "g/a/.zarray": ujson.dumps(ZARRAY),
              "g/a/.zattrs": '{"units":"K"}',
              **{f"g/a/{i}.{j}": ["/data/f.h5", 1000 + 24 * (2 * i + j), 24]
                 for i in range(2) for j in range(2)},
              "g/a/0.1": "base64:AAEC"})
    first = from_kerchunk(doc)
    second = from_kerchunk(ujson.loads(ujson.dumps(to_kerchunk(first))))
    assert second.groups == first.groups
    assert second.arrays["g/a"].attrs == {"units": "K"}
    a, b = first.arrays["g/a"].chunks, second.arrays["g/a"].chunks
    assert (a.source == b.source).all() and (a.offset == b.offset).all()
    assert (a.length == b.length).all() and a.inline == b.inline


def test_written_urls_use_templates_when_repeated():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/0.0": ["s3://bucket/long/path/file.h5", 0, 24],
              "a/0.1": ["s3://bucket/long/path/file.h5", 24, 24]})
    written = to_kerchunk(from_kerchunk(doc))
    assert written["templates"] == {"u0": "s3://bucket/long/path/file.h5"}
    assert written["refs"]["a/0.1"] == ["{{u0}}", 24, 24]


def test_slash_separated_chunk_keys_are_found():
    meta = dict(ZARRAY, dimension_separator="/")
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(meta),
              "a/1/1": ["/f", 0, 24]})
    table = from_kerchunk(doc).arrays["a"].chunks
    assert table.source[table.flat_index((1, 1))] == 0


@pytest.mark.parametrize("content, message", [
    (b'{"version": 1, "refs": {".zgroup": "{\\"zarr', "not valid JSON"),
    (b'{"version": 7, "refs": {}}', "version 7"),
    (b'[1, 2]', "not a sidecar"),
    (b'{"version": 1, "refs": {"a/.zarray": "{\\"zarr_format\\": 2}"}}', "missing 'shape'"),
    (b'{"version": 1, "refs": {"a/.zarray": "not json"}}', "invalid JSON metadata"),
])
def test_malformed_sidecars_raise_clear_errors(content, message):
    with pytest.raises(SidecarError, match=message) as info:
        parse_index(content, "bad.json")
    assert "bad.json" in str(info.value)


def test_bad_reference_names_the_key():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/0.0": ["/f", -5, 10]})
    with pytest.raises(SidecarError, match="a/0.0: offset and length"):
        from_kerchunk(doc, "x.json")


def test_chunk_outside_grid_is_an_error():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/9.0": ["/f", 0, 10]})
    with pytest.raises(SidecarError, match="a/9.0: chunk outside"):
        from_kerchunk(doc, "x.json")


def test_template_expressions_cannot_call_anything():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/0.0": ["{{__import__('os')}}", 0, 10]})
    with pytest.raises(SidecarError, match="cannot evaluate template"):
        from_kerchunk(doc, "x.json")


def test_attribute_dtypes_round_trip_through_the_provenance_block():
    doc = v1({".zgroup": '{"zarr_format":2}', "a/.zarray": ujson.dumps(ZARRAY),
              "a/.zattrs": '{"scale_factor": 0.5}'},
             refindex={"generator": {}, "sources": [],
                       "attribute_dtypes": {"a": {"scale_factor": "<f4"}}})
    index = from_kerchunk(doc)
    assert index.arrays["a"].attr_dtypes == {"scale_factor": "<f4"}
    assert to_kerchunk(index)["refindex"]["attribute_dtypes"] == {"a": {"scale_factor": "<f4"}}


def test_attribute_dtypes_of_an_unknown_array_are_an_error():
    doc = v1({".zgroup": '{"zarr_format":2}'},
             refindex={"generator": {}, "sources": [],
                       "attribute_dtypes": {"nope": {"scale_factor": "<f4"}}})
    with pytest.raises(SidecarError, match="attribute_dtypes: 'nope'"):
        from_kerchunk(doc, "x.json")


def _grid_refs(rows: int, cols: int) -> dict:
    zarray = {"zarr_format": 2, "shape": [rows * 10, cols * 10], "chunks": [10, 10],
              "dtype": "<f4", "compressor": None, "filters": None, "fill_value": 0,
              "order": "C"}
    refs = {"grp/a/.zarray": ujson.dumps(zarray), ".zgroup": '{"zarr_format": 2}'}
    for r in range(rows):
        for c in range(cols):
            refs[f"grp/a/{r}.{c}"] = [f"s3://b/f{(r * cols + c) % 3}.h5", 400 * (r * cols + c), 400]
    return refs


def test_a_large_array_of_plain_references_is_read_exactly():
    index = from_kerchunk({"version": 1, "refs": _grid_refs(40, 50)})
    table = index.arrays["grp/a"].chunks
    assert [s.url for s in index.sources] == ["s3://b/f0.h5", "s3://b/f1.h5", "s3://b/f2.h5"]
    flat = table.flat_index((17, 23))
    assert (table.source[flat], table.offset[flat], table.length[flat]) == (
        (17 * 50 + 23) % 3, 400 * (17 * 50 + 23), 400)
    assert (table.source >= 0).all()


@pytest.mark.parametrize(("key", "value", "message"), [
    ("grp/a/40.0", ["s3://b/f.h5", 0, 1], r"grp/a/40\.0: chunk outside"),
    ("grp/a/1.2", ["s3://b/f.h5", True, 1], r"grp/a/1\.2: offset and length"),
    ("grp/a/1.2", ["s3://b/f.h5", -5, 1], r"grp/a/1\.2: offset and length"),
])
def test_one_bad_reference_among_many_is_named(key, value, message):
    refs = _grid_refs(40, 50)
    refs[key] = value
    with pytest.raises(SidecarError, match=message):
        from_kerchunk({"version": 1, "refs": refs})


def test_inline_chunks_among_plain_ones_are_kept():
    refs = _grid_refs(4, 5)
    refs["grp/a/2.3"] = "base64:" + base64.b64encode(b"\x00" * 400).decode()
    table = from_kerchunk({"version": 1, "refs": refs}).arrays["grp/a"].chunks
    assert table.source[table.flat_index((2, 3))] == INLINE
    assert table.source[table.flat_index((2, 2))] >= 0
