"""The native sidecar format: exact round trips (also through kerchunk JSON), lazy loading part
by part, the directory layout on disk and over HTTP, and clear errors for damaged sidecars."""

from __future__ import annotations

import base64
import json
import pickle
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refindex
from refindex.errors import SidecarError
from refindex.index import ABSENT, INLINE, ArrayNode, ChunkRef, ChunkTable, Index, Source
from refindex.sidecar import load_index, write_index
from refindex.sidecar.chunk_parts import encode_column
from refindex.sidecar.native import DIRECTORY_ABOVE, INDEX_FILE, MARKER
from tests.sidecar.indexes import assert_same_index, grid_index, random_table, zarray

ARRAY_PATHS = ("a", "g/b", "g/temp 2.5", "g/ü:x")


@st.composite
def indexes(draw) -> Index:
    """Random indexes: sources with and without provenance, groups, arrays of 0 to 3
    dimensions (some empty), attributes, attribute dtypes and extra keys."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    optional = st.none() | st.text(min_size=1, max_size=8)
    sources = [Source(f"s3://bucket/dir/file{i}.h5", draw(st.none() | st.integers(0, 2**50)),
                      draw(optional), draw(optional))
               for i in range(draw(st.integers(1, 5)))]
    index = Index(sources=sources, generator={"name": "refindex", "version": "0.1.0",
                                              "scanned_at": "2026-01-02T03:04:05Z"})
    index.groups[""] = {"title": draw(st.text(max_size=6))}
    index.groups["g"] = {}
    for path in draw(st.lists(st.sampled_from(ARRAY_PATHS), unique=True, max_size=3)):
        shape = draw(st.lists(st.integers(0, 9), max_size=3))
        chunks = [draw(st.integers(1, 4)) for _ in shape]
        grid = tuple(-(-s // c) for s, c in zip(shape, chunks, strict=True))
        index.arrays[path] = ArrayNode(
            path, zarray(shape, chunks), {"units": "m", "_ARRAY_DIMENSIONS": []},
            random_table(grid, len(sources), rng), {"scale_factor": "<f4"} if rng.random() < 0.5
            else {})
    if draw(st.booleans()):
        index.extra["notes.txt"] = ChunkRef(INLINE, data=b"free text")
        index.extra["zz/blob"] = ChunkRef(0, 12, 34)
    return index


ROUND_TRIPS = settings(max_examples=40, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIPS
@given(index=indexes(), part_size=st.integers(1, 7), layout=st.sampled_from(["file", "directory"]))
def test_native_round_trip_keeps_every_reference(index, part_size, layout):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.refs"
        write_index(index, path, layout=layout, part_size=part_size)
        assert path.is_dir() == (layout == "directory")
        assert_same_index(load_index(path), index)


@ROUND_TRIPS
@given(index=indexes(), part_size=st.integers(1, 7))
def test_native_to_kerchunk_to_native_keeps_every_reference(index, part_size):
    with tempfile.TemporaryDirectory() as folder:
        native, kerchunk, again = (Path(folder) / name for name in ("n.json", "k.json", "m"))
        write_index(index, native, part_size=part_size)
        write_index(load_index(native), kerchunk, format="kerchunk")
        assert "refs" in json.loads(kerchunk.read_text())
        write_index(load_index(kerchunk), again, layout="directory", part_size=part_size)
        assert_same_index(load_index(again), index)


def test_the_document_says_what_it_is_and_who_wrote_it(tmp_path):
    index = grid_index(10)
    write_index(index, tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert next(iter(doc)) == MARKER and doc[MARKER] == "1.0"
    assert doc["sources"] == [{"url": "s3://bucket/data.h5", "size": 10**9, "etag": '"abc"'}]
    assert doc["generator"]["scanned_at"] == "2026-01-02T03:04:05Z"


def test_back_to_back_chunks_cost_a_few_bytes_each_on_disk(tmp_path):
    rng = np.random.default_rng(7)
    count = 200_000
    index = grid_index(count, sources=100)
    table = index.arrays["a"].chunks
    table.source[:] = np.sort(rng.integers(0, 100, count))
    table.length[:] = rng.integers(1000, 100_000, count)
    ends = np.cumsum(table.length)
    table.offset[:] = ends - table.length  # back to back, across sources too
    written = write_index(index, tmp_path / "s.json")
    assert written / count < 3.5  # lengths of 17 random bits: 2.2 bytes, 3 in base64


def test_layout_auto_is_a_directory_only_above_the_documented_chunk_count(tmp_path):
    write_index(grid_index(100), tmp_path / "small")
    assert (tmp_path / "small").is_file()
    index = Index(sources=[Source("s3://b/k")])
    index.arrays["a"] = ArrayNode("a", zarray([DIRECTORY_ABOVE + 1], [1]), {},
                                  ChunkTable((DIRECTORY_ABOVE + 1,)))
    write_index(index, tmp_path / "big")
    assert (tmp_path / "big" / INDEX_FILE).is_file()


# --- lazy loading ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_opening_decodes_no_part_and_a_lookup_decodes_only_its_own(tmp_path, layout):
    write_index(grid_index(20, paths=("a", "b")), tmp_path / "s", layout=layout, part_size=4)
    index = load_index(tmp_path / "s")
    a, b = index.arrays["a"].chunks, index.arrays["b"].chunks
    assert (a.parts_loaded, b.parts_loaded, a.part_count) == (0, 0, 5)
    assert len(a) == 20 and a.flat_index((13,)) == 13 and a.parts_loaded == 0
    assert a.get(13) == ChunkRef(0, 130, 10)
    assert (a.parts_loaded, b.parts_loaded) == (1, 0)
    assert a.get(12) == ChunkRef(0, 120, 10) and a.parts_loaded == 1
    assert a.present().size == 20 and (a.parts_loaded, b.parts_loaded) == (5, 0)


def test_reading_one_chunk_through_zarr_decodes_one_part_of_that_array_only(tmp_path):
    data = bytes(range(200))
    (tmp_path / "data.bin").write_bytes(data)
    index = grid_index(20, paths=("a", "b"))
    index.sources = [Source(str(tmp_path / "data.bin"), len(data))]
    write_index(index, tmp_path / "s", layout="directory", part_size=4)
    store = refindex.open_store(tmp_path / "s")
    array = zarr.open_group(store, mode="r", zarr_format=2)["a"]
    assert array[95] == 95  # in chunk 9: bytes 90-99 of data.bin
    chunks = store.index.arrays
    assert (chunks["a"].chunks.parts_loaded, chunks["b"].chunks.parts_loaded) == (1, 0)


def test_readahead_window_decodes_only_the_parts_it_covers():
    index = grid_index(40)
    table = decoded_lazily(index, part_size=8)
    source, offset, length = table.columns(9, 15)
    assert offset.tolist() == list(range(90, 150, 10)) and table.parts_loaded == 1


def decoded_lazily(index: Index, part_size: int) -> ChunkTable:
    with tempfile.TemporaryDirectory() as folder:
        write_index(index, Path(folder) / "s.json", part_size=part_size)
        return load_index(Path(folder) / "s.json").arrays["a"].chunks


def test_parts_touched_by_many_threads_at_once_are_decoded_once_each():
    table = decoded_lazily(grid_index(1000), part_size=10)
    calls = []
    loader = table._loader
    table._loader = lambda part: calls.append(part) or loader(part)
    positions = np.random.default_rng(3).permutation(1000)

    def read(chunk: np.ndarray) -> None:
        for flat in chunk.tolist():
            assert table.get(flat).offset == 10 * flat

    threads = [threading.Thread(target=read, args=(c,)) for c in np.array_split(positions, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls) == list(range(100)) and table.parts_loaded == 100


def test_a_pickled_lazy_table_stays_lazy_and_keeps_what_was_decoded():
    table = decoded_lazily(grid_index(30), part_size=10)
    table.get(15)
    copy = pickle.loads(pickle.dumps(table))
    assert (copy.parts_loaded, copy.part_count) == (1, 3)
    assert copy.get(25) == ChunkRef(0, 250, 10) and copy.parts_loaded == 2
    np.testing.assert_array_equal(copy.offset, np.arange(30) * 10)


def test_a_fully_decoded_table_holds_its_columns_only():
    table = decoded_lazily(grid_index(100), part_size=10)
    table.source  # noqa: B018 (decodes every part)
    assert table._loader is None  # the encoded text is gone
    columns = table.source.nbytes + table.offset.nbytes + table.length.nbytes
    assert columns / len(table) == 20


# --- the directory layout over HTTP ----------------------------------------------------------


def serve_directory(http_server, folder: Path, prefix: str) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            http_server.put(f"{prefix}/{file.relative_to(folder).as_posix()}", file.read_bytes())


@pytest.mark.parametrize("name", ["side/", "side", "side/index.json"])
def test_directory_sidecar_over_http_fetches_parts_on_demand(http_server, tmp_path, name):
    write_index(grid_index(20), tmp_path / "side", layout="directory", part_size=4)
    serve_directory(http_server, tmp_path / "side", "side")
    index = load_index(http_server.url(name))
    assert part_files_fetched(http_server) == set()
    assert index.arrays["a"].chunks.get(17) == ChunkRef(0, 170, 10)
    fetched = part_files_fetched(http_server)
    assert len(fetched) == 1 and fetched.pop().endswith(".4.json")


def part_files_fetched(http_server) -> set[str]:
    return {path for _, path, _ in http_server.log if "/chunks/" in path}


def test_zarr_reads_through_a_directory_sidecar_over_http(http_server, tmp_path):
    data = bytes(range(200))
    index = grid_index(20)
    index.sources = [Source(http_server.put("data.bin", data), len(data))]
    write_index(index, tmp_path / "side", layout="directory", part_size=4)
    serve_directory(http_server, tmp_path / "side", "side")
    store = refindex.open_store(http_server.url("side/"))
    array = zarr.open_group(store, mode="r", zarr_format=2)["a"]
    np.testing.assert_array_equal(array[40:60], np.arange(40, 60))  # chunks 4 and 5: part 1
    assert store.index.arrays["a"].chunks.parts_loaded == 1


def test_a_missing_part_file_is_named_when_touched(http_server, tmp_path):
    write_index(grid_index(20), tmp_path / "side", layout="directory", part_size=4)
    serve_directory(http_server, tmp_path / "side", "side")
    index = load_index(http_server.url("side/"))
    missing = next(name for name in http_server.objects if name.endswith(".2.json"))
    del http_server.objects[missing]
    with pytest.raises(SidecarError, match=r"\.2\.json: part 2 of array 'a' is missing"):
        index.arrays["a"].chunks.get(9)


# --- damaged sidecars ------------------------------------------------------------------------


@pytest.fixture
def sidecar(tmp_path) -> Path:
    index = grid_index(20)
    index.arrays["a"].chunks.set_inline(3, b"inline bytes")
    path = tmp_path / "s.json"
    write_index(index, path, part_size=8)
    return path


def damaged(path: Path, change) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def first_part(doc: dict) -> dict:
    return doc["arrays"]["a"]["chunks"]["parts"][0]


def test_truncated_file_names_the_file(sidecar):
    sidecar.write_bytes(sidecar.read_bytes()[: sidecar.stat().st_size // 2])
    with pytest.raises(SidecarError, match=rf"{sidecar}: not valid JSON .* truncated"):
        load_index(sidecar)


def test_newer_major_version_is_refused_naming_the_file(sidecar):
    damaged(sidecar, lambda doc: doc.update({MARKER: "3.0"}))
    with pytest.raises(SidecarError, match=rf"{sidecar}: native sidecar version 3.0 is not "
                                           r"supported.*upgrade refindex"):
        load_index(sidecar)


def test_newer_minor_version_is_read_ignoring_what_it_added(sidecar):
    damaged(sidecar, lambda doc: doc.update({MARKER: "1.9", "checksums": {"a": "..."}}))
    assert load_index(sidecar).arrays["a"].chunks.get(5) == ChunkRef(0, 50, 10)


def corrupt_column(column: str, data: str):
    return lambda doc: first_part(doc)[column].update(data=data)


def negative_gaps(doc: dict) -> None:
    first_part(doc)["gap"] = encode_column(np.full(7, -1000))


@pytest.mark.parametrize(("change", "message"), [
    (corrupt_column("length", "not base64!"), "column 'length': invalid base64"),
    (corrupt_column("gap", base64.b64encode(b"garbage" * 4).decode()),
     "column 'gap': not a zstd frame"),
    (corrupt_column("source", encode_column(np.zeros(9))["data"]),
     "column 'source' holds 9 values, expected 8"),
    (lambda doc: first_part(doc).update(count=7), "expected a part of 8 chunks, found 7"),
    (negative_gaps, "negative offsets or lengths"),
    (lambda doc: first_part(doc).pop("inline"), "inline chunk 3 has no 'inline' data"),
    (lambda doc: first_part(doc)["source"].update(encode_column(np.full(8, 5))),
     "source ids must lie in -2..0"),
], ids=["base64", "zstd", "part_length", "count", "negative_offsets", "inline", "source_id"])
def test_corrupted_part_names_file_array_and_part_when_touched(sidecar, change, message):
    damaged(sidecar, change)
    table = load_index(sidecar).arrays["a"].chunks  # lazy: nothing decoded yet
    with pytest.raises(SidecarError, match=rf"{sidecar}: array 'a', part 0: {message}"):
        table.get(2)
    assert table.get(12) == ChunkRef(0, 120, 10)  # the other part is fine


@pytest.mark.parametrize(("change", "message"), [
    (lambda doc: doc["arrays"]["a"]["chunks"]["parts"].pop(), "expected 3 chunk-table parts"),
    (lambda doc: doc["arrays"]["a"]["chunks"].update(compression="lz4"),
     "unknown chunk-table compression 'lz4'"),
    (lambda doc: doc["arrays"]["a"]["chunks"].pop("parts"), "needs 'parts', or 'part_files'"),
    (lambda doc: doc["arrays"]["a"].update(zarray={"zarr_format": 2}), "missing 'shape'"),
], ids=["parts_missing", "compression", "no_parts", "zarray"])
def test_malformed_array_entry_is_refused_on_opening(sidecar, change, message):
    damaged(sidecar, change)
    with pytest.raises(SidecarError, match=message):
        load_index(sidecar)


def test_part_files_outside_the_sidecar_directory_are_refused(tmp_path):
    write_index(grid_index(20), tmp_path / "side", layout="directory", part_size=8)
    damaged(tmp_path / "side" / INDEX_FILE,
            lambda doc: doc["arrays"]["a"]["chunks"].update(part_files="../../etc/passwd"))
    with pytest.raises(SidecarError, match="inside the sidecar's directory"):
        load_index(tmp_path / "side")


def test_a_directory_index_given_as_a_document_asks_for_its_location(tmp_path):
    write_index(grid_index(20), tmp_path / "side", layout="directory")
    doc = json.loads((tmp_path / "side" / INDEX_FILE).read_text())
    with pytest.raises(SidecarError, match="open the sidecar by its directory or index.json"):
        load_index(doc)


def test_a_part_file_of_another_array_is_refused(tmp_path):
    write_index(grid_index(20, paths=("a", "b")), tmp_path / "side", layout="directory")
    parts = {p.name.split("-")[0]: p for p in (tmp_path / "side" / "chunks").iterdir()}
    parts["a"].write_bytes(parts["b"].read_bytes())
    table = load_index(tmp_path / "side").arrays["a"].chunks
    with pytest.raises(SidecarError, match=r"is not part 0 of array 'a'"):
        table.get(0)


def test_absent_chunks_stay_absent_and_read_as_fill_value(tmp_path):
    index = grid_index(20)
    index.arrays["a"].chunks.source[5:10] = ABSENT
    write_index(index, tmp_path / "s.json", part_size=4)
    table = load_index(tmp_path / "s.json").arrays["a"].chunks
    assert table.get(7) == ChunkRef(ABSENT, 0, 0)
    assert table.present().tolist() == [*range(5), *range(10, 20)]


def many_sources_index(count: int) -> Index:
    sources = [Source(f"s3://bucket/daily/day-{i:05d}.nc", 300_000 + i, f'"{i:032x}"',
                      f"Fri, 04 Dec 2026 03:{i % 60:02d}:00 GMT") for i in range(count)]
    sources[-1] = Source("https://example.org/é?x=1", None, None, None)  # unknown identity
    table = ChunkTable((count,))
    for i in range(count):
        table.set(i, i, 100, 50)
    node = ArrayNode("a", zarray((count,), (1,)), {}, table)
    return Index(sources=sources, arrays={"a": node})


def test_many_sources_are_packed_into_a_few_bytes_each_and_round_trip(tmp_path):
    index = many_sources_index(5000)
    written = write_index(index, tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc[MARKER] == "2.0" and set(doc["sources"]) == {"count", "compression", "columns"}
    assert written / 5000 < 30  # a URL, size, MD5 ETag and date in under 30 bytes
    assert load_index(tmp_path / "s.json").sources == index.sources


def test_few_sources_stay_readable_maps(tmp_path):
    write_index(many_sources_index(3), tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc[MARKER] == "1.0" and doc["sources"][0]["url"] == "s3://bucket/daily/day-00000.nc"


@pytest.mark.parametrize("change", [
    lambda s: s.update(columns="!!!"),
    lambda s: s.update(count=s["count"] + 1),
    lambda s: s.update(compression="gzip"),
    lambda s: s.update(columns=base64.b64encode(b"not zstd").decode()),
], ids=["base64", "count", "compression", "zstd"])
def test_damaged_packed_sources_are_refused_naming_the_file(tmp_path, change):
    path = tmp_path / "s.json"
    write_index(many_sources_index(40), path)
    damaged(path, lambda doc: change(doc["sources"]))
    with pytest.raises(SidecarError, match=rf"{path}: packed 'sources'"):
        load_index(path)
