"""What the user names becomes the list of objects to scan, with what is known of each.

A source is one of:

- a local path: a file, with its size and modification time from a stat (as
  ``refindex.io.local.stat_local`` gives them, so a rescan compares like with like); a
  directory is one source, a Zarr directory store, neither walked nor given an identity;
- a local glob (``data/**/*.nc``): the files it matches, sorted (a path that exists is taken
  as it is, even with ``[`` in its name);
- an ``http(s)://`` URL or ``s3://bucket/key``: itself, its identity unknown (the scan asks);
- an S3 prefix (``s3://bucket/daily/``; ``s3://bucket`` is the whole bucket): every object
  listed under it (``refindex.io.listing``), with size, ETag and last-modified time;
- an S3 glob (``s3://bucket/*/2020-*.nc``): listed under the folders before the first
  wildcard, then matched by ``glob_regex``: ``*``, ``?`` and ``[...]`` never cross ``/``,
  ``**`` spans any number of path segments.

``from_file`` names a file of such sources, one per line (``-``: standard input). Local paths
come out absolute, as ``refindex.scan.normalize_location`` makes them. A pattern or prefix
that matches nothing is an error naming it.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from refindex.errors import SourceNotFoundError
from refindex.index import Source
from refindex.io import ObjectInfo, ReadEngine
from refindex.io.listing import list_objects
from refindex.io.local import stat_local
from refindex.io.loop import run_sync
from refindex.scan import normalize_location

_WILDCARD = re.compile(r"[*?\[]")


def expand_sources(specs: Sequence[str], engine: ReadEngine, *,
                   from_file: str | None = None) -> list[Source]:
    """The objects ``specs`` (then the lines of ``from_file``) name: in the order given, each
    pattern's or prefix's matches sorted, every URL once (its first place)."""
    return run_sync(expand_sources_async(specs, engine, from_file=from_file))


async def expand_sources_async(specs: Sequence[str], engine: ReadEngine, *,
                               from_file: str | None = None) -> list[Source]:
    """``expand_sources`` in the caller's event loop: all listings and globs at once."""
    specs = list(specs)
    if from_file is not None:
        specs += await asyncio.to_thread(read_source_file, from_file)
    found: dict[str, Source] = {}
    for sources in await _expand_all(specs, engine):
        for source in sources:
            found.setdefault(source.url, source)
    return list(found.values())


def read_source_file(path: str) -> list[str]:
    """The sources a file lists, one per line (``-``: standard input); blank lines and lines
    starting with ``#`` are skipped."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceNotFoundError(f"{path}: no such file (a file of sources)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SourceNotFoundError(f"{path}: cannot read this file of sources: {error}") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


async def _expand_all(specs: list[str], engine: ReadEngine) -> list[list[Source]]:
    """The sources of each spec, all expanded concurrently; the first error cancels the rest
    (no listing goes on unobserved after the call has failed)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_expand(spec, engine)) for spec in specs]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _expand(spec: str, engine: ReadEngine) -> list[Source]:
    if spec.startswith("s3://"):
        return await _expand_s3(spec, engine)
    if "://" in spec and not spec.startswith("file://"):
        return [Source(spec)]  # http(s): the scan asks for size and identity (HEAD)
    return await _expand_local(spec)


async def _expand_s3(spec: str, engine: ReadEngine) -> list[Source]:
    bucket, _, key = spec[len("s3://"):].partition("/")
    if _WILDCARD.search(key):
        return await _s3_glob(bucket, key, spec, engine)
    if not key or key.endswith("/"):
        return await _s3_prefix(f"s3://{bucket}/{key}", engine)
    return [Source(spec)]  # one object: the scan asks for size and identity (HEAD)


async def _s3_prefix(prefix: str, engine: ReadEngine) -> list[Source]:
    found = await list_objects(engine, prefix)
    if not found:
        raise SourceNotFoundError(f"{prefix}: no objects under this prefix")
    return [_listed(info) for info in found]


async def _s3_glob(bucket: str, key_pattern: str, spec: str,
                   engine: ReadEngine) -> list[Source]:
    literal = _WILDCARD.split(key_pattern, 1)[0]
    folders = literal[:literal.rfind("/") + 1]  # the whole segments before the first wildcard
    matches = glob_regex(key_pattern).fullmatch
    skip = len(f"s3://{bucket}/")
    found = [info for info in await list_objects(engine, f"s3://{bucket}/{folders}")
             if matches(info.url[skip:])]
    if not found:
        raise SourceNotFoundError(f"{spec}: no object matches")
    return [_listed(info) for info in found]


def _listed(info: ObjectInfo) -> Source:
    return Source(info.url, info.size, info.etag, info.last_modified)


async def _expand_local(spec: str) -> list[Source]:
    path = spec.removeprefix("file://")
    if _WILDCARD.search(path) and not os.path.lexists(os.path.expanduser(path)):
        files = await asyncio.to_thread(_glob_files, path)
        if not files:
            raise SourceNotFoundError(f"{spec}: no file matches")
        return list(await asyncio.gather(*(_local(file) for file in files)))
    return [await _local(normalize_location(path))]


def _glob_files(pattern: str) -> list[str]:
    """The files (not directories) ``pattern`` matches, ``**`` recursively, sorted."""
    matches = glob.glob(os.path.expanduser(pattern), recursive=True)
    return sorted({normalize_location(match) for match in matches if os.path.isfile(match)})


async def _local(path: str) -> Source:
    """A local file with its size and modification time, or a directory (a Zarr store: no
    identity, scanned every time); a missing path is an error naming it."""
    if await asyncio.to_thread(os.path.isdir, path):
        return Source(path)
    info = await stat_local(path)
    return Source(path, info.size, None, info.last_modified)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex whose ``fullmatch`` tells the keys the glob ``pattern`` matches: ``**`` as a
    whole path segment is any number of segments (none too), elsewhere ``*`` any characters
    but ``/``, ``?`` one such character, ``[...]`` one such character of a class (``[!...]``
    or ``[^...]``: not of it); anything else, an unclosed ``[`` too, is itself."""
    pieces, i = [], 0
    while i < len(pattern):
        piece, i = _translate_at(pattern, i)
        pieces.append(piece)
    return re.compile("".join(pieces), re.DOTALL)


def _translate_at(pattern: str, i: int) -> tuple[str, int]:
    """The regex of the glob item at ``pattern[i]``, and where the next item starts."""
    char = pattern[i]
    if char == "*":
        end = len(pattern) - len(pattern[i:].lstrip("*"))
        whole_segment = ((i == 0 or pattern[i - 1] == "/")
                         and (end == len(pattern) or pattern[end] == "/"))
        if end - i < 2 or not whole_segment:
            return "[^/]*", end
        if end < len(pattern):  # "**/": no segment, or any number of them
            return "(?:[^/]*/)*", end + 1
        return ".*", end
    if char == "?":
        return "[^/]", i + 1
    if char == "[":
        translated = _char_class(pattern, i)
        if translated is not None:
            return translated
    return re.escape(char), i + 1


def _char_class(pattern: str, i: int) -> tuple[str, int] | None:
    """The regex of the class ``[...]`` opening at ``pattern[i]`` and where it ends, or None
    if it is not closed. A ``]`` first in the class is one of its characters; a range whose
    ends are reversed (``z-a``) holds none, as in the shell."""
    start = i + 1
    negate = pattern[start:start + 1] in ("!", "^")
    start += negate
    end = pattern.find("]", start + 1)
    if end < 0:
        return None
    body, items, k = pattern[start:end], [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            if body[k] <= body[k + 2]:
                items.append(f"{re.escape(body[k])}-{re.escape(body[k + 2])}")
            k += 3
        else:
            items.append(re.escape(body[k]))
            k += 1
    if not items:
        return ("[^/]" if negate else "(?!)"), end + 1
    # The lookahead keeps "/" out of every class, even one that names it.
    return f"(?!/)[{'^' if negate else ''}{''.join(items)}]", end + 1
