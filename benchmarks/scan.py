"""Scan speed and remote scan cost: refindex against kerchunk (and VirtualiZarr), one run.

    python benchmarks/scan.py                 # 200,000-chunk local file, 1 GiB remote volume
    python benchmarks/scan.py --gib 0.25 --chunks 50000 --repeat 3

Part 1 scans a local HDF5 file with many small chunks and reports chunk references per second
(median of --repeat runs): refindex's index, refindex's index written as kerchunk JSON, and
kerchunk's SingleHdf5ToZarr. Part 2 uploads a gzip-compressed float32 volume in 64³ chunks to
an embedded S3 server (SeaweedFS on 127.0.0.1) and scans it remotely through a counting proxy
with refindex, kerchunk over s3fs and VirtualiZarr's HDF parser over obstore, reporting bytes
downloaded, requests and seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.datasets import many_chunks, volume  # noqa: E402
from benchmarks.proxy import CountingProxy  # noqa: E402
from refindex.demo.embedded_s3 import EmbeddedS3  # noqa: E402
from refindex.io import ReadOptions  # noqa: E402
from refindex.scan import scan  # noqa: E402
from refindex.sidecar.kerchunk_json import to_kerchunk  # noqa: E402


def median_seconds(run, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def local_scan_rate(chunks: int, repeat: int) -> None:
    from kerchunk.hdf import SingleHdf5ToZarr

    path = many_chunks(chunks)
    print(f"\n## Local scan: {path.name} ({path.stat().st_size / 1e6:.0f} MB, "
          f"{chunks:,} chunks), median of {repeat}")
    index_s, result = median_seconds(lambda: scan(path), repeat)
    count = result.index.chunk_count()
    json_s, _ = median_seconds(lambda: to_kerchunk(scan(path).index), repeat)
    kerchunk_s, refs = median_seconds(
        lambda: SingleHdf5ToZarr(str(path), inline_threshold=0).translate(), repeat)
    kerchunk_count = sum(1 for k in refs["refs"] if not k.rsplit("/", 1)[-1].startswith("."))
    rows = [("refindex (index)", count, index_s), ("refindex (index + kerchunk JSON)", count,
                                                    json_s),
            ("kerchunk SingleHdf5ToZarr", kerchunk_count, kerchunk_s)]
    print(f"{'tool':36} {'refs':>9} {'seconds':>8} {'refs/s':>10} {'vs kerchunk':>11}")
    for name, n, seconds in rows:
        ratio = (n / seconds) / (kerchunk_count / kerchunk_s)
        print(f"{name:36} {n:9,} {seconds:8.3f} {n / seconds:10,.0f} {ratio:10.1f}x")


def remote_scan_cost(gib: float) -> None:
    path = volume(gib)
    size = path.stat().st_size
    print(f"\n## Remote scan: {path.name} ({size / 1e6:.0f} MB) from SeaweedFS on 127.0.0.1")
    with tempfile.TemporaryDirectory() as scratch, EmbeddedS3(Path(scratch) / "s3") as server:
        server.create_bucket("bench")
        _upload(server, path, "bench", path.name)
        url = f"s3://bench/{path.name}"
        host, port = server.endpoint_url.removeprefix("http://").split(":")
        with CountingProxy(host, int(port)) as proxy:
            rows = []
            for name, run in (("refindex", _refindex_scan), ("kerchunk + s3fs", _kerchunk_scan),
                              ("VirtualiZarr HDFParser", _virtualizarr_scan)):
                proxy.counters.reset()
                started = time.perf_counter()
                try:
                    chunks = run(url, proxy.url, server)
                except Exception as exc:  # a competitor failing is a result, not a crash
                    print(f"{name}: failed: {type(exc).__name__}: {exc}")
                    continue
                seconds = time.perf_counter() - started
                rows.append((name, chunks, proxy.counters.bytes_down, proxy.counters.requests,
                             seconds))
    print(f"{'tool':24} {'chunks':>7} {'downloaded':>12} {'% of file':>9} {'requests':>8} "
          f"{'seconds':>8}")
    for name, chunks, down, requests, seconds in rows:
        print(f"{name:24} {chunks:7,} {down:12,} {100 * down / size:8.2f}% {requests:8} "
              f"{seconds:8.2f}")


def _upload(server: EmbeddedS3, path: Path, bucket: str, key: str) -> None:
    server.upload(path, bucket, key)


def _refindex_scan(url: str, endpoint: str, server: EmbeddedS3) -> int:
    import os

    os.environ.update({k: v for k, v in server.env().items() if "ENDPOINT" not in k})
    result = scan(url, read_options=ReadOptions.from_env().replace(endpoint_url=endpoint))
    return result.index.chunk_count()


def _kerchunk_scan(url: str, endpoint: str, server: EmbeddedS3) -> int:
    import fsspec
    from kerchunk.hdf import SingleHdf5ToZarr

    storage = {"key": server.access_key, "secret": server.secret_key,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": server.region}}
    with fsspec.open(url, "rb", **storage) as f:
        refs = SingleHdf5ToZarr(f, url, inline_threshold=0).translate()
    return sum(1 for k in refs["refs"] if not k.rsplit("/", 1)[-1].startswith("."))


def _virtualizarr_scan(url: str, endpoint: str, server: EmbeddedS3) -> int:
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import S3Store
    from virtualizarr import open_virtual_dataset
    from virtualizarr.parsers import HDFParser

    store = S3Store("bench", endpoint=endpoint, access_key_id=server.access_key,
                    secret_access_key=server.secret_key, region=server.region,
                    client_options={"allow_http": True})
    registry = ObjectStoreRegistry({"s3://bench": store})
    ds = open_virtual_dataset(url, registry=registry, parser=HDFParser(), loadable_variables=[])
    return sum(int(v.data.manifest.shape_chunk_grid and v.data.manifest._paths.size)
               for v in ds.variables.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-remote", action="store_true")
    args = parser.parse_args()
    local_scan_rate(args.chunks, args.repeat)
    if not args.skip_remote:
        remote_scan_cost(args.gib)


if __name__ == "__main__":
    main()
