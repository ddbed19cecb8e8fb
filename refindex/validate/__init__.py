"""Check that a sidecar still describes its sources: ``validate(sidecar) -> ValidationReport``.

Every source gets one metadata request through the I/O engine (a HEAD for S3 and HTTP(S),
``stat`` for local files), at most ``ReadOptions.max_concurrency`` at a time, so the
resolver (redirects, logins, presigning), the source policy and retries apply as for reads.
The answer is compared with the identity the sidecar recorded: the size first, then the
ETag or, lacking one, the last-modified time (``sources.compare``).

``deep=True`` also reads a sample of each array's chunks through the store and decodes them
with the array's codecs (``chunks.sample_chunks``). That catches what metadata cannot: a
source rewritten in place, same size, when the sidecar recorded no ETag, shows up as chunks
that no longer decode. Chunks of uncompressed arrays without checksums decode whatever their
bytes are, so the deep check proves little about those.
"""

from __future__ import annotations

import os

from refindex.index import Index
from refindex.io import ReadOptions
from refindex.io.loop import run_sync
from refindex.store import ReferenceStore, open_store
from refindex.validate.chunks import read_samples, sample_chunks
from refindex.validate.report import (
    DEFAULT_SAMPLE,
    MISMATCHES,
    UNCHECKED,
    ArrayCheck,
    ChunkFailure,
    SourceCheck,
    SourceStatus,
    ValidationReport,
)
from refindex.validate.sources import check_sources, compare

__all__ = ["DEFAULT_SAMPLE", "MISMATCHES", "UNCHECKED", "ArrayCheck", "ChunkFailure",
           "SourceCheck", "SourceStatus", "ValidationReport", "compare", "sample_chunks",
           "validate"]


def validate(
    sidecar: str | os.PathLike | dict | Index | ReferenceStore,
    read_options: ReadOptions | None = None,
    *,
    deep: bool = False,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> ValidationReport:
    """Check every source of ``sidecar`` (a path, URL, decoded document, Index or store)
    with one request each; with ``deep``, also read and decode ``sample`` chunks per array
    (the first, the last and random ones drawn from ``seed``).

    ``read_options`` are as for :func:`refindex.open_store` (a sidecar that is not a local
    file may not name local files). Raises the error of a sidecar that cannot be loaded;
    what is wrong with the sources is in the report.
    """
    if sample < 1:
        raise ValueError(f"sample must be at least 1 chunk per array, got {sample}")
    if _uncombined_collection(sidecar):
        return _validate_members(os.fspath(sidecar), read_options, deep, sample, seed)
    store = open_store(sidecar, read_options)
    return run_sync(_validate(store, deep, sample, seed))


def _uncombined_collection(sidecar) -> bool:
    from refindex.collection.directory import is_collection
    from refindex.sidecar.native import INDEX_FILE

    return (isinstance(sidecar, str | os.PathLike) and is_collection(sidecar)
            and not os.path.isfile(os.path.join(sidecar, INDEX_FILE)))


def _validate_members(directory: str, read_options: ReadOptions | None, deep: bool,
                      sample: int, seed: int) -> ValidationReport:
    """A collection not combined yet: every member's source as recorded, and with ``deep``
    a sample of every member's chunks."""
    from refindex.collection.directory import CollectionDirectory

    members = CollectionDirectory(directory).load().members.values()
    sources = open_store(Index(sources=[m.source for m in members]), read_options)
    report = run_sync(_validate(sources, False, sample, seed))
    arrays = None
    if deep:
        arrays = []
        for member in members:
            store = open_store(os.path.join(directory, member.sidecar), read_options)
            checked = run_sync(_validate(store, True, sample, seed)).arrays or ()
            arrays.extend(ArrayCheck(f"{member.url}:{a.path}", a.read, a.skipped, a.failures)
                          for a in checked)
        arrays = tuple(arrays)
    return ValidationReport(directory, report.sources, arrays, sample, seed)


async def _validate(store: ReferenceStore, deep: bool, sample: int, seed: int
                    ) -> ValidationReport:
    engine = store.engine
    try:
        sources = await check_sources(engine, store.index.sources)
        arrays = None
        if deep:
            failed = {i for i, check in enumerate(sources)
                      if check.status in MISMATCHES | UNCHECKED}
            arrays = await read_samples(store, sample, seed, failed)
    finally:
        await engine.close()
    return ValidationReport(store.name or "<index>", tuple(sources), arrays, sample, seed)
