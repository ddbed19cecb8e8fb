"""HDF5 and NetCDF4 files, read through h5py's metadata and chunk queries (``scanner.py``)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import h5py

from refindex.codecs.plugin_path import use_hdf5plugin
from refindex.errors import ContainerError, SourceNotFoundError
from refindex.index import Index, Source
from refindex.io import ReadEngine
from refindex.scan.hdf5.scanner import Hdf5Scanner
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Container, Progress

__all__ = ["scan_hdf5"]


def scan_hdf5(container: Container, index: Index, engine: ReadEngine, options: ScanOptions,
              progress: Progress | None) -> list[str]:
    """Add an HDF5 / NetCDF4 file's groups and arrays to ``index`` (see ``ContainerScanner``)."""
    # Before any dataset is open: HDF5 may decode plugin filters while scanning.
    use_hdf5plugin()
    externals = ExternalSources(index, container.url, container.source.url)
    scanner = None
    try:
        # A local file opens by path, so HDF5 can follow external links next to it.
        with h5py.File(container.fileobj if container.remote else container.url, "r") as file:
            scanner = Hdf5Scanner(file, index, container.source_id, container.url, options,
                                  externals, progress, remote=container.remote)
            scanner.scan()
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        # h5py reports corrupt or truncated metadata as OSError/RuntimeError, and as KeyError
        # (an object that will not open), ValueError (h5ds on a damaged header), TypeError.
        where = f" at {scanner.where!r}" if scanner is not None else ""
        raise ContainerError(f"{container.url}: cannot read HDF5 metadata{where} ({exc}); "
                             "the file may be corrupt or truncated") from None
    return scanner.skipped


class ExternalSources:
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
