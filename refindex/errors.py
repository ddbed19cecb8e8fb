"""The errors refindex raises: one small hierarchy, each naming the file, key and problem."""

from __future__ import annotations


class RefindexError(Exception):
    """Base of every error refindex raises on purpose."""


class ContainerError(RefindexError):
    """A container (HDF5, NetCDF4, ...) is corrupt, truncated or of an unknown kind."""


class ChunkDecodeError(RefindexError):
    """A chunk's bytes cannot be decoded by its array's codecs (or decode to the wrong size, or
    to more than a chunk can hold): the source or the sidecar is corrupt."""


class UnsupportedFeatureError(RefindexError):
    """A dataset uses a feature that cannot be referenced exactly and is too big to inline."""

    def __init__(self, file: str, dataset: str, feature: str, hint: str = "") -> None:
        self.file, self.dataset, self.feature, self.hint = file, dataset, feature, hint
        super().__init__(f"{file}: dataset {dataset!r}: {self.reason}")

    @property
    def reason(self) -> str:
        """The feature and what to do, without the file and dataset."""
        return f"{self.feature}; {self.hint}" if self.hint else self.feature


class ArrayLeftOutError(UnsupportedFeatureError):
    """An array the scan left out (``Index.left_out``) was asked for; ``reason`` says why."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        super().__init__(file, "/" + path.strip("/"),
                         f"left out when the container was scanned: {reason}")


class CombineError(RefindexError):
    """Members cannot be combined into one dataset exactly; ``problems`` lists every reason,
    each naming the variable and the members concerned."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:50]
        more = len(self.problems) - len(shown)
        lines = "\n  - ".join(shown)
        tail = f"\n  ... and {more} more" if more else ""
        super().__init__(f"cannot combine the members exactly:\n  - {lines}{tail}")


class SidecarError(RefindexError):
    """A sidecar is malformed, truncated or of an unknown version."""


class SourceNotFoundError(RefindexError):
    """A source named by a sidecar (or given to scan) does not exist."""


class SourceChangedError(RefindexError):
    """A source differs from the one the sidecar was made from (size, ETag, last-modified)."""


class SourcePolicyError(RefindexError):
    """A sidecar names a source that the source policy does not allow."""


class FetchError(RefindexError):
    """Bytes could not be fetched after retries; names the source, range and cause."""


class UploadError(RefindexError):
    """A file could not be uploaded (after retries), or the object stored is not the file
    sent (a part's checksum or ETag differs); names the file, the target and the part."""
