"""Scanning: read a container's metadata (locally or remotely) and build its Index.

The container kind is chosen by magic bytes, never by file name.
"""

from __future__ import annotations

import os
import posixpath
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import h5py

from refindex import __version__
from refindex.errors import ContainerError, SourceNotFoundError
from refindex.index import Index, Source
from refindex.io import ObjectInfo, ReadEngine, ReadOptions, RemoteFile, open_container
from refindex.scan.coordinates import inline_coordinates
from refindex.scan.hdf5.scanner import Hdf5Scanner, Progress
from refindex.scan.netcdf3 import scan_netcdf3
from refindex.scan.options import ScanOptions
from refindex.scan.zarrstore import (
    ARCHIVE_KINDS,
    archive_kind,
    scan_archive,
    scan_directory,
    zip_at_end,
)

__all__ = ["scan", "ScanOptions", "ScanResult", "container_kind"]

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
    """``"hdf5"`` or ``"netcdf3"`` from a container's first bytes, else None.

    A NetCDF3 magic at byte 0 wins over an HDF5 signature further on (after a user block),
    which could just as well be bytes of the NetCDF3 file's data."""
    if head[:3] == NETCDF3_SIGNATURE and head[3:4] in (b"\x01", b"\x02", b"\x05"):
        return "netcdf3"
    for offset in _HDF5_SUPERBLOCK_OFFSETS:
        if head[offset:offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE:
            return "hdf5"
    return None


def scan(location: str | os.PathLike, options: ScanOptions | None = None,
         read_options: ReadOptions | None = None, progress: Progress | None = None,
         index: Index | None = None, *, engine: ReadEngine | None = None,
         known: ObjectInfo | None = None, head: bytes | None = None) -> ScanResult:
    """Scan one container into ``index`` (a new Index when None); see :class:`ScanOptions`.

    ``engine`` reads (default: a new one with ``read_options``). ``known`` is the object's
    size and identity when a listing gave them (no HEAD then); ``head`` its first bytes when
    they were fetched ahead (the first block of a remote object, as ``RemoteFile`` reads it).
    """
    options = options or ScanOptions()
    url = normalize_location(location)
    engine = engine or ReadEngine(read_options or ReadOptions.from_env())
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
        kind = container_kind(head) or archive_kind(head)
        if kind is None and zip_at_end(fileobj, info.size):
            kind = "zip"
        if kind is None:
            raise ContainerError(f"{url}: not an HDF5 or NetCDF4 file (no HDF5 signature)")
        source = Source(options.url or url, info.size, info.etag, info.last_modified)
        source_id = index.add_source(source)
        resolver = _ExternalSources(index, url, options.url or url)
        scanner_options = options.replace(file_size=info.size)
        if kind in ARCHIVE_KINDS:
            skipped = scan_archive(kind, fileobj, source, url, index, engine, scanner_options,
                                   progress)
        elif kind == "netcdf3":
            skipped = scan_netcdf3(fileobj, index, source_id, url, scanner_options, progress)
        else:
            skipped = _scan_hdf5(fileobj, url, remote, index, source_id, scanner_options,
                                 resolver, progress)
        if kind not in ARCHIVE_KINDS:
            inline_coordinates(index, source_id, fileobj, options.inline_coords)
        fetched = fileobj.bytes_fetched if remote else 0
        requests = fileobj.requests + (known is None) if remote else 0
        if remote and kind in ARCHIVE_KINDS:  # archives read through the engine directly too
            fetched = engine.stats.total("bytes_fetched")
            requests = engine.stats.total("fetches")
    return ScanResult(index, source.url, info.size, fetched, requests,
                      time.perf_counter() - started, skipped)


def _scan_hdf5(fileobj: BinaryIO, url: str, remote: bool, index: Index, source_id: int,
               options: ScanOptions, resolver: _ExternalSources,
               progress: Progress | None) -> list[str]:
    """Scan an HDF5 / NetCDF4 file into ``index``; returns what was skipped."""
    scanner = None
    try:
        # A local file opens by path, so HDF5 can follow external links next to it.
        with h5py.File(fileobj if remote else url, "r") as file:
            scanner = Hdf5Scanner(file, index, source_id, url, options, resolver, progress,
                                  remote=remote)
            scanner.scan()
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        # h5py reports corrupt or truncated metadata as OSError/RuntimeError, and as KeyError
        # (an object that will not open), ValueError (h5ds on a damaged header), TypeError.
        where = f" at {scanner.where!r}" if scanner is not None else ""
        raise ContainerError(f"{url}: cannot read HDF5 metadata{where} ({exc}); "
                             "the file may be corrupt or truncated") from None
    return scanner.skipped


class _ExternalSources:
    """Source ids for files a container points to (external links, external raw storage):
    relative names resolve against the container's own location, as readers will see it."""

    def __init__(self, index: Index, scanned_url: str, recorded_url: str) -> None:
        self.index, self.scanned_url, self.recorded_url = index, scanned_url, recorded_url

    def __call__(self, name: str) -> int:
        target = self._beside(self.recorded_url, name)
        if "://" not in target and not Path(target).exists():
            raise SourceNotFoundError(f"{self.scanned_url}: external file {name!r} not found "
                                      f"(looked for {target})")
        size = Path(target).stat().st_size if "://" not in target else None
        return self.index.add_source(Source(target, size))

    def locate(self, name: str) -> str:
        """Where the scanner itself finds the file the container calls ``name``."""
        return self._beside(self.scanned_url, name)

    @staticmethod
    def _beside(url: str, name: str) -> str:
        if "://" in name or os.path.isabs(name):
            return name
        if "://" in url:
            return posixpath.join(posixpath.dirname(url), name)
        return str(Path(url).parent / name)
