"""Basic NumPy selections (integers, slices with any step, ``...``) as a region to read and
what to pick from it: refindex's region reader reads slices of step 1, NumPy picks the rest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BasicSelection:
    """Read ``region`` (a ``slice(start, stop)`` per axis), then index the result with
    ``pick`` (steps, reversals, and 0 where an integer drops the axis)."""

    region: tuple[slice, ...]
    pick: tuple


def is_basic(key) -> bool:
    """Whether ``key`` is a basic selection (ints, slices, ``...``) this module handles."""
    items = key if isinstance(key, tuple) else (key,)
    return all(item is Ellipsis or isinstance(item, slice) or _is_int(item) for item in items)


def basic_selection(key, shape: tuple[int, ...]) -> BasicSelection:
    """``key`` (a basic selection of an array of ``shape``) as region and pick; an integer
    out of bounds, or more indices than axes, is an IndexError as in NumPy."""
    items = list(key) if isinstance(key, tuple) else [key]
    if items.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    given = len(items) - items.count(Ellipsis)
    if given > len(shape):
        raise IndexError(f"too many indices: the array has {len(shape)} dimensions, "
                         f"{given} were indexed")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - given)
    items += [slice(None)] * (len(shape) - len(items))
    region, pick = [], []
    for wanted, length in zip(items, shape, strict=True):
        if isinstance(wanted, slice):
            start, stop, step = wanted.indices(length)
            if step < 0:  # read the span ascending, then walk it backwards
                low = stop + 1 + (start - stop - 1) % -step if start > stop else start
                region.append(slice(low, start + 1) if start > stop else slice(0, 0))
            else:
                region.append(slice(start, max(start, stop)))
            pick.append(slice(None, None, step))
            continue
        index = int(wanted)
        if not -length <= index < length:
            raise IndexError(f"index {index} is out of bounds for an axis of length {length}")
        index += length if index < 0 else 0
        region.append(slice(index, index + 1))
        pick.append(0)
    return BasicSelection(tuple(region), tuple(pick))


def _is_int(item) -> bool:
    try:
        return not isinstance(item, bool) and int(item) == item and hasattr(item, "__index__")
    except (TypeError, ValueError):
        return False
