"""Under load: many clients asking for random chunks at once get exactly the bytes one client
alone gets, or 503 with Retry-After when the server is saturated (never another error), and
the caches stay within their limits."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from refindex.serve.app import STATE
from tests.serve.conftest import dataset, serving

CLIENTS, REQUESTS_EACH = 8, 40


def chunk_urls(server, index, name: str) -> list[str]:
    urls = []
    for node in index.arrays.values():
        urls += [f"{server.url}/{name}/{key}" for key, _ in node.present_keys()]
    return urls


async def one_by_one(urls: list[str]) -> dict[str, bytes]:
    """The body of each URL, asked one at a time."""
    async with aiohttp.ClientSession() as session:
        bodies = {}
        for url in urls:
            async with session.get(url) as response:
                assert response.status == 200, url
                bodies[url] = await response.read()
        return bodies


async def hammer(urls: list[str], clients: int, each: int, seed: int = 5):
    """Each client asks for ``each`` random ``urls``, retrying after 503 as Retry-After
    says; returns the bodies by URL (every answer of each) and the statuses seen."""
    bodies: dict[str, set[bytes]] = {}
    statuses: list[int] = []
    retry_afters: list[str | None] = []

    async def client(number: int) -> None:
        rng = random.Random(seed + number)
        async with aiohttp.ClientSession() as session:
            for _ in range(each):
                url = rng.choice(urls)
                while True:
                    async with session.get(url) as response:
                        statuses.append(response.status)
                        if response.status == 503:
                            retry_afters.append(response.headers.get("Retry-After"))
                            await asyncio.sleep(0.01)
                            continue
                        assert response.status == 200, (url, response.status)
                        bodies.setdefault(url, set()).add(await response.read())
                        break

    await asyncio.gather(*(client(i) for i in range(clients)))
    return bodies, statuses, retry_afters


def test_concurrent_clients_get_exact_bytes_and_caches_stay_bounded(files):
    with serving(dataset("filters", files["filters"]), transcode_cache_size=16 * 1024,
                 transcode_threads=2) as server:
        state = server.app[STATE]
        urls = chunk_urls(server, state.datasets["filters"].index, "filters")
        alone = asyncio.run(one_by_one(urls))
        bodies, statuses, _ = asyncio.run(hammer(urls, CLIENTS, REQUESTS_EACH))
        assert set(statuses) == {200}
        for url, seen in bodies.items():
            assert seen == {alone[url]}, f"{url}: not the bytes one client alone gets"
        assert 0 < state.transcoder.cache.size <= 16 * 1024
        assert state.metrics.in_flight == 0


def test_saturation_answers_503_with_retry_after_and_every_read_still_completes(files):
    with serving(dataset("filters", files["filters"], transcode="zstd"),
                 max_in_flight=2) as server:
        state = server.app[STATE]
        urls = chunk_urls(server, state.datasets["filters"].index, "filters")
        bodies, statuses, retry_afters = asyncio.run(hammer(urls, 16, 10))
        assert set(statuses) == {200, 503}
        assert retry_afters and set(retry_afters) == {"1"}
        assert sum(status == 200 for status in statuses) == 16 * 10
        assert state.metrics.refused == statuses.count(503)
        assert all(len(seen) == 1 for seen in bodies.values())
