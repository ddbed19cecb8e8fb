"""Indexes written into other systems that hold references themselves: an Icechunk repository
(``to_icechunk``; the ``icechunk`` extra)."""

from refindex.export.icechunk import (
    IcechunkExportError,
    IcechunkOptions,
    IcechunkReport,
    open_icechunk,
    to_icechunk,
)

__all__ = ["IcechunkExportError", "IcechunkOptions", "IcechunkReport", "open_icechunk",
           "to_icechunk"]
