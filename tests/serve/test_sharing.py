"""One engine behind every dataset and client: chunks that clients ask for at the same time
are fetched upstream together, merged into few reads; re-encoded chunks are cached."""

from __future__ import annotations

import asyncio

import aiohttp

from refindex.serve.app import STATE
from tests.serve.conftest import dataset, serving


def get_all(urls: list[str]) -> list[bytes]:
    """The bodies of ``urls``, asked all at once (as a viewer's burst is)."""
    async def fetch() -> list[bytes]:
        async with aiohttp.ClientSession() as session:
            async def one(url: str) -> bytes:
                async with session.get(url) as response:
                    assert response.status == 200, url
                    return await response.read()

            return await asyncio.gather(*(one(url) for url in urls))

    return asyncio.run(fetch())


def test_datasets_share_one_engine(files):
    with serving(dataset("a", files["standard"]), dataset("b", files["filters"])) as server:
        served = server.app[STATE].datasets
        assert served["a"].store.engine is served["b"].store.engine


def test_concurrent_chunk_requests_are_merged_upstream(files):
    with serving(dataset("standard", files["standard"], transcode="off")) as server:
        urls = [f"{server.url}/standard/zstd/{i}.{j}" for i in range(4) for j in range(3)]
        get_all(urls)
        stats = server.app[STATE].datasets["standard"].store.engine.stats
        assert stats.requests >= len(urls)  # and the store's read-ahead
        # How many merge depends on how close together the requests arrive: most do.
        assert stats.merged > 0 and stats.fetches <= len(urls) // 2, str(stats)


def test_a_transcoded_chunk_is_encoded_once(files):
    with serving(dataset("filters", files["filters"], transcode="zstd")) as server:
        url = f"{server.url}/filters/lzf_mixed/0.0"
        first, second = get_all([url]), get_all([url])
        assert first == second
        cache = server.app[STATE].transcoder.cache
        assert cache.hits >= 1 and cache.size > 0


def test_one_sidecar_under_two_names_is_loaded_once_and_served_two_ways(files):
    with serving(dataset("raw", files["filters"], transcode="off"),
                 dataset("browser", files["filters"], transcode="auto")) as server:
        served = server.app[STATE].datasets
        assert served["raw"].store is served["browser"].store
        assert served["raw"].plans["lzf_mixed"].served["filters"][0]["id"] == "refindex.lzf"
        assert served["browser"].plans["lzf_mixed"].served["compressor"]["id"] == "gzip"
        raw, browser = get_all([f"{server.url}/raw/lzf_mixed/0.0",
                                f"{server.url}/browser/lzf_mixed/0.0"])
        assert raw != browser
