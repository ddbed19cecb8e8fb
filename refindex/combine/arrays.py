"""How each array of the members becomes one combined array, and whether it can, exactly.

An array is laid along the combined dimensions it has (and along new dimensions, if it is a
data variable rather than a coordinate): its *tiles*, one per combination of positions,
each held by one member. Members holding the same tile (the same coordinate in every member
of an ensemble, a grid variable in every file) must hold the same values: the first is kept,
the others are checked against it. Everything that would make the combined array read
differently from its members — dtype, codecs, fill value, chunking off the combined axes,
CF packing attributes — must agree, and is reported member by member when it does not.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from refindex.combine import times
from refindex.combine.dims import CombinedDim, listed
from refindex.combine.members import DIMENSIONS, ArrayInfo, MemberInfo
from refindex.grid import AxisChunks, ChunkGrid


@dataclass
class ArrayPlan:
    """One combined array: ``role`` ``"table"`` (chunk tables of members, placed as tiles),
    ``"coordinate"`` (the coordinate of a combined dimension, from its values) or
    ``"rewrite"`` (CF times in different units: values read and written in one unit)."""

    path: str
    role: str
    dims: tuple[str, ...]  # of the combined array
    along: tuple[str, ...]  # the combined dimensions it is laid along
    tiles: dict[tuple[int, ...], list[int]]  # positions -> members holding it (first kept)
    reference: int  # the member whose metadata the combined array takes
    grid: ChunkGrid | None = None
    starts: dict[str, list[int]] = field(default_factory=dict)
    """Per concatenated dimension, the first chunk (along it) of each position."""
    zarray: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    attr_dtypes: dict = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        """Whether some tile is held by more than one member (values compared)."""
        return any(len(members) > 1 for members in self.tiles.values())


def plan_arrays(infos: Sequence[MemberInfo], dims: list[CombinedDim],
                problems: list[str]) -> dict[str, ArrayPlan]:
    """The plan of every array path of the members; problems go to ``problems``."""
    by_number = {info.number: info for info in infos}
    holders: dict[str, list[MemberInfo]] = {}
    for info in infos:
        for path in info.arrays:
            holders.setdefault(path, []).append(info)
    coordinates = _coordinate_names(infos)
    for info in infos:
        for path in sorted(info.left_out.keys() & holders.keys()):
            # Combining the others would fill this member's part, or take another's values.
            problems.append(f"{path}: left out of {info.name}'s scan ({info.left_out[path]}); "
                            "held by other members")
    plans = {}
    for path, members in holders.items():
        plan = _plan_array(path, members, dims, coordinates, problems)
        if plan is not None:
            _check_and_lay_out(plan, by_number, dims, problems)
            plans[path] = plan
    return plans


def _coordinate_names(infos: Sequence[MemberInfo]) -> set[str]:
    """Arrays that are coordinates, not data: dimension coordinates, and what ``coordinates``
    and ``bounds`` attributes name."""
    names = set()
    for info in infos[:1] or ():
        for path, array in info.arrays.items():
            if array.dims == (path.rsplit("/", 1)[-1],):
                names.add(path)
            for attr in ("coordinates", "bounds"):
                value = array.attrs.get(attr)
                if isinstance(value, str):
                    prefix = path.rpartition("/")[0]
                    names.update(f"{prefix}/{n}".lstrip("/") for n in value.split())
    return names


def _plan_array(path: str, members: list[MemberInfo], dims: list[CombinedDim],
                coordinates: set[str], problems: list[str]) -> ArrayPlan | None:
    first = members[0].arrays[path]
    others = sorted({m.arrays[path].dims for m in members} - {first.dims})
    if others:
        problems.append(f"{path}: dimensions differ between members: {list(first.dims)} in "
                        f"{members[0].name}, {[list(d) for d in others]} elsewhere")
        return None
    along = tuple(d.name for d in dims
                  if (d.kind == "concat" and d.name in first.dims)
                  or (d.kind == "new" and path not in coordinates))
    by_name = {d.name: d for d in dims}
    tiles: dict[tuple[int, ...], list[int]] = {}
    for member in members:
        try:
            key = tuple(by_name[d].positions[member.number] for d in along)
        except KeyError:
            continue  # reported by the dimension (no coordinate or no name match)
        tiles.setdefault(key, []).append(member.number)
    expected = set(itertools.product(*(range(by_name[d].count) for d in along)))
    missing = sorted(expected - set(tiles))
    if missing:
        where = [", ".join(f"{d}={by_name[d].label(p)}" for d, p in zip(along, key,
                                                                           strict=True))
                 for key in missing]
        problems.append(f"{path}: no member holds it at {listed(where, 3)}")
        return None
    new = tuple(d for d in along if by_name[d].kind == "new")
    role = "coordinate" if (path in by_name and by_name[path].kind == "concat") else "table"
    if role == "table" and _needs_rewrite(path, members):
        role = "rewrite"
    reference = tiles[min(tiles)][0] if tiles else members[0].number
    return ArrayPlan(path, role, new + first.dims, along, tiles, reference)


def _needs_rewrite(path: str, members: list[MemberInfo]) -> bool:
    """Whether the array holds CF times whose units differ between members."""
    units = {effective_units(m, path) for m in members}
    return len(units) > 1 and any(times.is_time_units(u) for u in units)


def effective_units(member: MemberInfo, path: str) -> str | None:
    """The array's ``units``, or, for a bounds variable without one, its coordinate's."""
    return effective_attr(member, path, "units")


def effective_attr(member: MemberInfo, path: str, name: str):
    """Attribute ``name`` of the array, or, for a bounds variable without it, of the
    coordinate it bounds (CF: bounds inherit their coordinate's units and calendar)."""
    array = member.arrays[path]
    if name in array.attrs:
        return array.attrs[name]
    for other, info in member.arrays.items():
        if info.attrs.get("bounds") == path.rsplit("/", 1)[-1] and other != path:
            return info.attrs.get(name)
    return None


def _check_and_lay_out(plan: ArrayPlan, members: dict[int, MemberInfo],
                       dims: list[CombinedDim], problems: list[str]) -> None:
    """Check every tile against the reference member and make the combined grid,
    ``zarray`` and attributes."""
    reference = members[plan.reference].arrays[plan.path]
    held = [(key, members[n]) for key, numbers in sorted(plan.tiles.items()) for n in numbers]
    _compare_decoding(plan, members[plan.reference].name, reference, held, problems)
    by_name = {d.name: d for d in dims}
    axes = []
    for d in plan.along:
        if by_name[d].kind == "new":
            axes.append(AxisChunks.regular(by_name[d].count, 1))
    for axis, name in enumerate(reference.dims):
        if name in plan.along:
            axes.append(_concatenated_axis(plan, axis, name, by_name[name], held, problems))
        else:
            axes.append(_shared_axis(plan, axis, name, reference, held, problems))
    if any(a is None for a in axes):
        return
    plan.grid = ChunkGrid(tuple(axes))
    plan.zarray = _combined_zarray(members[plan.reference], plan)
    plan.attrs = {**reference.attrs, DIMENSIONS: list(plan.dims)}
    plan.attr_dtypes = dict(reference.attr_dtypes)


def _compare_decoding(plan: ArrayPlan, reference_name: str, reference: ArrayInfo,
                      held: list[tuple[tuple[int, ...], MemberInfo]],
                      problems: list[str]) -> None:
    """Every member's dtype, codecs, fill value, order and CF attributes must be the
    reference's; one problem per field, listing the members that differ."""
    fields = [("dtype", lambda d: d["dtype"]), ("codecs", lambda d: d["codecs"]),
              ("fill value", lambda d: d["fill_value"]), ("order", lambda d: d["order"])]
    skip = {"units"} if plan.role in ("rewrite", "coordinate") else set()
    names = sorted({k for _, m in held for k in m.arrays[plan.path].decoding["cf"]} - skip)
    for name in names:
        fields.append((name, lambda d, name=name: (d["cf"].get(name), d["cf_types"].get(name))))
    for label, get in fields:
        expected = get(reference.decoding)
        differing = [(m.name, value) for _, m in held
                     if (value := get(m.arrays[plan.path].decoding)) != expected]
        if differing:
            problems.append(f"{plan.path}: {label} differs: {_shown(expected)} in "
                            f"{reference_name}, {_shown(differing[0][1])} in "
                            f"{listed([name for name, _ in differing])}")


def _shown(value) -> str:
    text = repr(value[0] if isinstance(value, tuple) and value[1] is None else value)
    return text if len(text) <= 120 else text[:117] + "..."


def _concatenated_axis(plan: ArrayPlan, axis: int, name: str, dim: CombinedDim,
                       held: list[tuple[tuple[int, ...], MemberInfo]],
                       problems: list[str]) -> AxisChunks | None:
    """The chunks along a concatenated axis: each position's, one after the other. Tiles at
    one position must be chunked alike along it, and as long as the coordinate there."""
    place = plan.along.index(name)
    pieces: dict[int, AxisChunks] = {}
    for key, member in held:
        array = member.arrays[plan.path]
        chunks = array.axis(axis)
        position = key[place]
        if array.shape[axis] != dim.lengths[position]:
            problems.append(f"{plan.path}: {member.name} has {array.shape[axis]} values along "
                            f"{name!r}, its coordinate {dim.lengths[position]}")
            return None
        if position not in pieces:
            pieces[position] = chunks
        elif not (_same_axis(pieces[position], chunks)):
            problems.append(f"{plan.path}: members at {name}={dim.label(position)} are chunked "
                            f"differently along {name!r} ({member.name} and others)")
            return None
    ordered = [pieces[p] for p in range(dim.count)]
    plan.starts[name] = [0, *itertools.accumulate(piece.count for piece in ordered)][:-1]
    return AxisChunks.concatenated(ordered)


def _shared_axis(plan: ArrayPlan, axis: int, name: str, reference: ArrayInfo,
                 held: list[tuple[tuple[int, ...], MemberInfo]],
                 problems: list[str]) -> AxisChunks | None:
    """An axis not combined: every member must have the reference's length and chunks."""
    expected = reference.axis(axis)
    differing = [m.name for _, m in held if not _same_axis(m.arrays[plan.path].axis(axis),
                                                             expected)]
    if differing:
        problems.append(f"{plan.path}: length or chunk shape along {name!r} differs from "
                        f"{reference.shape[axis]} values in chunks of {reference.chunks[axis]}: "
                        f"{listed(differing)}")
        return None
    return expected


def _same_axis(a: AxisChunks, b: AxisChunks) -> bool:
    return a.edges.shape == b.edges.shape and bool((a.edges == b.edges).all()) and bool(
        (a.stored == b.stored).all())


def _combined_zarray(reference: MemberInfo, plan: ArrayPlan) -> dict:
    """The reference member's metadata with the combined shape and chunks; an irregular axis
    is served in chunks of its most common stored length."""
    info = reference.arrays[plan.path]
    grid = plan.grid
    regular = grid.regular_chunks()
    if regular is None:
        regular = tuple(axis.regular_chunk() or _most_common(axis) for axis in grid.axes)
    zarray = dict(info.zarray)
    zarray["shape"] = list(grid.shape)
    zarray["chunks"] = [int(c) if c else 1 for c in regular]
    return zarray


def _most_common(axis: AxisChunks) -> int:
    return int(Counter(axis.stored.tolist()).most_common(1)[0][0]) if axis.count else 1
