"""CombineOptions: how members become one dataset."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from refindex.scan.options import DEFAULT_MAX_INLINE

ATTRS_POLICIES = ("first", "drop", "error")


@dataclass(frozen=True)
class CombineOptions:
    """How members are combined.

    ``concat_dims``: existing dimensions to concatenate along, each ordered by its coordinate
    values (empty: every dimension whose coordinate values differ between members).
    ``new_dims``: ``(name, regex)`` pairs; each adds a dimension whose value for a member comes
    from its file name (the regex's group named like the dimension, else its first group,
    else the whole match; numbers when every value is a number). ``attrs``: what to do when
    members' group attributes differ (``"first"``: the first member's, as
    ``xr.open_mfdataset`` does; ``"drop"``: keep only those equal in every member; ``"error"``).
    ``max_inline``: bytes up to which coordinates whose values must be rewritten (CF times in
    different units) are stored in the sidecar; larger ones are refused.
    """

    concat_dims: tuple[str, ...] = ()
    new_dims: tuple[tuple[str, str], ...] = ()
    attrs: Literal["first", "drop", "error"] = "first"
    max_inline: int = DEFAULT_MAX_INLINE
    compiled: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concat_dims", tuple(self.concat_dims))
        object.__setattr__(self, "new_dims", tuple((str(n), str(r)) for n, r in self.new_dims))
        if self.attrs not in ATTRS_POLICIES:
            raise ValueError(f"attrs must be one of {ATTRS_POLICIES}, not {self.attrs!r}")
        names = list(self.concat_dims) + [name for name, _ in self.new_dims]
        if len(set(names)) != len(names):
            raise ValueError(f"a dimension is named twice in {names}")
        for name, pattern in self.new_dims:
            try:
                self.compiled[name] = re.compile(pattern)
            except re.error as error:
                raise ValueError(f"new dimension {name!r}: invalid regex {pattern!r} "
                                 f"({error})") from None

    def replace(self, **changes) -> CombineOptions:
        return replace(self, **changes)

    @staticmethod
    def parse_new_dim(text: str) -> tuple[str, str]:
        """``"member=r(\\d+)i"`` -> ``("member", "r(\\d+)i")``."""
        name, sep, pattern = text.partition("=")
        if not sep or not name or not pattern:
            raise ValueError(f"--new-dim wants NAME=REGEX, got {text!r}")
        return name, pattern
