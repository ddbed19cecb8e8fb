"""Where each member lies along the combined dimensions.

Along an existing dimension (``concat_dims``) members are placed by their coordinate values:
members with the same values share a position (they hold different variables, merged), the
positions are ordered by value (not by file name), and together they must run strictly one
way, without overlap. Along a new dimension a member's position is the value its file name
gives (``new_dims``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from refindex.combine import times
from refindex.combine.members import MemberInfo
from refindex.combine.options import CombineOptions


@dataclass
class CombinedDim:
    """One combined dimension: ``kind`` ``"concat"`` (existing) or ``"new"``; per position
    (in order) its length and the values of its coordinate; each member's position."""

    name: str
    kind: str
    positions: dict[int, int]  # member number -> position
    lengths: list[int]
    values: list[np.ndarray]  # per position: raw coordinate values (new dims: one value)
    coordinates: list | None = None  # per position, a member's Coordinate (concat dims)
    units_differ: bool = False  # CF time units differ between members (rewritten)

    def label(self, position: int) -> str:
        """The position for messages: ``2020-01-01 .. 2020-12-31``, ``r3``."""
        if self.coordinates is None:
            return str(self.values[position][0])
        return _label(self.coordinates[position])

    @property
    def length(self) -> int:
        return sum(self.lengths)

    @property
    def count(self) -> int:
        return len(self.lengths)


def combined_dims(infos: Sequence[MemberInfo], options: CombineOptions,
                  problems: list[str]) -> list[CombinedDim]:
    """The combined dimensions, new ones first (outermost), then the concatenated ones;
    what prevents them is added to ``problems``."""
    dims = [_new_dim(name, options, infos, problems) for name, _ in options.new_dims]
    concat = options.concat_dims or inferred_concat_dims(infos, {n for n, _ in options.new_dims})
    if not concat and not dims and len(infos) > 1:
        problems.append("the members' coordinates are the same: nothing says how to combine "
                        "them; name the dimension to concatenate along (--concat-dim) or a new "
                        "one (--new-dim NAME=REGEX)")
    for name in concat:
        dim = _concat_dim(name, infos, problems)
        if dim is not None:
            dims.append(dim)
    return dims


def inferred_concat_dims(infos: Sequence[MemberInfo], exclude: set[str]) -> tuple[str, ...]:
    """Dimensions whose coordinate values differ between members (as combine_by_coords
    finds them), in the order the first member lists them."""
    found = []
    first = infos[0].coords if infos else {}
    for dim in first:
        if dim in exclude:
            continue
        keys = {_raw_key(info.coords[dim]) for info in infos if dim in info.coords}
        if len(keys) > 1:
            found.append(dim)
    return tuple(found)


def _new_dim(name: str, options: CombineOptions, infos: Sequence[MemberInfo],
             problems: list[str]) -> CombinedDim:
    pattern = options.compiled[name]
    found: dict[int, str] = {}
    for info in infos:
        match = pattern.search(info.file_name)
        if match is None:
            problems.append(f"new dimension {name!r}: file name of {info.name} does not match "
                            f"{pattern.pattern!r}")
            continue
        groups = match.groupdict()
        found[info.number] = (groups[name] if name in groups else
                              match.group(1) if match.groups() else match.group(0))
    values = _typed_values(list(found.values()))
    ordered = sorted(set(values))
    place = {value: i for i, value in enumerate(ordered)}
    positions = {number: place[value] for number, value in zip(found, values, strict=True)}
    return CombinedDim(name, "new", positions, [1] * len(ordered),
                       [np.asarray([v]) for v in ordered])


def _typed_values(texts: list[str]) -> list:
    """Integers if every text is one, else floats if every text is one, else the texts."""
    for kind in (int, float):
        try:
            return [kind(text) for text in texts]
        except ValueError:
            continue
    return texts


def _concat_dim(name: str, infos: Sequence[MemberInfo],
                problems: list[str]) -> CombinedDim | None:
    holders = [info for info in infos if name in info.coords]
    lacking = [info.name for info in infos if name not in info.coords and any(
        name in array.dims for array in info.arrays.values())]
    if lacking:
        problems.append(f"dimension {name!r}: no coordinate values for it in "
                        f"{listed(lacking)} (every member needs the coordinate variable "
                        f"{name!r} to be placed along it)")
    if not holders:
        problems.append(f"dimension {name!r}: no member has a coordinate {name!r}")
        return None
    units = {info.coords[name].units for info in holders}
    calendars = {str(info.coords[name].calendar or "standard") for info in holders}
    timed = any(times.is_time_units(u) for u in units)
    if timed and len({times.same_calendar(c, next(iter(calendars))) for c in calendars}) > 1:
        problems.append(f"dimension {name!r}: members use different calendars "
                        f"({', '.join(sorted(calendars))})")
        return None
    rewrite = timed and len(units) > 1
    keyed = {}
    for info in holders:
        coordinate = info.coords[name]
        key = (tuple(times.order_keys(coordinate.values, coordinate.units, coordinate.calendar))
               if rewrite else _raw_key(coordinate))
        keyed.setdefault(key, []).append(info)
    increasing = _direction(list(keyed), name, problems)
    order = sorted(keyed, key=lambda key: key[0] if key else 0, reverse=not increasing)
    _check_sequence(name, order, keyed, increasing, problems)
    positions = {info.number: p for p, key in enumerate(order) for info in keyed[key]}
    first = [keyed[key][0] for key in order]
    return CombinedDim(name, "concat", positions, [len(key) for key in order],
                       [info.coords[name].values for info in first],
                       [info.coords[name] for info in first], rewrite)


def _raw_key(coordinate) -> tuple:
    return tuple(np.asarray(coordinate.values).tolist())


def _direction(keys: list[tuple], name: str, problems: list[str]) -> bool:
    """True when the coordinate increases: along each member, else from member to member."""
    steps = {bool(key[-1] > key[0]) for key in keys if len(key) > 1 and key[-1] != key[0]}
    if len(steps) > 1:
        problems.append(f"dimension {name!r}: some members' coordinate values increase, "
                        "others decrease")
    return steps != {False}


def _check_sequence(name: str, order: list[tuple], keyed: dict, increasing: bool,
                    problems: list[str]) -> None:
    """The values of each member must run strictly one way, and members must not overlap."""
    def ahead(a, b) -> bool:
        return a < b if increasing else a > b

    for key in order:
        if any(not ahead(a, b) for a, b in zip(key, key[1:], strict=False)):
            members = listed([info.name for info in keyed[key]])
            problems.append(f"dimension {name!r}: the coordinate values of {members} are not "
                            f"strictly {'increasing' if increasing else 'decreasing'}")
    for before, after in zip(order, order[1:], strict=False):
        if before and after and not ahead(before[-1], after[0]):
            problems.append(
                f"dimension {name!r}: the values of {listed([i.name for i in keyed[after]])} "
                f"overlap those of {listed([i.name for i in keyed[before]])} "
                f"(duplicate or overlapping {name} values)")


def _label(coordinate) -> str:
    values = np.asarray(coordinate.values)
    if times.is_time_units(coordinate.units):
        try:
            dates = times.decode(values[[0, -1]] if values.size else values, coordinate.units,
                                 coordinate.calendar)
            return " .. ".join(str(d) for d in dates)
        except Exception:  # noqa: BLE001 - a label for a message only
            pass
    if values.size == 0:
        return "(empty)"
    return f"{values.flat[0]} .. {values.flat[-1]}" if values.size > 1 else str(values.flat[0])


def listed(names: list[str], most: int = 5) -> str:
    """The first ``most`` names, and how many more, for messages."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
