"""What the user names becomes the list of objects to scan, with what is known of each.

A source is a local path (a directory is one source: a Zarr directory store), a local glob
(``data/**/*.nc``), an ``http(s)://`` URL, ``s3://bucket/key``, an S3 prefix
(``s3://bucket/daily/``, listed) or an S3 glob (``s3://bucket/*/2020-*.nc``: listed under the
part before the first wildcard, then matched; ``*``, ``?`` and ``[...]`` never cross ``/``,
``**`` spans any number of path segments); ``from_file`` names a file of such sources, one per
line. Listings and stats give each object's size and identity (ETag, last-modified), so
nothing more is asked of unchanged objects; URLs named one by one carry none.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from refindex.errors import SourceNotFoundError
from refindex.index import Source
from refindex.io import ReadEngine
from refindex.io.loop import run_sync

_WILDCARD = re.compile(r"[*?\[]")


def expand_sources(specs: Sequence[str], engine: ReadEngine, *,
                   from_file: str | None = None) -> list[Source]:
    """The objects ``specs`` (and the lines of ``from_file``) name: in the order given, each
    pattern's matches sorted, every URL once."""
    return run_sync(expand_sources_async(specs, engine, from_file=from_file))


async def expand_sources_async(specs: Sequence[str], engine: ReadEngine, *,
                               from_file: str | None = None) -> list[Source]:
    specs = list(specs) + (read_source_file(from_file) if from_file is not None else [])
    expanded = await asyncio.gather(*(_expand(spec, engine) for spec in specs))
    seen: dict[str, Source] = {}
    for sources in expanded:
        for source in sources:
            seen.setdefault(source.url, source)
    return list(seen.values())


def read_source_file(path: str) -> list[str]:
    """The sources a file lists, one per line (``-``: standard input); blank lines and lines
    starting with ``#`` are skipped."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceNotFoundError(f"{path}: no such file (--from-file)") from None
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


async def _expand(spec: str, engine: ReadEngine) -> list[Source]:
    if spec.startswith("s3://"):
        if _WILDCARD.search(spec):
            return await _s3_glob(spec, engine)
        if spec.endswith("/"):
            return await _s3_prefix(spec, engine)
        return [Source(spec)]
    if "://" in spec and not spec.startswith("file://"):
        return [Source(spec)]
    path = spec[len("file://"):] if spec.startswith("file://") else spec
    if _WILDCARD.search(path):
        matches = sorted(p for p in glob.glob(os.path.expanduser(path), recursive=True)
                         if os.path.isfile(p))
        if not matches:
            raise SourceNotFoundError(f"{spec}: no file matches")
        return [_local(p) for p in matches]
    return [_local(path)]


def _local(path: str) -> Source:
    """A local file with its size and modification time (as ``stat_local`` gives it), or a
    directory (a Zarr store: no identity, always scanned)."""
    absolute = os.path.abspath(os.path.expanduser(path))
    try:
        status = os.stat(absolute)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{absolute}: no such file") from None
    if os.path.isdir(absolute):
        return Source(absolute)
    modified = datetime.fromtimestamp(status.st_mtime, tz=UTC).isoformat()
    return Source(absolute, status.st_size, None, modified)


async def _s3_prefix(prefix: str, engine: ReadEngine) -> list[Source]:
    found = await engine.list_objects(prefix)
    if not found:
        raise SourceNotFoundError(f"{prefix}: no objects under this prefix")
    return [Source(o.url, o.size, o.etag, o.last_modified) for o in found]


async def _s3_glob(pattern: str, engine: ReadEngine) -> list[Source]:
    bucket, _, key_pattern = pattern[len("s3://"):].partition("/")
    literal = _WILDCARD.split(key_pattern, 1)[0]
    listed_under = literal[:literal.rfind("/") + 1]  # the folders before the first wildcard
    matcher = glob_regex(key_pattern)
    found = [o for o in await engine.list_objects(f"s3://{bucket}/{listed_under}")
             if matcher.fullmatch(o.url[len(f"s3://{bucket}/"):])]
    if not found:
        raise SourceNotFoundError(f"{pattern}: no object matches")
    return [Source(o.url, o.size, o.etag, o.last_modified) for o in found]


def glob_regex(pattern: str) -> re.Pattern:
    """A regex matching the keys the glob ``pattern`` matches: ``**`` any number of path
    segments (none too), ``*`` any characters but ``/``, ``?`` one such character,
    ``[...]`` a character class (``[!...]`` negated); anything else literally."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(f"[{'^/' if negate else ''}{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))
