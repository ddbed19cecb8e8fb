"""CF time coordinates of members in different units (``days since <each file's start>``):
decoded and written again in one unit, exactly, with xarray's own CF time coding (so that
the combined coordinate decodes to the very dates ``xr.open_mfdataset`` gives)."""

from __future__ import annotations

import warnings

import numpy as np

from refindex.errors import CombineError

STANDARD_CALENDARS = {"standard", "gregorian", "proleptic_gregorian"}


def is_time_units(units: object) -> bool:
    """Whether ``units`` is a CF time unit (``<unit> since <reference date>``)."""
    return isinstance(units, str) and " since " in f" {units.strip()} "


def same_calendar(a: object, b: object) -> bool:
    """Whether two ``calendar`` attributes name one calendar (absent is "standard")."""
    def canonical(value: object) -> str:
        text = str(value or "standard").strip().lower()
        return "standard" if text == "gregorian" else text

    return canonical(a) == canonical(b)


def _coding():
    try:
        from xarray.coding import times
    except ImportError:  # pragma: no cover - xarray is in every extra that combines
        raise CombineError(["members store times in different units; rewriting them in one "
                            "unit needs xarray: pip install 'refindex[xarray]'"]) from None
    return times


def decode(values: np.ndarray, units: str, calendar: str | None) -> np.ndarray:
    """The dates ``values`` in ``units`` mean (datetime64 or cftime objects), as xarray
    decodes them."""
    return _coding().decode_cf_datetime(np.asarray(values), units, calendar)


def order_keys(values: np.ndarray, units: str, calendar: str | None) -> np.ndarray:
    """Values that order and compare like the dates (int64 nanoseconds for datetime64)."""
    dates = decode(values, units, calendar)
    return dates.astype("int64") if dates.dtype.kind == "M" else dates


def encode(dates: np.ndarray, units: str, calendar: str | None,
           dtype: np.dtype) -> tuple[np.ndarray, str]:
    """``dates`` as numbers in ``units`` and ``dtype`` when that is exact, else in the unit and
    dtype xarray chooses for them; with the units used. Raises when nothing is exact."""
    coding = _coding()
    for wanted_units, wanted_dtype in ((units, dtype), (None, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # xarray warns when it picks another unit
            numbers, used, _ = coding.encode_cf_datetime(dates, wanted_units, calendar,
                                                         wanted_dtype)
        numbers = np.asarray(numbers)
        if wanted_dtype is not None:
            if used != units:
                continue
            numbers = numbers.astype(wanted_dtype)
        again = coding.decode_cf_datetime(numbers, used, calendar)
        if _equal_dates(again, dates):
            return numbers, used
    raise CombineError([f"cannot write the dates {dates[:3]}... in one unit exactly"])


def _equal_dates(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "M" and b.dtype.kind == "M":
        return bool(np.array_equal(a.astype("int64"), b.astype("int64")))
    return bool(np.all(a == b))
