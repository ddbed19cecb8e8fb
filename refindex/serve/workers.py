"""Several worker processes serving one port (``--workers N``): each binds it with
``SO_REUSEPORT`` and the kernel spreads connections among them, so decoding and Python work
use several cores. Each worker loads the sidecars and has its own engine and
caches; their counters are rows of one shared board (``refindex.serve.metrics``), so
``/metrics`` answers for all of them whichever takes the connection. The parent only starts
them, passes SIGINT/SIGTERM on, and waits."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal

from refindex.errors import RefindexError
from refindex.io import ReadOptions
from refindex.serve.app import STATE, build_app
from refindex.serve.config import ServeConfig
from refindex.serve.metrics import MetricsBoard, ServerMetrics

LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


class WorkerError(RefindexError):
    """A worker process of ``refindex serve`` stopped on its own; names it and its exit code."""


def serve_with_workers(config: ServeConfig, read_options: ReadOptions | None,
                       announce) -> None:
    """Serve ``config`` from ``config.workers`` processes until SIGINT or SIGTERM; raises
    WorkerError when a worker ends on its own (the others are then stopped too)."""
    # Load every sidecar here first: a bad one stops the command before any worker starts.
    build_app(config, read_options)[STATE].transcoder.close()
    context = multiprocessing.get_context("spawn")  # no event loop or threads inherited
    level = logging.getLogger().getEffectiveLevel()
    board = MetricsBoard.shared(context, config.workers)  # one /metrics for all of them
    workers = [context.Process(target=_worker, name=f"refindex-serve-{n}",
                               args=(config, read_options, level, board, n))
               for n in range(config.workers)]
    for worker in workers:
        worker.start()
    stopping = False

    def stop(signum: int, frame) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        announce(f"{config.workers} workers")
        running = list(workers)
        while running:
            multiprocessing.connection.wait([w.sentinel for w in running])
            for worker in [w for w in running if not w.is_alive()]:
                running.remove(worker)
                if not stopping and worker.exitcode != 0:
                    stop(signal.SIGTERM, None)
                    raise WorkerError(f"{worker.name} (pid {worker.pid}) stopped with exit "
                                      f"code {worker.exitcode}; the other workers were stopped")
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for worker in workers:
            worker.join(timeout=15)


def _worker(config: ServeConfig, read_options: ReadOptions | None, level: int,
            board: MetricsBoard, row: int) -> None:
    from refindex.serve.runner import run_until_signal

    logging.basicConfig(level=level, format=LOG_FORMAT)
    app = build_app(config, read_options, ServerMetrics(board, row))
    run_until_signal(app, reuse_port=True)
