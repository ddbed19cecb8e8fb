"""The value objects the I/O engine takes and returns: RangeRequest and ObjectInfo."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RangeRequest:
    """A byte range of one object: ``length`` bytes starting at ``offset``.

    ``url`` is an absolute local path, ``file://...``, ``s3://bucket/key`` or
    ``http(s)://...``. ``length == -1`` asks for the whole object (``offset`` must be 0).
    When ``etag`` or ``size`` (bytes) are given, the object must still have them, else the
    read fails with ``SourceChangedError`` instead of returning another object's bytes.
    ``last_modified`` (an HTTP date, as a server's ``Last-Modified`` header gave it) is
    checked the same way when there is no ETag. ``keep=False`` marks a bulk read's range,
    which the memory cache serves if it holds it but does not keep: a read larger than the
    cache would only evict what other reads need, and then itself.
    """

    url: str
    offset: int
    length: int
    etag: str | None = None
    size: int | None = None
    last_modified: str | None = None
    keep: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError(f"{self.url}: negative offset {self.offset}")
        if self.length < -1:
            raise ValueError(f"{self.url}: invalid length {self.length}")
        if self.length == -1 and self.offset != 0:
            raise ValueError(f"{self.url}: a whole-object read (length -1) must start at 0")

    @property
    def where(self) -> str:
        """``url`` and the byte range, for error messages: ``s3://b/k [100, 200)``."""
        if self.length == -1:
            return f"{self.url} (whole object)"
        return f"{self.url} bytes [{self.offset}, {self.offset + self.length})"


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD (or stat) says about an object: size in bytes, ETag, last modification."""

    url: str
    size: int
    etag: str | None
    last_modified: str | None
