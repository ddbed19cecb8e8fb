"""The sync edge: run refindex coroutines on one private event-loop thread per process."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_shutdown_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []
_SHUTDOWN_TIMEOUT = 5.0  # seconds the hooks may take at interpreter exit


def background_loop() -> asyncio.AbstractEventLoop:
    """The process's refindex I/O loop, started on first use (and anew after a fork)."""
    global _loop, _loop_pid
    with _lock:
        # A forked child inherits the loop object but not the thread that runs it.
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            thread = threading.Thread(target=_loop.run_forever, name="refindex-io", daemon=True)
            thread.start()
            atexit.register(_shutdown, _loop, thread)
        return _loop


def at_shutdown(hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``hook()`` on the I/O loop when the interpreter exits (to close sessions cleanly)."""
    _shutdown_hooks.append(hook)


_paused_lock = threading.Lock()
_paused = 0  # callers inside ``collections_paused``
_was_enabled = False


@contextlib.contextmanager
def collections_paused():
    """No automatic garbage collection while the caller waits on the I/O loop holding a lock
    other threads' finalizers need — h5py's, while h5py reads through a ``RemoteFile``: a
    collection on the I/O thread that freed an h5py object would wait for that lock, and the
    caller for the I/O thread, for ever. Nests and may be used by several threads at once;
    the collector is as it was when the last one leaves."""
    global _paused, _was_enabled
    with _paused_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


def run_sync(coroutine: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
    """Run ``coroutine`` on the I/O loop and return its result; callable from any thread.

    A caller that is itself running an event loop (a notebook, an async framework) is fine:
    it blocks while the I/O loop works. Only code already on the I/O loop must ``await``
    instead, since blocking there would wait for itself forever.
    """
    loop = background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coroutine.close()
        raise RuntimeError(
            "a refindex *_sync method was called on refindex's own I/O loop; await the "
            "async method instead"
        )
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        return future.result(timeout)
    except BaseException:
        # KeyboardInterrupt or a timeout here must not leave the work running unowned.
        future.cancel()
        raise


def _shutdown(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_closed() or not loop.is_running() or _loop_pid != os.getpid():
        return

    async def run_hooks() -> None:
        for hook in _shutdown_hooks:
            with contextlib.suppress(Exception):
                await hook()

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(run_hooks(), loop).result(_SHUTDOWN_TIMEOUT)
    loop.call_soon_threadsafe(loop.stop)
    # Closed once stopped, so that no unclosed loop (and its sockets) is reported at exit.
    thread.join(_SHUTDOWN_TIMEOUT)
    if not loop.is_running():
        loop.close()
