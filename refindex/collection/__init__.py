"""Collections: many containers scanned as one, concurrently and incrementally.

``scan_collection(["s3://bucket/daily/"], "daily.refs/")`` lists the sources
(``sources.expand_sources``: paths, globs, URLs, S3 prefixes and globs, a file of URLs),
compares them with what the collection directory already holds (``directory``), scans only
the new and changed ones (``scanning``: in parallel processes or on Dask), forgets deleted
ones, and — with ``combine_options=CombineOptions(...)`` — combines the members into one dataset the
directory then opens as (``refindex.combine``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refindex.collection.directory import (
    CollectionDirectory,
    FailedMember,
    MemberRecord,
    is_collection,
    same_identity,
)
from refindex.collection.scanning import MemberResult, scan_all, worker_count
from refindex.collection.sources import expand_sources
from refindex.combine import CombineOptions, combine
from refindex.errors import SourceNotFoundError
from refindex.index import Index, Source
from refindex.io import ReadEngine, ReadOptions
from refindex.io.loop import run_sync
from refindex.scan import ScanOptions

__all__ = ["CollectionReport", "MemberResult", "collection_members", "is_collection",
           "scan_collection"]


@dataclass
class CollectionReport:
    """What a collection scan did: members listed, kept (unchanged), scanned, removed (gone
    from the listing) and failed; the time and what the scans read; the combined index."""

    directory: Path
    listed: int = 0
    kept: int = 0
    scanned: int = 0
    removed: int = 0
    failed: list[FailedMember] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    fetched: int = 0
    skipped: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    """``url: /path: reason`` of each array a member's scan left out (members scanned now)."""
    combined: Index | None = None


Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``"scan"`` members done of those to scan."""


def scan_collection(sources: Sequence[str], directory: str | os.PathLike, *,
                    from_file: str | None = None, options: ScanOptions | None = None,
                    read_options: ReadOptions | None = None, jobs: int = 0, client=None,
                    fail_fast: bool = False, combine_options: CombineOptions | None = None,
                    progress: Progress | None = None) -> CollectionReport:
    """Bring the collection in ``directory`` up to date with ``sources`` and return what was
    done. With no ``sources`` (and no ``from_file``), those of the collection's last scan.
    ``combine_options`` combines the members afterwards (also those recorded last time)."""
    started = time.perf_counter()
    options = options or ScanOptions()
    read_options = read_options or ReadOptions.from_env()
    # Worker interpreters start (and import what they need) while the sources are listed.
    with _worker_pool(jobs, client) as pool:
        report = _scan(sources, directory, from_file, options, read_options, jobs, client,
                       fail_fast, combine_options, progress, pool)
    report.seconds = time.perf_counter() - started
    return report


def _worker_pool(jobs: int, client):
    from refindex.collection.workers import WorkerPool

    count = worker_count(jobs)
    return WorkerPool(count) if client is None and count > 1 else contextlib.nullcontext()


def _scan(sources, directory, from_file, options, read_options, jobs, client, fail_fast,
          combine_options, progress, pool) -> CollectionReport:
    folder = CollectionDirectory(directory)
    state = folder.load()
    settings = dict(state.settings)
    if not sources and from_file is None:
        sources, from_file = settings.get("sources", []), settings.get("from_file")
        if not sources and not from_file:
            raise SourceNotFoundError(f"{directory}: no sources given, and no collection there "
                                      "that recorded some")
    if combine_options is None and "combine" in settings:
        combine_options = _combine_options(settings["combine"])
    engine = ReadEngine(read_options)
    try:
        listed = _identified(expand_sources(list(sources), engine, from_file=from_file), engine)
    finally:
        engine.close_sync()  # members are scanned by engines of their own
    report = CollectionReport(folder.path, listed=len(listed))
    members: dict[str, MemberRecord] = {}
    todo = []
    for source in listed:
        known = state.members.get(source.url)
        if known is not None and same_identity(known.source, source):
            members[source.url] = known
        else:
            todo.append(source)
    report.kept = len(members)
    listed_urls = {source.url for source in listed}
    for url, record in state.members.items():
        if url not in listed_urls:
            folder.remove_member(record)
            report.removed += 1
    failed: dict[str, FailedMember] = {}
    for result in scan_all(todo, options, read_options, jobs, client,
                           stop=lambda: fail_fast and bool(failed), pool=pool):
        _take(result, folder, members, failed, report)
        if progress is not None:
            progress("scan", report.scanned + len(failed), len(todo))
    report.failed = list(failed.values())
    settings.update({"sources": list(sources), "from_file": from_file})
    if combine_options is not None:
        settings["combine"] = _combine_settings(combine_options)
    ordered = [members[s.url] for s in listed if s.url in members]
    folder.write_manifest(ordered, report.failed, settings)
    if combine_options is not None and ordered and not (fail_fast and failed):
        report.combined = _combine_into(folder, ordered, combine_options, read_options)
    return report


def _take(result: MemberResult, folder: CollectionDirectory, members: dict, failed: dict,
          report: CollectionReport) -> None:
    report.requests += result.requests
    report.fetched += result.fetched
    if result.error is not None:
        failure = FailedMember(result.source.url, result.error)
        folder.write_failure(failure)
        failed[failure.url] = failure
        return
    members[result.source.url] = folder.write_member(result.source, result.sidecar,
                                                     result.arrays, result.chunks)
    report.scanned += 1
    report.skipped.extend(f"{result.source.url}: {s}" for s in result.skipped)
    report.left_out.extend(f"{result.source.url}: {s}" for s in result.left_out)


def _identified(sources: list[Source], engine: ReadEngine) -> list[Source]:
    """``sources`` with size and identity: what a listing did not say is asked (one HEAD
    each, in parallel); local directories (Zarr stores) keep none and are always scanned."""
    unknown = [i for i, s in enumerate(sources)
               if s.size is None and not os.path.isdir(s.url)]
    if not unknown:
        return sources

    async def ask(i: int):
        try:
            return await engine.info(sources[i].url)
        except Exception:  # noqa: BLE001 - the scan of that member reports it
            return None

    async def ask_all():
        import asyncio
        return await asyncio.gather(*(ask(i) for i in unknown))

    found = list(sources)
    for i, info in zip(unknown, run_sync(ask_all()), strict=True):
        if info is not None:
            found[i] = Source(sources[i].url, info.size, info.etag, info.last_modified)
    return found


def _combine_into(folder: CollectionDirectory, members: list[MemberRecord],
                  options: CombineOptions, read_options: ReadOptions) -> Index:
    from refindex.sidecar import write_index

    index = combine([folder.path / record.sidecar for record in members], options,
                    read_options)
    folder.replace_combined(lambda staging: write_index(index, staging, layout="directory"))
    return index


def collection_members(directory: str | os.PathLike) -> list[Path]:
    """The member sidecars of a collection directory, in its order."""
    return CollectionDirectory(directory).member_sidecars()


def _combine_settings(options: CombineOptions) -> dict:
    return {"concat_dims": list(options.concat_dims),
            "new_dims": [list(pair) for pair in options.new_dims],
            "attrs": options.attrs, "max_inline": options.max_inline}


def _combine_options(settings: dict) -> CombineOptions:
    return CombineOptions(concat_dims=tuple(settings.get("concat_dims", ())),
                          new_dims=tuple(tuple(p) for p in settings.get("new_dims", ())),
                          attrs=settings.get("attrs", "first"),
                          max_inline=settings.get("max_inline", CombineOptions.max_inline))
