"""refindex for VirtualiZarr: ``Parser`` implements VirtualiZarr's parser protocol, so
``virtualizarr.open_virtual_dataset(url, registry=..., parser=refindex.virtualizarr.Parser())``
virtualizes every container refindex scans, and refindex sidecars.

Needs the ``virtualizarr`` extra; ``Parser`` (and virtualizarr) are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refindex.virtualizarr.parser import Parser
    from refindex.virtualizarr.store import InlineManifestStore

__all__ = ["InlineManifestStore", "Parser"]

_EXPORTS = {"Parser": "refindex.virtualizarr.parser",
            "InlineManifestStore": "refindex.virtualizarr.store"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'refindex.virtualizarr' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
