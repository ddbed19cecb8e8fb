"""Factories of small NetCDF3 files written by netCDF4-python (and scipy), one per family of
features the NetCDF3 scanner must cover. Each writes ``path`` in ``format`` (a netCDF4
format name: NETCDF3_CLASSIC, NETCDF3_64BIT_OFFSET or NETCDF3_64BIT_DATA)."""

from __future__ import annotations

import struct
from pathlib import Path

import netCDF4
import numpy as np

FORMATS = ("NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA")
CLASSIC_TYPES = ("i1", "i2", "i4", "f4", "f8")
CDF5_TYPES = ("u1", "u2", "u4", "i8", "u8")


def numeric_types(fmt: str) -> tuple[str, ...]:
    """The numeric variable types ``fmt`` can hold."""
    return CLASSIC_TYPES + (CDF5_TYPES if fmt == "NETCDF3_64BIT_DATA" else ())


def _values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        values = rng.normal(size=shape).astype(dtype)
        values.reshape(-1)[:1] = np.nan
        return values
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def every_type(path: Path, fmt: str) -> None:
    """Every type as non-record, record (odd per-record sizes: padding) and scalar variables;
    coordinate variables; a char array of names; records left unwritten (fill values);
    attributes of every type on variables and globally; a dimension no variable uses."""
    rng = np.random.default_rng(3)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension("y", 5)
        nc.createDimension("x", 7)
        nc.createDimension("odd", 3)
        nc.createDimension("strlen", 6)
        nc.createDimension("unused", 2)
        _coordinates(nc)
        for dtype in numeric_types(fmt):
            nc.createVariable(f"fixed_{dtype}", dtype, ("y", "x"))[:] = _values(rng, dtype, (5, 7))
            record = nc.createVariable(f"record_{dtype}", dtype, ("time", "odd"))
            record[:4] = _values(rng, dtype, (4, 3))  # records 4 and 5 stay fill values
            nc.createVariable(f"scalar_{dtype}", dtype, ())[...] = _values(rng, dtype, ())
            _typed_attributes(nc.variables[f"fixed_{dtype}"], dtype, rng)
            _typed_attributes(nc, dtype, rng, prefix=f"global_{dtype}_")
        names = nc.createVariable("station", "S1", ("y", "strlen"))
        names[:] = netCDF4.stringtochar(np.array(["alpha", "beta", "gamma", "d", "epsilo"],
                                                 dtype="S6"))
        record_chars = nc.createVariable("record_chars", "S1", ("time", "odd"))
        record_chars[:6] = netCDF4.stringtochar(np.array([b"abc", b"de", b"f", b"", b"gh",
                                                          b"ijk"], dtype="S3"))
        with_fill = nc.createVariable("with_fill", "f4", ("time", "y"), fill_value=-999.0)
        with_fill[1] = np.arange(5, dtype="f4")  # record 0 stays its _FillValue
        with_fill.units = "K"
        nc.title = "every type"
        nc.history = "written by netCDF4-python, caf\u00e9 \u00b0C"
        nc.nc_time_end = "2020-01-02"


def _coordinates(nc: netCDF4.Dataset) -> None:
    time = nc.createVariable("time", "f8", ("time",))
    time.units, time.calendar = "days since 2020-01-01", "standard"
    time[:6] = np.arange(6) * 0.5
    y = nc.createVariable("y", "f4", ("y",))
    y[:] = np.linspace(-2, 2, 5)
    y.units = "m"
    nc.createVariable("x", "i4", ("x",))[:] = np.arange(7) * 10


def _typed_attributes(target, dtype: str, rng: np.random.Generator, prefix: str = "") -> None:
    """One scalar and one 3-element attribute of ``dtype``, and text, on ``target``. Float
    attributes hold a NaN."""
    three = _values(rng, dtype, (3,))
    target.setncattr(f"{prefix}one", three[1])
    target.setncattr(f"{prefix}three", three)
    target.setncattr(f"{prefix}text", f"values of type {dtype}")


def record_variables(path: Path, fmt: str, dtypes: tuple[str, ...], records: int,
                     inner: int = 3) -> None:
    """Record variables of ``dtypes`` (one each) over ``records`` records of ``inner`` values:
    a single one of a 1- or 2-byte type has unpadded records, several are padded."""
    rng = np.random.default_rng(11)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension("n", inner)
        for dtype in dtypes:
            var = nc.createVariable(f"v_{dtype}", dtype, ("time", "n"))
            if records:
                if dtype == "S1":
                    var[:records] = rng.choice(list(b"abcxyz"), size=(records, inner)).astype(
                        "u1").view("S1")
                else:
                    var[:records] = _values(rng, dtype, (records, inner))


def large_variables(path: Path, fmt: str) -> None:
    """A 9 MB non-record variable of a prime number of rows (its last row block reads on into
    the record data) and a record variable of 9 MB records (1,024 rows: row blocks that
    divide them), interleaved with a small record variable; 27 MB in all."""
    rng = np.random.default_rng(5)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension("rows", 1031)
        nc.createDimension("lines", 1024)
        nc.createDimension("cols", 1100)
        nc.createVariable("big", "f8", ("rows", "cols"))[:] = rng.random((1031, 1100))
        nc.createVariable("stamp", "i2", ("time",))[:2] = [7, 8]
        nc.createVariable("frames", "f8", ("time", "lines", "cols"))[:2] = rng.random(
            (2, 1024, 1100))


def row_blocks(path: Path, fmt: str) -> None:
    """Variables of 16-byte rows for a block size of 4 KiB (256 rows): a non-record one of
    521 rows (prime: the last block reads on past it), a record variable of 512 rows (blocks
    divide it) and, last in the file, one of 521 rows (a block past its last record would
    leave the file)."""
    rng = np.random.default_rng(8)
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("time", None)
        nc.createDimension("prime", 521)
        nc.createDimension("even", 512)
        nc.createDimension("pair", 2)
        nc.createVariable("fixed", "f8", ("prime", "pair"))[:] = rng.random((521, 2))
        nc.createVariable("divided", "f8", ("time", "even", "pair"))[:3] = rng.random(
            (3, 512, 2))
        nc.createVariable("whole", "f8", ("time", "prime", "pair"))[:3] = rng.random(
            (3, 521, 2))


def many_attributes(path: Path, fmt: str, count: int = 400) -> None:
    """A header of about 300 KB: ``count`` variables with long text attributes."""
    with netCDF4.Dataset(path, "w", format=fmt) as nc:
        nc.createDimension("x", 4)
        for i in range(count):
            var = nc.createVariable(f"v{i:04d}", "i2", ("x",))
            var[:] = np.arange(4) + i
            var.long_name = f"variable number {i} " + "description " * 60
        nc.comment = "header larger than one read"


def scipy_file(path: Path, version: int) -> None:
    """A file written by scipy.io.netcdf_file (``version`` 1 or 2), with a record variable."""
    from scipy.io import netcdf_file

    with netcdf_file(path, "w", version=version) as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 3)
        time = nc.createVariable("time", "f8", ("time",))
        time[:] = np.arange(4.0)
        time.units = "days since 2000-01-01"
        values = nc.createVariable("values", "i2", ("time", "x"))
        values[:] = np.arange(12, dtype="i2").reshape(4, 3)
        values.scale_factor = np.float32(0.5)
        nc.createVariable("fixed", "f4", ("x",))[:] = [1.5, np.nan, -2]
        nc.title = "from scipy"


def handmade(dims: list[tuple[str, int]], variables: list[tuple[str, list[int], int, int]],
             *, version: int = 1, numrecs: int = 0, gatts: bytes = b"",
             data_size: int = 0) -> bytes:
    """The bytes of a NetCDF3 file written field by field, for headers no library writes
    (corrupt ones, streaming record counts): ``dims`` are (name, length), ``variables`` are
    (name, dimension ids, type code, begin) without attributes; ``data_size`` zero bytes
    follow the header. ``gatts`` is an encoded global attribute list (default ABSENT)."""
    count = ">Q" if version == 5 else ">I"
    offset = ">I" if version == 1 else ">Q"

    def name(text: str) -> bytes:
        raw = text.encode()
        return struct.pack(count, len(raw)) + raw + bytes(-len(raw) % 4)

    def tagged(tag: int, items: list[bytes]) -> bytes:
        if not items:
            return bytes(4) + struct.pack(count, 0)
        return struct.pack(">I", tag) + struct.pack(count, len(items)) + b"".join(items)

    out = b"CDF" + bytes([version]) + struct.pack(count, numrecs)
    out += tagged(0x0A, [name(n) + struct.pack(count, length) for n, length in dims])
    out += gatts or tagged(0x0C, [])
    out += tagged(0x0B, [
        name(n) + struct.pack(count, len(ids)) + b"".join(struct.pack(count, i) for i in ids)
        + tagged(0x0C, []) + struct.pack(">I", code) + struct.pack(count, 0)
        + struct.pack(offset, begin)
        for n, ids, code, begin in variables
    ])
    return out + bytes(data_size)


def scipy_one_record_variable(path: Path, version: int) -> None:
    """A file written by scipy.io.netcdf_file whose only record variable has 3-byte records
    (unpadded when it is the only one)."""
    from scipy.io import netcdf_file

    with netcdf_file(path, "w", version=version) as nc:
        nc.createDimension("time", None)
        nc.createDimension("x", 3)
        nc.createVariable("v", "b", ("time", "x"))[:] = np.arange(15, dtype="i1").reshape(5, 3)
