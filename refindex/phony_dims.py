"""Names for array axes no dimension names: ``phony_dim_N``, as h5netcdf gives them.

h5netcdf (like netCDF-C) names the axes of a group's arrays that have no dimension scale
group by group: each size gets as many dimensions as the one array that needs most of that
size; a group's named dimensions of that size are used first, then ``phony_dim_N``
dimensions, made per size in the order the sizes first appear. The k-th unnamed axis of a
size in an array gets the k-th dimension of that size. ``N`` counts on from the phony
dimensions of the enclosing groups: that is how ``xr.open_dataset(path, engine="h5netcdf",
group=...)`` numbers them (its default ``phony_dims="access"`` initialises the root and each
group on the way down, and only those).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

Axis = tuple[str | None, int]
"""One axis of an array: its dimension name (None when it has none) and its length."""


def phony_name(number: int) -> str:
    return f"phony_dim_{number}"


def parents_first(group_paths: Iterable[str]) -> list[str]:
    """Group paths ("" the root, "a/b" below "a") ordered so that each comes after those
    of its enclosing groups."""
    return sorted(group_paths, key=lambda path: (path.count("/") + 1 if path else 0, path))


def first_number(group_path: str, next_numbers: Mapping[str, int]) -> int:
    """The number of the first phony dimension of the group at ``group_path``: the next
    number (``next_numbers``: group path -> next phony number) of its nearest enclosing
    group that has one, or 0."""
    while group_path:
        group_path = group_path.rpartition("/")[0]
        if group_path in next_numbers:
            return next_numbers[group_path]
    return 0


def name_group_axes(arrays: Sequence[Sequence[Axis]], first: int,
                    named: Sequence[tuple[str, int]] = (), taken: frozenset[str] = frozenset()
                    ) -> tuple[list[tuple[str, ...]], int]:
    """The dimension names of each array of one group, its unnamed axes named as h5netcdf
    names them, and the next phony number.

    ``arrays``: per array, its axes in order. ``first``: the number of the group's first
    phony dimension. ``named``: the group's named dimensions (name, length), in the group's
    order, which unnamed axes of their length take first (h5netcdf's rule for dimension
    scales). Names in ``taken`` are never made (names other arrays already use).
    """
    needed: Counter[int] = Counter()
    for axes in arrays:
        needed |= Counter(size for name, size in axes if name is None)
    by_size: defaultdict[int, list[str]] = defaultdict(list)
    for name, size in named:
        by_size[size].append(name)
    counter = _PhonyCounter(first, taken)
    for size, count in needed.items():
        while len(by_size[size]) < count:
            by_size[size].append(counter.make())
    names = []
    for axes in arrays:
        used: Counter[int] = Counter()
        result: list[str] = []
        for name, size in axes:
            if name is None:
                name = _pick(by_size[size], used, size, set(result), counter)
            result.append(name)
        names.append(tuple(result))
    return names, counter.next


def _pick(candidates: list[str], used: Counter[int], size: int, in_array: set[str],
          counter: _PhonyCounter) -> str:
    # An array that names some axes (h5netcdf refuses those) must not get one of its own
    # names twice: it skips them, and may need a dimension more than the group made.
    while True:
        if used[size] >= len(candidates):
            candidates.append(counter.make())
        name = candidates[used[size]]
        used[size] += 1
        if name not in in_array:
            return name


class _PhonyCounter:
    def __init__(self, first: int, taken: frozenset[str]) -> None:
        self.next, self._taken = first, taken

    def make(self) -> str:
        while phony_name(self.next) in self._taken:
            self.next += 1
        self.next += 1
        return phony_name(self.next - 1)
