"""What the S3 benchmarks share: an embedded S3 server (SeaweedFS on 127.0.0.1) behind the
counting proxy that emulates the network link, how each client is pointed at it, and one
measured run (cold, through the link, with the proxy's counts).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from benchmarks.proxy import CountingProxy
from refindex.demo.embedded_s3 import EmbeddedS3

_T = TypeVar("_T")


@contextlib.contextmanager
def s3_behind_link(directory: Path, bucket: str) -> Iterator[tuple[EmbeddedS3, CountingProxy]]:
    """An S3 server keeping its data in ``directory``, with ``bucket`` made (unless the
    directory has it from an earlier run), and the proxy clients reach it through.
    Credentials go to the environment (AWS_*), the endpoint does not: each client is given
    the proxy's."""
    with EmbeddedS3(directory) as server:
        os.environ.update({k: v for k, v in server.env().items() if "ENDPOINT" not in k})
        if bucket not in {b["Name"] for b in server.client().list_buckets()["Buckets"]}:
            server.create_bucket(bucket)
        host, port = server.endpoint_url.removeprefix("http://").split(":")
        with CountingProxy(host, int(port)) as proxy:
            yield server, proxy


def s3fs_options(endpoint: str, server: EmbeddedS3, asynchronous: bool = False,
                 connections: int | None = None) -> dict:
    """s3fs options for ``server`` reached at ``endpoint``, with at most ``connections`` at
    once (None: botocore's default of 10)."""
    # A new S3 client each run (fsspec would otherwise hand back the last run's, with its
    # open connections): every tool starts cold.
    options = {"key": server.access_key, "secret": server.secret_key,
               "skip_instance_cache": True,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": server.region}}
    if connections:
        options["config_kwargs"] = {"max_pool_connections": connections}
    if asynchronous:
        options["asynchronous"] = True
    return options


@dataclass(frozen=True)
class Measured:
    """One run through the link: seconds, and what crossed the proxy (requests, bytes)."""

    seconds: float
    requests: int
    bytes_up: int
    bytes_down: int


def measure(proxy: CountingProxy, rtt_ms: float, bandwidth: float,
            run: Callable[[], _T]) -> tuple[Measured, _T]:
    """``run()`` through a link of ``rtt_ms`` round trips and ``bandwidth`` bytes/s each
    way, with the proxy's counters and pacers fresh."""
    proxy.configure(delay=rtt_ms / 1000, bandwidth=bandwidth)
    proxy.counters.reset()
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    counters = proxy.counters
    return Measured(seconds, counters.requests, counters.bytes_up, counters.bytes_down), result
