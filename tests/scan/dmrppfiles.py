"""DMR++ documents written for HDF5 / NetCDF4 files, the way Hyrax's ``build_dmrpp`` writes
them (OPeNDAP's DMR++ description): a DAP4 DMR of the file's groups, dimensions, variables
and attributes, with ``dmrpp:`` elements giving every chunk's offset and size (from h5py's
chunk queries), the filters in the order they were applied, the fill value and byte order,
compact values as base64 and, optionally, never-written variables as ``dmrpp:missingdata``.

No OPeNDAP tool can be installed here, so this writer stands in for ``build_dmrpp``; its
options produce each form of the elements the format allows.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import h5py
import numpy as np
from h5py import h5d, h5ds

DAP4 = "http://xml.opendap.org/ns/DAP/4.0#"
DMRPP = "http://xml.opendap.org/dap/dmrpp/1.0.0#"
_DAP_TYPES = {"i1": "Int8", "u1": "UInt8", "i2": "Int16", "u2": "UInt16", "i4": "Int32",
              "u4": "UInt32", "i8": "Int64", "u8": "UInt64", "f4": "Float32", "f8": "Float64"}
_FILTER_NAMES = {1: "deflate", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
_REFERENCE_ATTRS = frozenset({"DIMENSION_LIST", "REFERENCE_LIST"})
_NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable"


def write_dmrpp(h5_path: Path, out: Path | None = None, href: str | None = None, *,
                contiguous: str = "chunks", missing: str = "chunks", flatten: bool = False,
                byte_type: str = "UInt8") -> Path:
    """Write the DMR++ of ``h5_path`` to ``out`` (default ``h5_path + ".dmrpp"``).

    ``href``: the ``dmrpp:href`` (default the file's ``file://`` URL; ``""`` writes none).
    ``contiguous``: ``"chunks"`` wraps a contiguous dataset's one block in ``dmrpp:chunks``,
    ``"chunk"`` writes a lone ``dmrpp:chunk``. ``missing``: a dataset with no stored data is
    ``"chunks"`` (a ``dmrpp:chunks`` listing no chunk) or ``"missingdata"`` (its values,
    zlib + base64). ``flatten``: every variable at the root under its full path (``/g/x``).
    ``byte_type``: the DAP4 name of unsigned bytes (``UInt8``, or ``Byte`` as DAP2 said).
    """
    out = out or Path(str(h5_path) + ".dmrpp")
    href = f"file://{Path(h5_path).resolve()}" if href is None else href
    writer = _Writer(missing=missing, contiguous=contiguous, flatten=flatten,
                     byte_type=byte_type)
    with h5py.File(h5_path, "r") as f:
        body = writer.group(f, "", 1)
        if flatten:
            body += "".join(writer.flat)
    ref = f" dmrpp:href={quoteattr(href)}" if href else ""
    text = ("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"
            f"<Dataset xmlns=\"{DAP4}\" xmlns:dmrpp=\"{DMRPP}\" dapVersion=\"4.0\" "
            f"dmrVersion=\"1.0\" name={quoteattr(Path(h5_path).name)}{ref} "
            "dmrpp:version=\"3.21.0-test\">\n" + body + "</Dataset>\n")
    out.write_text(text, encoding="latin-1")
    return out


class _Writer:
    def __init__(self, missing: str, contiguous: str, flatten: bool, byte_type: str) -> None:
        self.missing, self.contiguous, self.flatten = missing, contiguous, flatten
        self.byte_type = byte_type
        self.flat: list[str] = []

    def group(self, group: h5py.Group, path: str, depth: int) -> str:
        pad = "  " * depth
        parts = []
        for name, obj in group.items():
            if isinstance(obj, h5py.Dataset) and h5ds.is_scale(obj.id):
                if self.flatten and path:  # declared at the root, by its full name
                    self.flat.insert(0, f"  <Dimension name={quoteattr(f'{path[1:]}/{name}')} "
                                        f"size=\"{obj.shape[0]}\"/>\n")
                    continue
                parts.append(f"{pad}<Dimension name={quoteattr(name)} size=\"{obj.shape[0]}\"/>\n")
        for name, obj in group.items():
            if isinstance(obj, h5py.Dataset) and not _dimension_only(obj):
                text = self.variable(obj, name, depth)
                if self.flatten and path:
                    self.flat.append(self.variable(obj, f"{path}/{name}", 1))
                else:
                    parts.append(text)
        parts.append(attributes(group, pad))
        for name, obj in group.items():
            if isinstance(obj, h5py.Group):
                inner = self.group(obj, f"{path}/{name}", depth + 1)
                if not self.flatten:
                    parts.append(f"{pad}<Group name={quoteattr(name)}>\n{inner}{pad}</Group>\n")
        return "".join(parts)

    def variable(self, dset: h5py.Dataset, name: str, depth: int) -> str:
        pad = "  " * depth
        kind = dap_type(dset.dtype, self.byte_type)
        lines = [f"{pad}<{kind} name={quoteattr(name)}>\n"]
        own = h5ds.is_scale(dset.id) and dset.ndim == 1
        for axis, size in enumerate(dset.shape or ()):
            scales = dset.dims[axis]
            if own:  # a dimension's own variable
                lines.append(f"{pad}  <Dim name={quoteattr(dset.name)}/>\n")
            elif len(scales):
                lines.append(f"{pad}  <Dim name={quoteattr(scales[len(scales) - 1].name)}/>\n")
            else:
                lines.append(f"{pad}  <Dim size=\"{size}\"/>\n")
        lines.append(attributes(dset, pad + "  "))
        fixed = _fixed_string(dset)
        if fixed:
            lines.append(f"{pad}  {fixed}\n")
        if h5py.check_string_dtype(dset.dtype) is not None and not fixed:
            lines.append(_vlsa(dset, pad + "  "))
        if kind in _DAP_TYPES.values() or kind == "Byte" or fixed:
            lines.append(self.storage(dset, pad + "  "))
        lines.append(f"{pad}</{kind}>\n")
        return "".join(lines)

    def storage(self, dset: h5py.Dataset, pad: str) -> str:
        dcpl = dset.id.get_create_plist()
        layout = dcpl.get_layout()
        order = "BE" if dset.dtype.byteorder == ">" else "LE"
        fill = _fill_attribute(dset)
        if layout == h5d.COMPACT:
            data = np.ascontiguousarray(dset[()], dtype=dset.dtype.newbyteorder("<")).tobytes()
            return f"{pad}<dmrpp:compact>{base64.b64encode(data).decode()}</dmrpp:compact>\n"
        written = dset.id.get_num_chunks() if layout == h5d.CHUNKED else (
            1 if dset.id.get_offset() is not None else 0)
        if not written and self.missing == "missingdata":
            data = np.ascontiguousarray(dset[()], dtype=dset.dtype.newbyteorder("<")).tobytes()
            encoded = base64.b64encode(zlib.compress(data)).decode()
            return f"{pad}<dmrpp:missingdata>{encoded}</dmrpp:missingdata>\n"
        if layout == h5d.CONTIGUOUS:
            chunk = (f"<dmrpp:chunk offset=\"{dset.id.get_offset()}\" "
                     f"nBytes=\"{dset.id.get_storage_size()}\"")
            if self.contiguous == "chunk" and written:
                return f"{pad}{chunk} byteOrder=\"{order}\"/>\n"
            inner = f"{pad}  {chunk}/>\n" if written else ""
            return (f"{pad}<dmrpp:chunks{fill} byteOrder=\"{order}\">\n{inner}"
                    f"{pad}</dmrpp:chunks>\n")
        return self.chunks(dset, dcpl, pad, order, fill)

    def chunks(self, dset, dcpl, pad: str, order: str, fill: str) -> str:
        names, levels = [], []
        for i in range(dcpl.get_nfilters()):
            code, _, values, _ = dcpl.get_filter(i)
            names.append(_FILTER_NAMES.get(code, f"filter{code}"))
            if code == 1:
                levels.append(str(values[0]))
        filters = f" compressionType=\"{' '.join(names)}\"" if names else ""
        if levels:
            filters += f" deflateLevel=\"{' '.join(levels)}\""
        lines = [f"{pad}<dmrpp:chunks{filters}{fill} byteOrder=\"{order}\">\n",
                 f"{pad}  <dmrpp:chunkDimensionSizes>{' '.join(map(str, dset.chunks))}"
                 "</dmrpp:chunkDimensionSizes>\n"]
        for i in range(dset.id.get_num_chunks()):
            info = dset.id.get_chunk_info(i)
            position = ",".join(str(c) for c in info.chunk_offset)
            mask = f" fm=\"{info.filter_mask}\"" if info.filter_mask else ""
            lines.append(f"{pad}  <dmrpp:chunk offset=\"{info.byte_offset}\" "
                         f"nBytes=\"{info.size}\" chunkPositionInArray=\"[{position}]\"{mask}/>\n")
        lines.append(f"{pad}</dmrpp:chunks>\n")
        return "".join(lines)


def dap_type(dtype: np.dtype, byte_type: str = "UInt8") -> str:
    """The DAP4 type a DMR++ writer gives an HDF5 type (``String`` for text, ``Structure``
    for records, ``Opaque`` for what DAP4 has no number for)."""
    if dtype.kind in "SUO" or h5py.check_string_dtype(dtype) is not None:
        return "String"
    if dtype.fields is not None:
        return "Structure"
    code = f"{dtype.kind}{dtype.itemsize}"
    if code == "u1":
        return byte_type
    return _DAP_TYPES.get(code, "Opaque")


def attributes(obj, pad: str) -> str:
    """``Attribute`` elements of ``obj``'s attributes (references are not written, as Hyrax
    writes none)."""
    lines = []
    for name in obj.attrs:
        if name in _REFERENCE_ATTRS:
            continue
        value = obj.attrs[name]
        array = np.atleast_1d(np.asarray(value))
        if array.dtype.kind in "SUO":
            kind = "String"
            texts = [v.decode("utf-8") if isinstance(v, bytes) else str(v)
                     for v in array.ravel()]
        else:
            kind = dap_type(array.dtype)
            texts = [_number_text(v) for v in array.ravel()]
        values = "".join(f"<Value>{escape(t)}</Value>" for t in texts)
        lines.append(f"{pad}<Attribute name={quoteattr(name)} type=\"{kind}\">{values}"
                     "</Attribute>\n")
    return "".join(lines)


def _number_text(value) -> str:
    """A number as text that parses back to exactly it (the shortest such form)."""
    return str(value.item() if value.dtype.kind in "iu" else value)


def _vlsa(dset: h5py.Dataset, pad: str) -> str:
    """``dmrpp:vlsa``: the values of a variable-length string dataset, runs of one value as
    one ``v`` with a count ``c``."""
    values = [v.decode("utf-8") if isinstance(v, bytes) else str(v)
              for v in np.asarray(dset[()], dtype=object).reshape(-1)]
    lines, i = [f"{pad}<dmrpp:vlsa>\n"], 0
    while i < len(values):
        run = 1
        while i + run < len(values) and values[i + run] == values[i]:
            run += 1
        count = f" c=\"{run}\"" if run > 1 else ""
        lines.append(f"{pad}  <dmrpp:v{count}>{escape(values[i])}</dmrpp:v>\n")
        i += run
    lines.append(f"{pad}</dmrpp:vlsa>\n")
    return "".join(lines)


def _fixed_string(dset: h5py.Dataset) -> str:
    """The ``dmrpp:FixedLengthStringArray`` element of a fixed-length string dataset."""
    tid = dset.id.get_type()
    if not isinstance(tid, h5py.h5t.TypeStringID) or tid.is_variable_str():
        return ""
    pad = {h5py.h5t.STR_NULLPAD: "null_pad", h5py.h5t.STR_NULLTERM: "null_term",
           h5py.h5t.STR_SPACEPAD: "space_pad"}[tid.get_strpad()]
    return (f"<dmrpp:FixedLengthStringArray string_length=\"{tid.get_size()}\" "
            f"pad=\"{pad}\"/>")


def _fill_attribute(dset: h5py.Dataset) -> str:
    dcpl = dset.id.get_create_plist()
    if dcpl.fill_value_defined() != h5d.FILL_VALUE_USER_DEFINED:
        return ""
    if dset.dtype.kind == "S":
        text = np.asarray(dset.fillvalue, dset.dtype).tobytes().rstrip(b"\0")
        return f" fillValue={quoteattr(text.decode())}" if text else ""
    return f" fillValue=\"{_number_text(np.asarray(dset.fillvalue, dset.dtype)[()])}\""


def _dimension_only(dset: h5py.Dataset) -> bool:
    name = dset.attrs.get("NAME", b"") if h5ds.is_scale(dset.id) else b""
    return isinstance(name, bytes) and name.startswith(_NOT_A_VARIABLE)


def granule(path: Path) -> Path:
    """A NetCDF4 granule with what DMR++ states: nested groups and their dimensions, every
    DAP4 number type, typed attributes, chunked (deflate, shuffle, fletcher32; edge chunks;
    never-written chunks), contiguous and scalar variables, fill values, a variable never
    written, and a string variable (which DMR++ cannot state exactly)."""
    import netCDF4

    rng = np.random.default_rng(7)
    with netCDF4.Dataset(path, "w") as f:
        f.title = "granule"
        f.version = np.int16(3)
        f.setncattr("scale", np.float32(0.1))
        f.setncattr("levels", np.array([1.5, 2.25, np.nan]))
        f.createDimension("time", None)
        f.createDimension("lat", 45)
        f.createDimension("lon", 30)
        f.createDimension("nv", 2)
        time = f.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time[:] = np.arange(3.0)
        lat = f.createVariable("lat", "f4", ("lat",))
        lat[:] = np.linspace(-88, 88, 45)
        lat.units = "degrees_north"
        lon = f.createVariable("lon", "f8", ("lon",), contiguous=True)
        lon[:] = np.linspace(0, 348, 30)
        bounds = f.createVariable("lat_bnds", "f4", ("lat", "nv"), contiguous=True)
        bounds[:] = np.stack([lat[:] - 2, lat[:] + 2], axis=1)
        tas = f.createVariable("tas", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                               complevel=4, chunksizes=(1, 20, 16), fill_value=np.float32(1e20))
        tas[:] = rng.standard_normal((3, 45, 30)).astype("f4")
        tas[1, :5, :5] = np.ma.masked
        tas.scale_factor = np.float32(0.5)
        tas.valid_range = np.array([-50, 50], dtype="f4")
        sparse = f.createVariable("sparse", "i4", ("lat", "lon"), chunksizes=(10, 10),
                                  fill_value=-7, fletcher32=True)
        sparse[0:10, 0:10] = 1
        sparse[30:40, 20:30] = 2
        f.createVariable("never", "f8", ("lat", "lon"), chunksizes=(15, 15), fill_value=2.5)
        f.createVariable("scalar", "i8").assignValue(-(2**40))
        g = f.createGroup("obs")
        g.source = "station"
        g.createDimension("station", 7)
        station = g.createVariable("station", "i4", ("station",))
        station[:] = np.arange(7) * 10
        for code in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8"):
            var = g.createVariable(f"v_{code}", code, ("station",), zlib=code in ("i4", "f8"))
            info = np.iinfo(code) if code[0] in "iu" else np.finfo(code)
            extremes = [info.min, info.max, 0, 1, 2, 3, 4] if code[0] in "iu" else [
                info.min, info.max, 0.0, -1.5, info.tiny, np.nan, np.inf]
            var[:] = np.array(extremes, dtype=code)
            var.setncattr(f"a_{code}", np.array([info.min, info.max], dtype=code))
            var.long_name = f"{code} values"
        deeper = g.createGroup("deeper")
        deeper.createDimension("x", 5)
        deep = deeper.createVariable("grid", "u2", ("x", "station"), chunksizes=(2, 3),
                                     zlib=True)
        deep[:] = rng.integers(0, 60000, (5, 7))
        names = f.createVariable("names", str, ("nv",))
        names[0], names[1] = "low", "høgh <&>"
        labels = g.createVariable("labels", str, ("station",))
        for i, label in enumerate(["a", "a", "a", "b", "", "b", "b"]):
            labels[i] = label
    return path


def plain_hdf5(path: Path) -> Path:
    """An HDF5 file h5py writes: compact, big-endian, LZF-filtered and never-written
    contiguous datasets, axes without dimension scales, a record type."""
    with h5py.File(path, "w") as f:
        space = h5py.h5s.create_simple((6,))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5d.COMPACT)
        compact = h5py.Dataset(h5d.create(f.id, b"compact", h5py.h5t.STD_I16LE, space,
                                          dcpl=dcpl))
        compact[:] = np.arange(6, dtype="i2") - 3
        f.create_dataset("big_endian", data=np.arange(24, dtype=">f8").reshape(4, 6),
                         chunks=(2, 3))
        f.create_dataset("big_contiguous", data=np.arange(12, dtype=">u4"))
        f.create_dataset("lzf", data=np.arange(100, dtype="i4"), chunks=(10,), compression="lzf")
        f.create_dataset("unwritten", shape=(4, 5), dtype="f4", fillvalue=np.float32(-1.5))
        f.create_dataset("records", data=np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]))
        f.create_dataset("codes", data=np.array([b"alpha", b"be", b"", b"gamma123"], "S8"),
                         chunks=(2,), compression="gzip", shuffle=True)
        padded = f.create_dataset("padded_fill", shape=(6,), dtype="S4", chunks=(3,),
                                  fillvalue=b"NA")
        padded[:3] = [b"a", b"bb", b"ccc"]
        tid = h5py.h5t.C_S1.copy()
        tid.set_size(6)
        tid.set_strpad(h5py.h5t.STR_SPACEPAD)
        spaced = h5py.Dataset(h5d.create(f.id, b"space_padded", tid, h5py.h5s.create_simple((2,))))
        spaced[:] = np.array([b"ab    ", b"cdef  "], "S6")
        f.create_dataset("letters", data=np.array([b"x", b"y", b"z"], "S1"))
        f["unwritten"].attrs["note"] = "fill only"
    return path
