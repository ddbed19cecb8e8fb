"""HEAD is answered from the index: no upstream request, no decoding. Its headers are GET's
(ETag, Content-Length, Content-Range), except that a chunk whose served size is known only by
re-encoding it (transcoded and not cached, or re-tiled from uneven stored chunks) has no
Content-Length, as RFC 9110 allows a HEAD answer."""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import dataset, serving
from tests.serve.test_http import ask, upstream_fetches


def chunk_keys(server, name: str) -> list[str]:
    """Every chunk key of ``name``'s arrays that GET answers (present chunks)."""
    metadata = json.loads(ask(server, f"/{name}/.zmetadata").body)["metadata"]
    keys = []
    for key, document in metadata.items():
        if not key.endswith(".zarray"):
            continue
        path = key[: -len(".zarray")]
        grid = [-(-s // c) for s, c in zip(document["shape"], document["chunks"], strict=True)]
        coords = [[]]
        for n in grid:
            coords = [c + [i] for c in coords for i in range(n)]
        separator = document.get("dimension_separator") or "."
        keys += [path + (separator.join(map(str, c)) or "0") for c in coords]
    return keys


@pytest.mark.parametrize("name", ["standard", "layouts", "netcdf3", "packed", "combined"])
def test_head_fetches_nothing_and_says_what_get_sends(files, name):
    with serving(dataset(name, files[name], transcode="off")) as running:
        keys = chunk_keys(running, name)
        heads = {key: ask(running, f"/{name}/{key}", "HEAD") for key in keys}
        assert upstream_fetches(running) == 0
        checked = 0
        for key, head in heads.items():
            get = ask(running, f"/{name}/{key}")
            assert head.status == get.status, key
            assert head.body == b""
            if get.status != 200:
                continue
            assert head.headers["ETag"] == get.headers["ETag"]
            if head.headers["Content-Length"] is not None:
                assert int(head.headers["Content-Length"]) == len(get.body), key
                checked += 1
            else:  # a re-tiled chunk of an uneven array: encoded when read
                assert name == "combined"
        assert checked > 0


def test_head_of_a_range_is_206_with_its_content_range(files):
    with serving(dataset("standard", files["standard"], transcode="off")) as running:
        size = len(ask(running, "/standard/zstd/0.0").body)
        head = ask(running, "/standard/zstd/0.0", "HEAD", Range="bytes=10-19")
        assert head.status == 206 and head.body == b""
        assert head.headers["Content-Range"] == f"bytes 10-19/{size}"
        assert head.headers["Content-Length"] == "10"
        assert ask(running, "/standard/zstd/0.0", "HEAD",
                   Range=f"bytes={size}-").status == 416


def test_head_of_a_transcoded_chunk_has_no_length_until_it_is_encoded(files):
    with serving(dataset("filters", files["filters"], transcode="gzip")) as running:
        key = "/filters/shuffle_gzip/0.0"
        head = ask(running, key, "HEAD")
        assert head.status == 200 and head.headers["Content-Length"] is None
        assert head.headers["ETag"] and head.headers["Accept-Ranges"] == "bytes"
        assert ask(running, key, "HEAD", Range="bytes=0-9").status == 200  # size unknown
        assert upstream_fetches(running) == 0
        get = ask(running, key)
        assert get.headers["ETag"] == head.headers["ETag"]
        again = ask(running, key, "HEAD")  # now cached: its length is known
        assert again.headers["Content-Length"] == str(len(get.body))


def test_head_answers_304_and_404_from_the_index(files):
    with serving(dataset("standard", files["standard"], transcode="off")) as running:
        etag = ask(running, "/standard/zstd/1.1", "HEAD").headers["ETag"]
        assert ask(running, "/standard/zstd/1.1", "HEAD", If_None_Match=etag).status == 304
        assert ask(running, "/standard/zstd/99.99", "HEAD").status == 404
        assert upstream_fetches(running) == 0
