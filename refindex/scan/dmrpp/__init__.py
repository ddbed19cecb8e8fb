"""DMR++ documents (OPeNDAP): the sidecar of the data file a DMR++ describes, built from the
document alone — no byte of the data file is parsed (``scanner.py``).

The source recorded is the data file (``dmrpp:href``, or the URL the scan was given), with
the identity one HEAD of it reports: DMR++ states no size or ETag, and without them a
changed data file would read as garbage instead of failing, and chunks past its end could
not be caught at scan time.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from refindex.errors import (
    ContainerError,
    RefindexError,
    SourceNotFoundError,
    SourcePolicyError,
)
from refindex.index import Index, Source
from refindex.io import RangeRequest, ReadEngine
from refindex.scan.coordinates import coordinate_chunks
from refindex.scan.dmrpp.document import SUFFIX, dmrpp, looks_like_dmrpp, parse_document
from refindex.scan.dmrpp.scanner import DmrppImporter
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Progress

__all__ = ["DmrppScan", "import_dmrpp", "looks_like_dmrpp", "SUFFIX"]

# What Hyrax's build_dmrpp writes as href when the data URL is filled in when served.
_HREF_PLACEHOLDER = "OPeNDAP_DMRpp_DATA_ACCESS_URL"


@dataclass(frozen=True)
class DmrppScan:
    """What importing a DMR++ recorded and cost beyond reading the document: the data file's
    ``source``, notes on what was skipped, and the ``requests`` made to the data file (the
    read of its coordinates, or a HEAD, or both) and the bytes they ``fetched``."""

    source: Source
    skipped: list[str]
    requests: int
    fetched: int


def import_dmrpp(document: bytes, document_url: str, index: Index, engine: ReadEngine,
                 options: ScanOptions, progress: Progress | None = None,
                 data_url: str | None = None) -> DmrppScan:
    """Add to ``index`` the groups and arrays of the data file DMR++ ``document`` (read from
    ``document_url``) describes; ``data_url``: where that file is (default: its
    ``dmrpp:href``).

    The data file costs one request: the read of its small dimension coordinates (copied
    into the sidecar, as a scan of the file does), whose answer also gives its size and
    ETag; or a HEAD when there are none, or they lie far apart."""
    root = parse_document(document, document_url)
    data_url = data_url or data_location(root.get(dmrpp("href")), document_url)
    source_id = index.add_source(Source(options.url or data_url))
    importer = DmrppImporter(root, document_url, index, source_id, None, options, progress)
    importer.walk()
    wanted = coordinate_chunks(index, source_id, options.inline_coords)
    span = _span(wanted) if "://" in data_url else None
    head, requests = b"", 1
    if span is not None:
        try:
            head, info = engine.read_with_identity_sync(RangeRequest(data_url, *span))
        except (SourceNotFoundError, SourcePolicyError):
            raise
        except RefindexError:
            span = None  # e.g. the range ends past the file: the HEAD's size will say so
            requests += 1
    if span is None:
        info = engine.info_sync(data_url)
    source = Source(options.url or data_url, info.size, info.etag, info.last_modified)
    index.sources[source_id] = source
    skipped = importer.finish(info.size)
    fetched = len(head)
    # Asked again: an array read again once the size was known is a new node.
    wanted = coordinate_chunks(index, source_id, options.inline_coords)
    if span is not None and all(span[0] <= offset and offset + length <= span[0] + len(head)
                                for _, _, offset, length in wanted):
        for node, flat, offset, length in wanted:
            node.chunks.set_inline(flat, head[offset - span[0]:offset - span[0] + length])
    elif wanted:
        requests += 1
        fetched += _read_coordinates(wanted, data_url, info, engine)
    return DmrppScan(source, skipped, requests, fetched)


# Coordinates lying further apart than this are read as ranges of their own, after a HEAD.
_SPAN_LIMIT = 1024 * 1024


def _span(wanted: list) -> tuple[int, int] | None:
    """(offset, length) of the one range of the data file holding the chunks of ``wanted``
    (as ``coordinate_chunks`` lists them), when there are some and it is small; else None."""
    if not wanted:
        return None
    start = min(offset for _, _, offset, _ in wanted)
    end = max(offset + length for _, _, offset, length in wanted)
    return (start, end - start) if end - start <= _SPAN_LIMIT else None


def data_location(href: str | None, document_url: str) -> str:
    """The data file a DMR++ at ``document_url`` names: its ``dmrpp:href`` (a URL, or a path
    relative to the document), or, for Hyrax's unfilled placeholder, the document's URL
    without ``.dmrpp``."""
    if href is None or not href.strip():
        raise ContainerError(f"{document_url}: DMR++ without dmrpp:href: it does not say which "
                             "data file it describes; scan it with --dmrpp DATA-URL")
    href = href.strip()
    if href == _HREF_PLACEHOLDER:
        if not document_url.endswith(SUFFIX):
            raise ContainerError(f"{document_url}: DMR++ whose dmrpp:href is Hyrax's "
                                 f"placeholder {href!r}; scan it with --dmrpp DATA-URL")
        return document_url.removesuffix(SUFFIX)
    if href.startswith("file://"):
        return href.removeprefix("file://")
    if "://" in href or os.path.isabs(href):
        return href
    if "://" in document_url:
        return posixpath.join(posixpath.dirname(document_url), href)
    return str(Path(document_url).parent / href)


def _read_coordinates(wanted: list, data_url: str, info, engine: ReadEngine) -> int:
    """Copy the chunks of small dimension coordinates into the index, fetched in one batch
    of ranges (merged by the engine) checked against the data file's identity; the bytes
    fetched."""
    requests = [RangeRequest(data_url, offset, length, etag=info.etag, size=info.size)
                for _, _, offset, length in wanted]
    datas = engine.read_sync(requests)
    for (node, flat, _, _), data in zip(wanted, datas, strict=True):
        node.chunks.set_inline(flat, data)
    return sum(len(d) for d in datas)
