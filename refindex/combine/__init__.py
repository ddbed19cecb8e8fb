"""Combine: many members (sidecars of files, or indexes) into one dataset, exactly.

``combine(members, CombineOptions(concat_dims=("time",)))`` concatenates along existing
dimensions (members ordered by coordinate values), adds new dimensions from file names, merges
members holding different variables on one grid, keeps variables that do not vary once
(checked identical), rewrites CF times given in different units into one, and lays members of
uneven lengths on an irregular chunk grid (read exactly by the store and the xarray backend).
Everything that would make the result read differently from its members is refused in one
``CombineError`` listing every problem. It works on metadata and columnar chunk tables: no
Python object per chunk.

The steps: ``members.summarize`` (metadata and coordinate values of every member),
``dims.combined_dims`` (where members lie), ``arrays.plan_arrays`` (how each array combines,
checked), ``build.Builder`` (the combined tables, member by member).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from refindex import __version__
from refindex.combine.arrays import plan_arrays
from refindex.combine.build import Builder
from refindex.combine.dims import combined_dims
from refindex.combine.members import MemberInfo, MemberInput, Members, summarize
from refindex.combine.options import CombineOptions
from refindex.errors import CombineError
from refindex.index import Index
from refindex.io import ReadEngine, ReadOptions

__all__ = ["CombineOptions", "combine"]


def combine(members: Sequence[MemberInput], options: CombineOptions | None = None,
            read_options: ReadOptions | None = None) -> Index:
    """The combined index of ``members`` (sidecar paths or URLs, or Index objects); raises
    ``CombineError`` listing every reason they cannot be combined exactly."""
    options = options or CombineOptions()
    read_options = read_options or ReadOptions.from_env()
    loaded = Members(members, read_options)
    if not len(loaded):
        raise CombineError(["no members to combine"])
    engine = ReadEngine(read_options)
    try:
        wanted = list(options.concat_dims) if options.concat_dims else None
        infos = summarize(loaded, wanted, engine)
        problems: list[str] = []
        dims = combined_dims(infos, options, problems)
        plans = plan_arrays(infos, dims, problems)
        groups = _group_attrs(infos, dims, options.attrs, problems)
        if problems:
            raise CombineError(problems)
        builder = Builder(infos, dims, plans, engine)
        for batch in loaded.batches(builder.order):
            builder.add(batch)
        problems = builder.problems()
        if problems:
            raise CombineError(problems)
    finally:
        engine.close_sync()
    index = builder.index()
    index.groups = groups
    index.group_attr_dtypes = _group_attr_dtypes(infos, dims, groups)
    # The first member's generator: its name says what fill values mean (refindex or
    # kerchunk conventions), which the combined dataset keeps.
    index.generator = {"name": infos[0].generator, "version": __version__,
                       "combined_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    index.left_out = _left_out(infos)
    index.combined = {"members": len(infos),
                      "dims": {d.name: {"kind": d.kind, "length": d.length,
                                        "positions": d.count} for d in dims}}
    return index


def _left_out(infos: Sequence[MemberInfo]) -> dict[str, str]:
    """Arrays the members' scans left out (no member holds them): path -> the first reason,
    naming the member."""
    left_out: dict[str, str] = {}
    for info in infos:
        for path, reason in info.left_out.items():
            left_out.setdefault(path, f"{reason} (left out of {info.name}'s scan)")
    return left_out


def _group_attr_dtypes(infos: Sequence[MemberInfo], dims,
                       groups: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Per group, the recorded dtypes of the attributes kept: those of the member whose
    attributes were kept (the first in combined order that has the group)."""
    order = _combined_order(infos, dims)
    kept: dict[str, dict[str, str]] = {}
    for path, attrs in groups.items():
        first = next((info for info in order if path in info.groups), None)
        dtypes = first.group_attr_dtypes.get(path, {}) if first else {}
        if wanted := {name: dtype for name, dtype in dtypes.items() if name in attrs}:
            kept[path] = wanted
    return kept


def _combined_order(infos: Sequence[MemberInfo], dims) -> list[MemberInfo]:
    return sorted(infos, key=lambda info: tuple(d.positions.get(info.number, -1) for d in dims))


def _group_attrs(infos: Sequence[MemberInfo], dims, policy: str,
                 problems: list[str]) -> dict[str, dict]:
    """Per group, the attributes the policy keeps: the first member's (in combined order),
    those every member agrees on, or a problem when they differ."""
    order = _combined_order(infos, dims)
    groups: dict[str, dict] = {}
    for path in dict.fromkeys(p for info in order for p in info.groups):
        held = [(info.name, info.groups[path]) for info in order if path in info.groups]
        first = dict(held[0][1])
        differing = sorted({k for _, attrs in held[1:] for k in set(attrs) | set(first)
                            if attrs.get(k) != first.get(k)})
        if differing and policy == "error":
            problems.append(f"group {path or '/'!r}: attributes {differing} differ between "
                            "members (--attrs first keeps the first member's, drop drops them)")
        if policy == "drop":
            first = {k: v for k, v in first.items() if k not in differing}
        groups[path] = first
    return groups or {"": {}}
