"""Scanning: read a container's metadata (locally or remotely) and build its Index.

The container kind is chosen by content (magic bytes, MRC's ``MAP`` at byte 208, a DMR++
document's XML root), never by file name.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from refindex import __version__
from refindex.errors import ContainerError
from refindex.index import Index, Source
from refindex.io import (
    ObjectInfo,
    RangeRequest,
    ReadEngine,
    ReadOptions,
    RemoteFile,
    open_container,
)
from refindex.scan.coordinates import inline_coordinates
from refindex.scan.dmrpp import SUFFIX as DMRPP_SUFFIX
from refindex.scan.dmrpp import import_dmrpp, looks_like_dmrpp
from refindex.scan.hdf5 import scan_hdf5
from refindex.scan.mrc import looks_like_mrc, scan_mrc
from refindex.scan.netcdf3 import scan_netcdf3
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Container, ContainerScanner, Progress
from refindex.scan.tiff import looks_like_tiff, scan_tiff
from refindex.scan.zarrstore import (
    ARCHIVE_KINDS,
    archive_kind,
    scan_archive,
    scan_directory,
    zip_at_end,
)

__all__ = ["scan", "scan_dmrpp", "ScanOptions", "ScanResult", "container_kind"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NETCDF3_SIGNATURE = b"CDF"
# HDF5 looks for its superblock at 0, 512, 1024, 2048, ... (after a user block).
_HDF5_SUPERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)


@dataclass(frozen=True)
class ScanResult:
    """What a scan produced and cost: ``fetched`` bytes in ``requests`` reads, ``seconds``."""

    index: Index
    url: str
    size: int
    fetched: int
    requests: int
    seconds: float
    skipped: list[str] = field(default_factory=list)
    """Notes on what was not followed (dangling links, links back to an enclosing group,
    members of an archive that belong to no array); arrays left out are in ``left_out``."""

    @property
    def left_out(self) -> dict[str, str]:
        """Arrays the scan left out (path -> why), as recorded in ``index.left_out``."""
        return self.index.left_out


def _utc_now() -> str:
    """The current time, ISO 8601 in UTC to the second (``2026-11-22T04:06:31Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_location(location: str | os.PathLike) -> str:
    """An absolute local path, or the URL as given."""
    text = os.fspath(location)
    if text.startswith("file://"):
        text = text[len("file://"):]
    if "://" in text:
        return text
    return str(Path(text).expanduser().resolve())


def container_kind(head: bytes) -> str | None:
    """``"hdf5"``, ``"netcdf3"``, ``"tiff"`` or ``"mrc"`` from a container's first bytes,
    else None.

    A NetCDF3 or TIFF magic at byte 0 wins over an HDF5 signature further on (after a user
    block), which could just as well be bytes of the NetCDF3 or TIFF file's data. MRC has no
    magic at byte 0, only ``MAP`` at byte 208: it is asked last, so no HDF5, NetCDF3 or TIFF
    file is taken for it (the MRC scanner then checks the header's fields, naming any that is
    wrong)."""
    if head[:3] == NETCDF3_SIGNATURE and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    if looks_like_tiff(head):
        return "tiff"
    for offset in _HDF5_SUPERBLOCK_OFFSETS:
        if head[offset:offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
            return "hdf5"
    if looks_like_mrc(head):
        return "mrc"
    return None


def scan(location: str | os.PathLike, options: ScanOptions | None = None,
         read_options: ReadOptions | None = None, progress: Progress | None = None,
         index: Index | None = None, *, engine: ReadEngine | None = None,
         known: ObjectInfo | None = None, head: bytes | None = None) -> ScanResult:
    """Scan one container into ``index`` (a new Index when None); see :class:`ScanOptions`.

    ``engine`` reads (default: a new one with ``read_options``, closed when the scan ends;
    one passed in is the caller's to close). ``known`` is the object's
    size and identity when a listing gave them (no HEAD then); ``head`` its first bytes when
    they were fetched ahead (the first block of a remote object, as ``RemoteFile`` reads it).
    """
    if engine is not None:
        return _scan(location, options or ScanOptions(), progress, index, engine, known, head)
    engine = ReadEngine(read_options or ReadOptions.from_env())
    try:
        return _scan(location, options or ScanOptions(), progress, index, engine, known, head)
    finally:
        engine.close_sync()


def _scan(location: str | os.PathLike, options: ScanOptions, progress: Progress | None,
          index: Index | None, engine: ReadEngine, known: ObjectInfo | None,
          head: bytes | None) -> ScanResult:
    url = normalize_location(location)
    started = time.perf_counter()
    info = known if known is not None and known.size is not None else engine.info_sync(url)
    index = index if index is not None else Index()
    index.generator = {"name": "refindex", "version": __version__, "scanned_at": _utc_now()}
    remote = "://" in url
    if not remote and os.path.isdir(url):  # a Zarr directory store: each file a source
        skipped = scan_directory(url, index, engine, options, progress)
        return ScanResult(index, options.url or url, 0, 0, 0, time.perf_counter() - started,
                          skipped)
    # The HEAD above (or the listing) already pinned size and ETag: the remote file reuses them.
    opened = RemoteFile(engine, url, info.size, etag=info.etag,
                        preloaded=head) if remote else open_container(url, engine)
    with opened as fileobj:
        head = fileobj.read(max(_HDF5_SUPERBLOCK_OFFSETS) + len(HDF5_SIGNATURE))
        fileobj.seek(0)
        kind = container_kind(head)
        if kind is None and looks_like_dmrpp(head):
            document = fileobj.read()
            cost = (fileobj.requests + (known is None), fileobj.bytes_fetched) if remote else (0, 0)
            return _import_dmrpp(document, url, index, engine, options, progress, started, cost)
        kind = kind or archive_kind(head)
        if kind is None and zip_at_end(fileobj, info.size):
            kind = "zip"
        if kind is None:
            raise ContainerError(f"{url}: not an HDF5 or NetCDF4 file, nor NetCDF3, TIFF, MRC, "
                                 "a DMR++ document or a Zarr archive (no signature of any)")
        source = Source(options.url or url, info.size, info.etag, info.last_modified)
        container = Container(fileobj, url, source, index.add_source(source), remote)
        skipped = _scanner(kind)(container, index, engine, options.replace(file_size=info.size),
                                 progress)
        if kind not in ARCHIVE_KINDS:
            inline_coordinates(index, container.source_id, fileobj, options.inline_coords)
        fetched = fileobj.bytes_fetched if remote else 0
        requests = fileobj.requests + (known is None) if remote else 0
        if remote and kind in ARCHIVE_KINDS:  # archives read through the engine directly too
            fetched = engine.stats.total("bytes_fetched")
            requests = engine.stats.total("fetches")
    return ScanResult(index, source.url, info.size, fetched, requests,
                      time.perf_counter() - started, skipped)


def scan_dmrpp(data_url: str | os.PathLike, options: ScanOptions | None = None,
               read_options: ReadOptions | None = None, progress: Progress | None = None,
               index: Index | None = None, *, engine: ReadEngine | None = None) -> ScanResult:
    """Scan the data file at ``data_url`` from its DMR++ (``data_url + ".dmrpp"``) alone: the
    document is fetched (one GET, no HEAD), the data file gets one HEAD for its identity (and
    one read of its small dimension coordinates, see ``ScanOptions.inline_coords``)."""
    own = engine is None
    engine = engine or ReadEngine(read_options or ReadOptions.from_env())
    try:
        url = normalize_location(data_url)
        started = time.perf_counter()
        document_url = url + DMRPP_SUFFIX
        document = engine.read_sync([RangeRequest(document_url, 0, -1)])[0]
        if not looks_like_dmrpp(document[:65536]):
            raise ContainerError(f"{document_url}: not a DMR++ document (XML with a DAP4 "
                                 "Dataset root in the dmrpp namespace)")
        return _import_dmrpp(document, document_url, index, engine, options or ScanOptions(),
                             progress, started, (1, len(document)), data_url=url)
    finally:
        if own:
            engine.close_sync()


def _import_dmrpp(document: bytes, url: str, index: Index | None, engine: ReadEngine,
                  options: ScanOptions, progress: Progress | None, started: float,
                  cost: tuple[int, int], data_url: str | None = None) -> ScanResult:
    """The ScanResult of a DMR++ document read from ``url`` in ``cost`` (requests, bytes)."""
    index = index if index is not None else Index()
    index.generator = {"name": "refindex", "version": __version__, "scanned_at": _utc_now()}
    result = import_dmrpp(document, url, index, engine, options, progress, data_url)
    remote = "://" in result.source.url
    requests = cost[0] + (result.requests if remote else 0)
    fetched = cost[1] + (result.fetched if remote else 0)
    return ScanResult(index, result.source.url, result.source.size or 0, fetched, requests,
                      time.perf_counter() - started, result.skipped)


def _scanner(kind: str) -> ContainerScanner:
    """The scanner of a container kind (``container_kind`` or ``archive_kind``)."""
    if kind in ARCHIVE_KINDS:
        return functools.partial(scan_archive, kind)
    return {"netcdf3": scan_netcdf3, "mrc": scan_mrc, "tiff": scan_tiff}.get(kind, scan_hdf5)
