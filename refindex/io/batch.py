"""ReadBatcher: the reads asked at about the same time on one event loop become one engine read.

zarr-python 3 asks its store for one chunk per ``get``, several at once on its own loop; Dask
tasks and other arrays may share that loop. Each ``read`` joins the batch of its loop, and the
batch goes to ``ReadEngine.read`` once the loop has run ``turns`` more rounds of callbacks: the
other ``get``s started at the same time have then arrived, and the planner can merge their
ranges. A lone read waits only those few rounds (microseconds, see ``tests/io/test_batch.py``).
Every caller gets its bytes as soon as the planned reads that hold them are in, not when the
whole batch is done.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from refindex.errors import RefindexError
from refindex.io.requests import RangeRequest

if TYPE_CHECKING:
    from refindex.io.engine import ReadEngine

DEFAULT_TURNS = 2
"""Rounds of the event loop a batch waits for company. zarr resumes the ``get``s that were
waiting for its concurrency limit one round after the ones before them finish, so one round
catches those started together and a second those released together."""


class ReadBatcher:
    """Collects concurrent reads per event loop and sends each collection to ``engine.read``."""

    def __init__(self, engine: ReadEngine, turns: int = DEFAULT_TURNS) -> None:
        self.engine = engine
        self.turns = turns
        self.batches = 0
        """Batches sent to the engine so far."""
        self._lock = threading.Lock()
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )

    async def read(self, requests: Sequence[RangeRequest]) -> list[bytes]:
        """The bytes of each request, in order, read in one batch with the reads that other
        tasks of this loop ask at the same time; raises the first error of these requests."""
        if not requests:
            return []
        loop = asyncio.get_running_loop()
        with self._lock:
            queue = self._queues.get(loop)
            if queue is None:
                queue = self._queues[loop] = _Queue(self, loop)
        caller = _Caller(list(requests), loop.create_future())
        queue.add(caller)
        return await caller.future

    async def _send(self, callers: list[_Caller]) -> None:
        """One engine read for all ``callers``; each gets its results, or its error."""
        self.batches += 1
        requests = [request for caller in callers for request in caller.requests]
        owners = [(caller, k) for caller in callers for k in range(len(caller.requests))]

        def on_ready(index: int, result: bytes | RefindexError) -> None:
            caller, k = owners[index]
            caller.deliver(k, result)

        try:
            await self.engine.read(requests, on_ready=on_ready)
        except RefindexError as error:
            if len(callers) > 1 and not any(caller.started for caller in callers):
                # Refused before any read (a source the policy forbids): read each caller
                # alone, so that only the callers who asked for it see the error.
                await asyncio.gather(*(self._send_alone(caller) for caller in callers))
                return
            _fail(callers, error)  # only callers not answered yet: the others are done
        except BaseException as error:
            _fail(callers, error)
            raise

    async def _send_alone(self, caller: _Caller) -> None:
        try:
            results = await self.engine.read(caller.requests)
        except RefindexError as error:
            _fail([caller], error)
        else:
            for k, data in enumerate(results):
                caller.deliver(k, data)


class _Caller:
    """One ``ReadBatcher.read``: its requests, the results so far and the future it awaits."""

    def __init__(self, requests: list[RangeRequest], future: asyncio.Future) -> None:
        self.requests = requests
        self.future = future
        self.results: list[bytes | None] = [None] * len(requests)
        self.missing = len(requests)
        self.started = False

    def deliver(self, k: int, result: bytes | RefindexError) -> None:
        self.started = True
        if self.future.done():  # failed already, or cancelled by its task
            return
        if isinstance(result, RefindexError):
            self.future.set_exception(result)
            return
        self.results[k] = result
        self.missing -= 1
        if self.missing == 0:
            self.future.set_result(self.results)


class _Queue:
    """The callers waiting on one loop for their batch to leave."""

    def __init__(self, batcher: ReadBatcher, loop: asyncio.AbstractEventLoop) -> None:
        self._batcher = weakref.ref(batcher)
        self._loop = loop
        self._callers: list[_Caller] = []
        self._tasks: set[asyncio.Task] = set()

    def add(self, caller: _Caller) -> None:
        if not self._callers:
            self._loop.call_soon(self._wait, self._batcher().turns)  # type: ignore[union-attr]
        self._callers.append(caller)

    def _wait(self, turns: int) -> None:
        if turns > 1:
            self._loop.call_soon(self._wait, turns - 1)
            return
        callers, self._callers = self._callers, []
        batcher = self._batcher()
        if batcher is None:
            _fail(callers, RuntimeError("the store that asked for these reads is gone"))
            return
        task = self._loop.create_task(batcher._send(callers))
        self._tasks.add(task)  # referenced until done, so it is not collected mid-way
        task.add_done_callback(self._tasks.discard)


def _fail(callers: list[_Caller], error: BaseException) -> None:
    for caller in callers:
        if caller.future.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            caller.future.cancel()
        else:
            caller.future.set_exception(error)
