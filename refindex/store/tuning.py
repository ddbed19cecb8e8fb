"""How many chunks zarr asks a refindex store for at once (zarr's ``async.concurrency``).

zarr reads at most ``async.concurrency`` chunks of an array at once (default 10); a refindex
store batches what arrives together into few large requests, so more at once means fewer,
larger requests. zarr's setting is global to the process, so refindex does not change it on
its own: opening a store (or unpickling one on a Dask worker) leaves it alone.

- refindex's own reads through zarr (the xarray backend's arrays, ``refindex read``) raise it
  only around their zarr calls, with ``zarr_concurrency`` — unless the user chose a value
  (one other than zarr's default, or ``ZARR_ASYNC__CONCURRENCY``), which is left alone;
- ``tune_zarr(store)`` sets it for the whole process, for users who call zarr themselves
  (``zarr.open(refindex.open_store(...))``) and want the same (opt-in).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import zarr

from refindex.index import Index
from refindex.io.options import AUTO

ZARR_DEFAULT_CONCURRENCY = 10  # zarr-python 3's default async.concurrency
_KEY = "async.concurrency"
_IN_FLIGHT_BUDGET = 512 * 2**20  # decoded bytes of the chunks zarr may hold at once (AUTO)
_AUTO_CONCURRENCY = (64, 4096)

# The scopes in effect (their concurrency each) and zarr's value before the first of them:
# scopes of several threads overlap, and the last one to end puts zarr's value back.
_lock = threading.Lock()
_scopes: list[int] = []
_before_scopes: object = None


class _Tuned(Protocol):
    zarr_concurrency: int


def chunks_in_flight(index: Index, wanted: int) -> int:
    """``wanted``, or for ``AUTO`` as many chunks of the index's largest chunk shape as fit
    512 MiB decoded, 64 to 4,096 (from the metadata only: chunk tables stay unloaded)."""
    if wanted != AUTO:
        return wanted
    largest = max((_decoded_chunk_bytes(node.zarray) for node in index.arrays.values()),
                  default=1)
    low, high = _AUTO_CONCURRENCY
    return min(high, max(low, _IN_FLIGHT_BUDGET // max(largest, 1)))


@contextlib.contextmanager
def zarr_concurrency(count: int) -> Iterator[None]:
    """zarr's ``async.concurrency`` at least ``count`` inside the ``with`` (thread-safe; the
    value before is restored when the last overlapping scope ends). Nothing changes for
    ``count`` 0 or when the user chose a value for zarr."""
    global _before_scopes
    with _lock:
        entered = count > 0 and (bool(_scopes) or not _user_chose())
        if entered:
            if not _scopes:
                _before_scopes = zarr.config.get(_KEY)
            _scopes.append(count)
            zarr.config.set({_KEY: max(_scopes)})
    try:
        yield
    finally:
        if entered:
            with _lock:
                _scopes.remove(count)
                zarr.config.set({_KEY: max(_scopes) if _scopes else _before_scopes})


def tune_zarr(store_or_count: _Tuned | int) -> int:
    """Set zarr's ``async.concurrency`` for the whole process to what refindex chooses for a
    store (its ``zarr_concurrency``, from ``ReadOptions.zarr_concurrency``), or to a count;
    returns the value set. For code that calls zarr on a refindex store itself
    (``zarr.open_group(refindex.open_store(...))``): refindex never does this on its own."""
    count = store_or_count if isinstance(store_or_count, int) else store_or_count.zarr_concurrency
    if count <= 0:
        raise ValueError(f"zarr's async.concurrency must be > 0, got {count}")
    zarr.config.set({_KEY: count})
    return count


def _user_chose() -> bool:
    """Whether zarr's value is one the user chose (in code or in the environment)."""
    return ("ZARR_ASYNC__CONCURRENCY" in os.environ
            or zarr.config.get(_KEY) != ZARR_DEFAULT_CONCURRENCY)


def _decoded_chunk_bytes(zarray: dict) -> int:
    try:
        itemsize = np.dtype(_numpy_dtype(zarray["dtype"])).itemsize
    except (TypeError, ValueError):
        itemsize = 8  # exotic dtypes: roughly an object reference per element
    return math.prod(zarray.get("chunks") or [1]) * max(itemsize, 1)


def _numpy_dtype(spec):
    """A Zarr v2 dtype (a string, or fields as lists) in the form NumPy takes."""
    if isinstance(spec, list):
        return [tuple(_numpy_dtype(part) if isinstance(part, list) else part for part in field)
                for field in spec]
    return spec
