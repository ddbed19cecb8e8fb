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


def _start() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "refindex.collection.workers"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


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
        self._processes = [_start() for _ in range(jobs)]
        self._stopped = threading.Event()

    def run(self, batches: Sequence[list], *args, member_seconds: float | None = None
            ) -> Iterator[tuple[list, list, BaseException | None]]:
        """``(batch, results, error)`` per batch: the results of its first members, in order
        (all of them when ``error`` is None), and why the others have none — the worker died,
        or spent more than ``member_seconds`` on one member and was stopped. A new worker
        takes the place of one that died or was stopped."""
        todo: queue.Queue = queue.Queue()
        for batch in batches:
            todo.put(batch)
        done: queue.Queue = queue.Queue()
        for slot in range(len(self._processes)):
            threading.Thread(target=self._feed, args=(slot, todo, done, args, member_seconds),
                             daemon=True).start()
        for _ in range(len(batches)):
            yield done.get()

    def _feed(self, slot: int, todo: queue.Queue, done: queue.Queue, args: tuple,
              member_seconds: float | None) -> None:
        """Hand the worker in ``slot`` batches until none is left."""
        while not self._stopped.is_set():
            try:
                batch = todo.get_nowait()
            except queue.Empty:
                return
            process = self._processes[slot]
            results: list = []
            error = self._scan(process, batch, args, member_seconds, results)
            done.put((batch, results, error))
            if error is None:
                continue
            with contextlib.suppress(OSError):
                process.kill()
            try:
                self._processes[slot] = _start()
            except OSError as error:
                while True:
                    try:
                        done.put((todo.get_nowait(), [], RuntimeError(
                            f"no worker process could be started ({error})")))
                    except queue.Empty:
                        return

    @staticmethod
    def _scan(process: subprocess.Popen, batch: list, args: tuple,
              member_seconds: float | None, results: list) -> BaseException | None:
        """Have ``process`` scan ``batch``, appending each member's result to ``results`` as it
        comes; None when all came, else why the rest did not."""
        try:
            _send(process.stdin, (batch, args))
        except OSError as error:
            return RuntimeError(f"the worker process died ({error!r}, exit code "
                                f"{process.poll()})")
        while len(results) < len(batch):
            # A scan stuck in C (libhdf5 looping on a damaged file) never returns to Python:
            # only stopping its process ends it.
            watchdog = threading.Timer(member_seconds, process.kill) if member_seconds else None
            if watchdog:
                watchdog.start()
            try:
                results.append(_receive(process.stdout))
            except (OSError, EOFError, pickle.PickleError) as error:
                if watchdog is not None and watchdog.finished.is_set():
                    return RuntimeError(f"no result within {member_seconds:g} s: its worker "
                                        "was stopped (a damaged file can make libhdf5 loop)")
                return RuntimeError(f"the worker process died ({error!r}, exit code "
                                    f"{process.poll()})")
            finally:
                if watchdog:
                    watchdog.cancel()
        return None

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
    """The worker's loop: batches in on standard input, each member's result out on standard
    output as soon as it is there."""
    from refindex.collection.scanning import iter_members

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a scanner may corrupt the results
    while True:
        try:
            batch, args = _receive(stdin)
        except EOFError:
            return
        for result in iter_members(batch, *args):
            _send(stdout, result)


if __name__ == "__main__":
    serve()
