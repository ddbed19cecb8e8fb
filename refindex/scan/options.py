"""Options of a scan: what to record, what to inline, what to do with what cannot be referenced."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

#: Arrays that cannot be referenced in place (variable-length strings, references, filters no
#: codec decodes, virtual datasets) are inlined up to this many bytes each.
DEFAULT_MAX_INLINE = 16 * 1024 * 1024
#: Dimension coordinates (``time``, ``lat``, ...) whose stored chunks hold at most this many
#: bytes are copied into the sidecar: readers open them without a request, and combining
#: collections orders members by them without reading every file again.
DEFAULT_INLINE_COORDS = 64 * 1024
#: Seconds a worker process may spend on one member of a collection: generous for a file of
#: millions of chunks read over a slow link, finite for one on which libhdf5 never returns.
DEFAULT_MEMBER_SECONDS = 900.0


@dataclass(frozen=True)
class ScanOptions:
    """How a container is scanned.

    ``url``: the URL readers should use for the container (default: where it was scanned
    from). ``max_inline``: bytes up to which an array that cannot be referenced exactly is
    inlined. ``on_unsupported``: what happens to an array that can be neither referenced nor
    inlined exactly (a type h5py cannot read, a larger array than ``max_inline``): ``"skip"``
    (the default) leaves it out and records it in ``Index.left_out`` with the reason;
    ``"error"`` stops the scan with an ``UnsupportedFeatureError`` naming it.
    ``inline_coords``: bytes up to which the stored chunks of a dimension coordinate are
    copied into the sidecar (0: never). ``member_seconds``: in a scan of many sources in
    worker processes, seconds one member may take before its worker is stopped and the member
    reported failed (a damaged file can make libhdf5 itself loop; None: no limit).
    ``file_size``: bytes, filled in by the scanner.
    """

    url: str | None = None
    max_inline: int = DEFAULT_MAX_INLINE
    inline_coords: int = DEFAULT_INLINE_COORDS
    on_unsupported: Literal["error", "skip"] = "skip"
    member_seconds: float | None = DEFAULT_MEMBER_SECONDS
    file_size: int | None = None

    def __post_init__(self) -> None:
        if self.member_seconds is not None and not self.member_seconds > 0:
            raise ValueError(f"member_seconds must be positive or None, not {self.member_seconds}")

    def replace(self, **changes) -> ScanOptions:
        return replace(self, **changes)
