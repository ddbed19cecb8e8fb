"""Several stores reading through one I/O engine: a server serving many sidecars keeps one
connection pool, one cache and one concurrency limit, and reads that different stores ask at
the same time are planned (and merged) together."""

from __future__ import annotations

from refindex.io.batch import ReadBatcher
from refindex.store.reference import ReferenceStore


def share_engine(stores: list[ReferenceStore]) -> list[ReadBatcher]:
    """Make ``stores`` read through one engine (and batcher) per distinct ``ReadOptions``
    among them: the source policy is the engine's, so stores whose options differ (a local
    sidecar may name local files, a remote one may not) keep engines of their own. Returns
    the batchers, one per engine."""
    batchers: dict = {}
    for store in stores:
        batcher = batchers.get(store.options)
        if batcher is None:
            batcher = batchers[store.options] = ReadBatcher(store.engine)
        store._engine, store._batcher = batcher.engine, batcher
    return list(batchers.values())
