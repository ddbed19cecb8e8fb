"""The one shape of a container scanner: what ``refindex.scan`` hands each container kind
(HDF5 / NetCDF4, NetCDF3, Zarr stores in tar or zip archives) and what each gives back.

A new container kind is a function of this shape in its own package under ``scan/``,
recognised by content in ``scan/__init__.py`` (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from refindex.index import Index, Source
    from refindex.io import ReadEngine
    from refindex.scan.options import ScanOptions

Progress = Callable[[str, int], None]
"""Told each array's path and number of chunks as the scan indexes it."""


@dataclass(frozen=True)
class Container:
    """One open container, as every scanner receives it."""

    fileobj: BinaryIO
    """Its bytes: a local file, or a ``RemoteFile`` reading through the engine."""
    url: str
    """Where the scan reads it; errors name it."""
    source: Source
    """The container as readers of the sidecar will see it (its URL may differ from ``url``
    when the scan was given ``--url``)."""
    source_id: int
    """``source``'s id in the index."""
    remote: bool
    """Whether ``url`` is read over the network."""


class ContainerScanner(Protocol):
    """Adds a container's groups and arrays to ``index`` — those it cannot index exactly to
    ``index.left_out`` (see ``scan/left_out.py``) — and returns notes on what it skipped
    (links not followed, archive members that are no part of the store)."""

    def __call__(self, container: Container, index: Index, engine: ReadEngine,
                 options: ScanOptions, progress: Progress | None) -> list[str]: ...
