"""Worker processes that scan batches of members: ``python -m refindex.collection.workers``.

multiprocessing's pools start workers by importing the caller's main module again, which
runs a script's top-level code once more unless it is guarded by ``if __name__ ==
"__main__"`` — as scientists' scripts often are not. These workers are plain interpreters
running this module: each reads a pickled batch from standard input, scans it with
``scanning.scan_members`` and writes the pickled results to standard output, until its input
ends. A worker that dies fails only its batch, each member with the reason.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

_HEADER = struct.Struct("<Q")


def _send(stream, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class WorkerPool:
    """``jobs`` worker processes; ``run(batches, args)`` yields each batch's results as the
    batch finishes (any order). ``close()`` (or leaving the ``with``) ends them."""

    def __init__(self, jobs: int) -> None:
        self._processes = [subprocess.Popen(
            [sys.executable, "-m", "refindex.collection.workers"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            for _ in range(jobs)]
        self._stopped = threading.Event()

    def run(self, batches: Sequence[list], *args) -> Iterator[tuple[list, list | BaseException]]:
        """``(batch, results)`` per batch, or ``(batch, error)`` if it could not be scanned
        (its worker died; the other workers take the remaining batches)."""
        todo: queue.Queue = queue.Queue()
        for batch in batches:
            todo.put(batch)
        done: queue.Queue = queue.Queue()
        alive = [len(self._processes)]
        lock = threading.Lock()
        for process in self._processes:
            threading.Thread(target=self._feed, args=(process, todo, done, args, alive, lock),
                             daemon=True).start()
        for _ in range(len(batches)):
            yield done.get()

    def _feed(self, process: subprocess.Popen, todo: queue.Queue, done: queue.Queue,
              args: tuple, alive: list[int], lock: threading.Lock) -> None:
        """Hand ``process`` batches until none is left; if it dies, fail its batch, and if it
        was the last one alive, every batch left."""
        while not self._stopped.is_set():
            try:
                batch = todo.get_nowait()
            except queue.Empty:
                return
            try:
                _send(process.stdin, (batch, args))
                done.put((batch, _receive(process.stdout)))
            except (OSError, EOFError, pickle.PickleError) as error:
                done.put((batch, RuntimeError(f"the worker process died ({error!r}, exit "
                                              f"code {process.poll()})")))
                with lock:
                    alive[0] -= 1
                    last = alive[0] == 0
                while last:
                    try:
                        done.put((todo.get_nowait(), RuntimeError("no worker process left")))
                    except queue.Empty:
                        break
                return

    def close(self) -> None:
        self._stopped.set()
        for process in self._processes:
            with contextlib.suppress(OSError):
                process.stdin.close()
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def serve() -> None:
    """The worker's loop: batches in on standard input, results out on standard output."""
    from refindex.collection.scanning import scan_members

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a scanner may corrupt the results
    while True:
        try:
            batch, args = _receive(stdin)
        except EOFError:
            return
        _send(stdout, scan_members(batch, *args))


if __name__ == "__main__":
    serve()
