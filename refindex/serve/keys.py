"""Which store key a request asks for: ``/NAME/KEY`` split and checked before anything is
looked up, so that no request reaches a key, dataset or source by path tricks.

A key is a sequence of ``/``-separated names; none may be empty, ``.`` or ``..``, hold a
backslash or a control character, or be spelled with an encoded slash or backslash (which
would let ``a%2Fb`` and ``a/b`` name different things to different layers). Request targets in
absolute form (``GET http://host/...``) are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from refindex.errors import RefindexError

MAX_KEY_LENGTH = 1024
"""Characters of a key (longer keys name nothing a sidecar holds)."""

V2_METADATA = (".zgroup", ".zarray", ".zattrs", ".zmetadata")
V3_METADATA = "zarr.json"
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadKeyError(RefindexError):
    """A request names a key that cannot be a store key; answered 400."""


@dataclass(frozen=True)
class StoreKey:
    """Dataset ``dataset``'s key ``key`` ("" for the dataset itself)."""

    dataset: str
    key: str

    @property
    def is_metadata(self) -> bool:
        """Whether the key names a metadata document (served from memory)."""
        name = self.key.rsplit("/", 1)[-1]
        return name in V2_METADATA or name == V3_METADATA


def parse_target(target: str) -> StoreKey:
    """The dataset and key a request target (``/NAME/KEY?query``, as sent) asks for; raises
    BadKeyError naming what is wrong."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or path.startswith("//"):
        raise BadKeyError(f"{_shown(target)}: only paths (/NAME/KEY) are served")
    if _ENCODED_SEPARATOR.search(path):
        raise BadKeyError(f"{_shown(target)}: encoded '/' or '\\' in a key")
    try:
        decoded = unquote(path[1:], errors="strict")
    except UnicodeDecodeError:
        raise BadKeyError(f"{_shown(target)}: percent-encoding is not UTF-8") from None
    if len(decoded) > MAX_KEY_LENGTH:
        raise BadKeyError(f"{_shown(target)}: key longer than {MAX_KEY_LENGTH} characters")
    if "\\" in decoded or _CONTROL.search(decoded):
        raise BadKeyError(f"{_shown(target)}: backslash or control character in a key")
    dataset, _, key = decoded.partition("/")
    if any(part in ("", ".", "..") for part in key.split("/")) and key:
        raise BadKeyError(f"{_shown(target)}: empty, '.' or '..' name in a key")
    if dataset in ("", ".", ".."):
        raise BadKeyError(f"{_shown(target)}: no dataset named")
    return StoreKey(dataset, key)


def _shown(target: str) -> str:
    """``target`` for a message: short and printable (it is the client's text)."""
    text = _CONTROL.sub("?", target)
    return text if len(text) <= 120 else text[:117] + "..."
