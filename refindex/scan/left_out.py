"""Arrays a scan leaves out: recorded in the index with the reason, or an error (``--strict``).

Every scanner sends an array it can neither reference nor inline exactly here, so that all of
them decide alike: by default the rest of the container is still indexed and the array is
listed in ``Index.left_out`` (the sidecar keeps the list; ``refindex scan`` reports it and exits
with code 4); with ``ScanOptions(on_unsupported="error")`` the scan stops at it.
"""

from __future__ import annotations

from refindex.errors import UnsupportedFeatureError
from refindex.index import Index
from refindex.scan.options import ScanOptions


def leave_out(index: Index, path: str, error: UnsupportedFeatureError,
              options: ScanOptions) -> None:
    """Record array ``path`` of ``index`` as left out because of ``error``, or raise ``error``
    when ``options.on_unsupported`` is ``"error"``."""
    if options.on_unsupported != "skip":
        raise error
    index.left_out[path.strip("/")] = error.reason
