"""``Parser``: VirtualiZarr's parser protocol (``parser(url, registry) -> ManifestStore``)
for every container refindex scans, and for refindex sidecars (native or kerchunk JSON)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import ujson
from obspec_utils.registry import ObjectStoreRegistry

from refindex.index import Index
from refindex.io import ReadEngine, ReadOptions
from refindex.io.requests import RangeRequest
from refindex.scan import ScanOptions, normalize_location, scan
from refindex.sidecar import load_index
from refindex.sidecar.native import INDEX_FILE
from refindex.sidecar.parquet import METADATA_FILE, is_parquet_refs
from refindex.virtualizarr.manifests import to_manifest_group
from refindex.virtualizarr.registry_options import read_options_for
from refindex.virtualizarr.store import InlineManifestStore

SNIFF_BYTES = 64
"""Bytes read from the start of a file to tell a sidecar (JSON) from a container."""


def _location(url: str) -> str:
    """A local path for a ``file://`` URI (percent-decoded, as VirtualiZarr encodes it), else
    the URL as refindex reads it."""
    if url.startswith("file://"):
        return normalize_location(unquote(urlsplit(url).path))
    return normalize_location(url)


def _sidecar_directory(path: str) -> bool:
    """Whether a local directory is a sidecar (native, or kerchunk parquet references)
    rather than a Zarr store to scan."""
    if os.path.isfile(os.path.join(path, INDEX_FILE)):
        return True
    try:
        with open(os.path.join(path, METADATA_FILE), "rb") as file:
            return is_parquet_refs(ujson.loads(file.read()))
    except (OSError, ValueError):
        return False


class Parser:
    """Parses a container (HDF5/NetCDF4, NetCDF3, MRC, Zarr stores in tar, zip or a local
    directory, sharded too) with refindex's scanner, or loads a refindex sidecar, into a
    VirtualiZarr ManifestStore.

    ``group``: the group to use as the root (default: the file's root). ``drop_variables``:
    array names to leave out (needed for arrays VirtualiZarr cannot hold, which are otherwise
    refused by name). ``scan_options``: how to scan (default: ``ScanOptions(inline_coords=0)``,
    so that coordinates stay references). ``read_options``: how refindex reads while
    scanning; default: the environment's (``ReadOptions.from_env()``), with the endpoint,
    region and unsigned requests of the registry's S3 store for the URL.
    """

    def __init__(self, group: str | None = None, drop_variables: Iterable[str] | None = None,
                 scan_options: ScanOptions | None = None,
                 read_options: ReadOptions | None = None) -> None:
        self.group = group or ""
        self.drop_variables = tuple(drop_variables or ())
        self.scan_options = scan_options or ScanOptions(inline_coords=0)
        self.read_options = read_options

    def __call__(self, url: str, registry: ObjectStoreRegistry) -> InlineManifestStore:
        """Scan or load ``url`` (a ``file://``, ``s3://`` or ``http(s)://`` URL or a local
        path) into a ManifestStore reading through ``registry``."""
        location = _location(url)
        options = self.read_options or read_options_for(location, registry,
                                                        ReadOptions.from_env())
        index = self.index(location, options)
        conversion = to_manifest_group(index, location, self.group, self.drop_variables)
        return InlineManifestStore(conversion.group, registry=registry,
                                   inline=conversion.inline,
                                   inline_arrays=conversion.inline_arrays)

    def index(self, location: str, options: ReadOptions) -> Index:
        """The Index of ``location``: loaded when it is a sidecar, else scanned."""
        if os.path.isdir(location):
            if _sidecar_directory(location):
                return load_index(location, options)
            return scan(location, self.scan_options, options).index
        if "://" in location and location.endswith("/"):  # a remote sidecar directory
            return load_index(location, options)
        engine = ReadEngine(options)
        try:
            info = engine.info_sync(location)
            length = min(SNIFF_BYTES, info.size or 0)
            head = engine.read_sync([RangeRequest(location, 0, length, etag=info.etag,
                                                  size=info.size)])[0] if length else b""
            if head.lstrip()[:1] == b"{":
                return load_index(location, options)
            return scan(location, self.scan_options, engine=engine, known=info).index
        finally:
            engine.close_sync()
