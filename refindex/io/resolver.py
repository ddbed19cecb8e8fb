"""UrlResolver: map a source URL to the HTTP URL that fetches it (S3 presigning, cached)."""

from __future__ import annotations

from refindex.io.options import ReadOptions
from refindex.io.s3 import S3Presigner


class UrlResolver:
    """Source URL -> fetchable HTTP URL. ``http(s)`` pass through; ``s3://`` are presigned.

    This is the seam where redirects, logins and token refreshes belong: callers ask for a
    URL per attempt and report a 403 with ``refresh``.
    """

    def __init__(self, options: ReadOptions) -> None:
        self._presigner = S3Presigner(options)

    def resolve(self, url: str, method: str = "GET") -> str:
        """The HTTP URL to send ``method`` (GET or HEAD) to for source ``url``."""
        if url.startswith("s3://"):
            return self._presigner.url(method, url)
        return url

    def can_refresh(self, url: str) -> bool:
        """True if a 403 on ``url`` may go away with a freshly resolved URL."""
        return url.startswith("s3://")

    def refresh(self, url: str) -> None:
        """Forget what was resolved for ``url``; the next ``resolve`` makes it anew."""
        if url.startswith("s3://"):
            self._presigner.forget(url)
