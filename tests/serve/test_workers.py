"""``--workers N``: the counters of every worker process are summed in one scrape of
``/metrics``, whichever worker takes the scrape's connection."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request

from refindex.demo.embedded_s3 import free_ports
from tests.serve.test_config import ROOT, _get_when_up

REQUESTS = 40


def metric(text: str, name: str) -> int:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, name
    return int(float(match.group(1)))


def test_metrics_sum_the_counters_of_every_worker(files):
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "refindex.cli", "serve", "-q", str(files["standard"].sidecar),
         "--port", str(port), "--workers", "2", "--transcode", "off"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _get_when_up(f"{base}/healthz", process)
        stored = 0
        for n in range(REQUESTS):  # a new connection each: the kernel spreads them
            with urllib.request.urlopen(f"{base}/standard/zstd/{n % 3}.{n // 3 % 3}") as got:
                stored += len(got.read())
        scrapes = []
        for _ in range(6):  # on new connections too: each worker answers some of them
            with urllib.request.urlopen(f"{base}/metrics") as answer:
                scrapes.append(answer.read().decode())
        for text in scrapes:
            assert metric(text, "refindex_serve_workers") == 2
            assert metric(text, 'refindex_serve_requests_total{status="200"}') >= REQUESTS
            assert metric(text, "refindex_serve_sent_bytes_total") >= stored
            # 9 distinct chunks, each read from the file once per worker at most
            assert 9 <= metric(text, "refindex_upstream_requests_total") <= REQUESTS
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err.decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
