"""The I/O engine: exact, bounded, retried byte-range reads of local, HTTP(S) and S3 sources."""

from refindex.io.blockfile import RemoteFile, open_container
from refindex.io.engine import ReadEngine
from refindex.io.options import ReadOptions
from refindex.io.requests import ObjectInfo, RangeRequest
from refindex.io.stats import ReadStats

__all__ = [
    "ObjectInfo",
    "RangeRequest",
    "ReadEngine",
    "ReadOptions",
    "ReadStats",
    "RemoteFile",
    "open_container",
]
