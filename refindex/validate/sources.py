"""Check sources against the identity a sidecar recorded: one ``ReadEngine.info`` each."""

from __future__ import annotations

from datetime import datetime

from refindex.errors import RefindexError, SourceNotFoundError, SourcePolicyError
from refindex.index import Source
from refindex.io import ObjectInfo, ReadEngine
from refindex.io.validation import http_date, same_etag
from refindex.validate.report import SourceCheck, SourceStatus
from refindex.validate.workers import run_bounded


async def check_sources(engine: ReadEngine, sources: list[Source]) -> list[SourceCheck]:
    """One check per source, in order, ``engine.options.max_concurrency`` at a time."""
    jobs = [lambda source=source: check_source(engine, source) for source in sources]
    return await run_bounded(jobs, engine.options.max_concurrency)


async def check_source(engine: ReadEngine, source: Source) -> SourceCheck:
    """Ask ``engine`` what ``source`` is now (a HEAD, or stat) and compare; errors become
    statuses (missing, refused, unreachable)."""
    try:
        found = await engine.info(source.url)
    except SourceNotFoundError as error:
        return SourceCheck(source, SourceStatus.MISSING, None, str(error))
    except SourcePolicyError as error:
        return SourceCheck(source, SourceStatus.REFUSED, None, str(error))
    except RefindexError as error:
        return SourceCheck(source, SourceStatus.UNREACHABLE, None, str(error))
    status, detail = compare(source, found)
    return SourceCheck(source, status, found, detail)


def compare(recorded: Source, found: ObjectInfo) -> tuple[SourceStatus, str]:
    """The status of a source recorded as ``recorded`` that is now ``found``, and why.

    The size decides first; then the ETag when both sides have one (weak or strong, quoted
    or not); else the last-modified time when both sides have one (HTTP dates, or the ISO
    times recorded for local files). Reads check the same identity, except the local files'
    times.
    """
    if recorded.size is not None and found.size != recorded.size:
        return SourceStatus.RESIZED, f"size {recorded.size:,} → {found.size:,} bytes"
    if recorded.etag and found.etag:
        if not same_etag(recorded.etag, found.etag):
            return SourceStatus.CHANGED, f"ETag {recorded.etag} → {found.etag}"
        return SourceStatus.OK, ""
    then, now = _time(recorded.last_modified), _time(found.last_modified)
    if then is not None and now is not None:
        if then != now:
            return SourceStatus.CHANGED, (
                f"last modified {recorded.last_modified} → {found.last_modified}")
        return SourceStatus.OK, ""
    if recorded.etag or recorded.last_modified:
        why = "the source reports no ETag or last-modified time to compare"
    else:
        why = "the sidecar recorded no ETag or last-modified time"
    checked = "size matches" if recorded.size is not None else "no size recorded either"
    return SourceStatus.UNVERIFIED, f"{why}; {checked} (--deep reads a sample of chunks)"


def _time(value: str | None) -> datetime | None:
    """``value`` as a time: an HTTP date, or an ISO time (what scans of local files record)."""
    when = http_date(value)
    if when is not None or not value:
        return when
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
