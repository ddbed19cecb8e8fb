"""Scanning many members: in this process, in a pool of processes, or on a Dask cluster.

``scan_members`` scans a list of members in one process. It fetches the first block of the
members ahead of the one being parsed (``window`` at a time, on refindex's I/O loop, under
the engine's per-host limits), so that waiting for the network overlaps parsing: a small
remote file costs one request, made while the files before it are parsed. Each member comes
back as a ``MemberResult``: its native sidecar as bytes, or the error that stopped it. One
failing member never stops the others.

``scan_all`` spreads the members over ``jobs`` worker processes (``workers``: parsing HDF5 is
CPU work under h5py's global lock, threads would take turns) or over a Dask cluster, in
batches, and yields results as batches finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from refindex.assemble import chunk_request
from refindex.index import ChunkRef, Source
from refindex.io import ObjectInfo, ReadEngine, ReadOptions
from refindex.io.loop import background_loop
from refindex.io.urls import is_local
from refindex.scan import ScanOptions, scan
from refindex.scan.dmrpp import looks_like_dmrpp
from refindex.sidecar.native import encode_native

WINDOW = 16  # members whose first block is fetched ahead of the one parsed


@dataclass(frozen=True)
class MemberResult:
    """One member scanned: its identity as scanned and sidecar, or the error (``error``,
    one line). ``requests`` and ``fetched`` (bytes) count what its scan read."""

    source: Source
    sidecar: bytes | None = None
    error: str | None = None
    arrays: int = 0
    chunks: int = 0
    seconds: float = 0.0
    requests: int = 0
    fetched: int = 0
    skipped: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()  # "/path: reason" of each array the scan left out


def scan_members(sources: Sequence[Source], options: ScanOptions,
                 read_options: ReadOptions, window: int = WINDOW) -> list[MemberResult]:
    """Scan ``sources`` in this process (see the module's docstring)."""
    return list(iter_members(sources, options, read_options, window))


def iter_members(sources: Sequence[Source], options: ScanOptions, read_options: ReadOptions,
                 window: int = WINDOW) -> Iterator[MemberResult]:
    """``scan_members``, yielding each result as soon as it is there (in order).

    Members whose first block is a DMR++ document are imported on threads as soon as that
    block is in, up to ``DOCUMENT_WINDOW`` at once: an import is a few requests for the data
    file it describes and almost no parsing, so their waits overlap (an HDF5 member is
    parsed here, under h5py's lock, where threads would only take turns). While only
    documents are pending (a few kilobytes each), that many members are fetched ahead."""
    engine = _engine(read_options)
    upcoming = iter(sources)
    pending: deque[_Pending] = deque()

    documents = False  # whether any member was a DMR++ document

    def only_documents() -> bool:
        """Whether documents were met and every member pending is an import started, or a
        first block still on its way."""
        return documents and all(p.scan is not None or p.head is None or not p.head.done()
                                 for p in pending)

    def top_up() -> None:
        while len(pending) < window or (len(pending) < DOCUMENT_WINDOW and only_documents()):
            source = next(upcoming, None)
            if source is None:
                return
            pending.append(_Pending(source, _prefetch(engine, source)))

    def start_imports() -> None:
        nonlocal documents
        for ahead in pending:
            if ahead.scan is None and _is_document(ahead.head):
                ahead.scan = imports.submit(_scan_one, ahead.source, ahead.head, options,
                                            engine)
                documents = True

    top_up()
    with concurrent.futures.ThreadPoolExecutor(DOCUMENT_WINDOW) as imports:
        while pending:
            start_imports()
            top_up()
            member = pending[0]
            awaited = member.scan if member.scan is not None else member.head
            if awaited is not None and not awaited.done():
                # Wait for it, or for another member's first block: its import can start.
                heads = [p.head for p in pending
                         if p.scan is None and p.head is not None and not p.head.done()]
                concurrent.futures.wait([awaited, *heads],
                                        return_when=concurrent.futures.FIRST_COMPLETED)
                continue
            pending.popleft()
            if member.scan is not None:
                yield member.scan.result()
            else:
                yield _scan_one(member.source, member.head, options, engine)


DOCUMENT_WINDOW = 64  # DMR++ members imported at once, and fetched ahead while all are


@dataclass
class _Pending:
    """A member waiting to be scanned: its first block being fetched, its import started."""

    source: Source
    head: concurrent.futures.Future | None
    scan: concurrent.futures.Future | None = None


def _is_document(head: concurrent.futures.Future | None) -> bool:
    """Whether a member's first block is in and is a DMR++ document."""
    if head is None or not head.done() or head.exception() is not None:
        return False
    return looks_like_dmrpp(head.result()[0][:65536])


_engines: dict[ReadOptions, ReadEngine] = {}


def _engine(read_options: ReadOptions) -> ReadEngine:
    """One engine per options and process: its connections serve every batch. It keeps no
    cache of fetched bytes: each block is read once, into the member's ``RemoteFile``, and
    a cache would only hold thousands of members' blocks in memory."""
    engine = _engines.get(read_options)
    if engine is None:
        engine = _engines[read_options] = ReadEngine(read_options.replace(cache_size=0))
    return engine


def _prefetch(engine: ReadEngine, source: Source) -> concurrent.futures.Future | None:
    """The first block of a remote member of known size, being fetched."""
    if is_local(source.url) or source.size is None or source.size == 0:
        return None
    first = ChunkRef(0, 0, min(engine.options.block_size, source.size))
    return asyncio.run_coroutine_threadsafe(engine.read([chunk_request(source, first)]),
                                            background_loop())


def _scan_one(source: Source, head: concurrent.futures.Future | None, options: ScanOptions,
              engine: ReadEngine) -> MemberResult:
    started = time.perf_counter()
    try:
        first = head.result()[0] if head is not None else None
        known = None if source.size is None else ObjectInfo(
            source.url, source.size, source.etag, source.last_modified)
        result = scan(source.url, options, engine=engine, known=known, head=first)
        index = result.index
        # The member's identity as the scan saw it; a DMR++ member's index names its data
        # file instead, and the member stays the document as listed.
        scanned = index.sources[0] if index.sources and (
            index.sources[0].url == source.url or options.url) else source
        return MemberResult(
            Source(source.url, scanned.size, scanned.etag or source.etag,
                   scanned.last_modified or source.last_modified),
            encode_native(index), None, len(index.arrays), index.chunk_count(),
            time.perf_counter() - started, result.requests + (head is not None),
            result.fetched + (len(first) if first else 0), tuple(result.skipped),
            tuple(f"/{path}: {reason}" for path, reason in sorted(result.left_out.items())))
    except Exception as error:  # noqa: BLE001 - one member's failure must not lose the others
        return MemberResult(source, error=_one_line(error),
                            seconds=time.perf_counter() - started)


def _one_line(error: BaseException) -> str:
    from refindex.errors import RefindexError

    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, RefindexError) else f"{type(error).__name__}: {text}"


def scan_all(sources: Sequence[Source], options: ScanOptions, read_options: ReadOptions,
             jobs: int = 0, client=None, stop: Callable[[], bool] = lambda: False,
             pool=None) -> Iterator[MemberResult]:
    """Scan ``sources`` with ``jobs`` processes (0: one per core; 1: in this process; or
    ``pool``, a ``workers.WorkerPool`` started earlier) or on the Dask cluster of
    ``client``, yielding results as they come; once ``stop()`` is true no further batch is
    started."""
    jobs = worker_count(jobs)
    if client is not None:
        yield from _on_dask(client, sources, options, read_options, stop)
        return
    if jobs == 1 or len(sources) <= 1:
        for result in iter_members(sources, options, read_options):
            yield result
            if stop():
                return
        return
    from refindex.collection.workers import WorkerPool

    with contextlib.nullcontext(pool) if pool is not None else WorkerPool(
            min(jobs, len(sources))) as workers:
        for batch, results, error in workers.run(_batches(sources, jobs), options,
                                                 read_options,
                                                 member_seconds=options.member_seconds):
            yield from results
            if error is not None:
                stuck, *rest = batch[len(results):]
                yield MemberResult(stuck, error=str(error))
                # Scanned again by the next run: nothing is known to be wrong with them.
                yield from (MemberResult(source, error=f"not scanned: the worker stopped at "
                                         f"{stuck.url}") for source in rest)
            if stop():
                return


def worker_count(jobs: int) -> int:
    """``jobs``, or one per core for 0."""
    return jobs or os.cpu_count() or 1


def _on_dask(client, sources: Sequence[Source], options: ScanOptions,
             read_options: ReadOptions, stop: Callable[[], bool]) -> Iterator[MemberResult]:
    from distributed import as_completed

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    futures = client.map(scan_members, list(_batches(sources, workers)), options=options,
                         read_options=read_options, pure=False)
    try:
        for future in as_completed(futures):
            yield from future.result()
            if stop():
                break
    finally:
        client.cancel(futures)


def _batches(sources: Sequence[Source], workers: int) -> list[list[Source]]:
    """Batches small enough to spread over ``workers`` evenly (about eight each), large
    enough that prefetching has members to look ahead to."""
    size = max(1, min(64, -(-len(sources) // (workers * 8))))
    return [list(sources[i:i + size]) for i in range(0, len(sources), size)]
