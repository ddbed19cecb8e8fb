"""How an HDF5 datatype lays out its values on disk, as a NumPy dtype plus whether it is exact.

The layout is derived from the HDF5 type itself (size, byte order, precision, member offsets),
never from the NumPy dtype h5py converts to, because h5py's dtype says how values look after
HDF5's conversion, not how they are stored. ``exact`` is True only when a chunk's bytes, once
the HDF5 filters are undone, are the C-order bytes of ``dtype``, so the chunk can be referenced
in place; otherwise the values must be inlined as h5py reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import h5py
import numpy as np
from h5py import h5t

from refindex.dtype_json import packed

__all__ = ["TypeLayout", "UnmappableType", "ValueKind", "layout_of", "packed"]


class ValueKind(Enum):
    """What a dataset's elements are, which decides how they reach Zarr."""

    FIXED = "fixed"  # fixed-size values in the chunk bytes
    VLEN_UTF8 = "vlen-utf8"  # variable-length UTF-8 strings in the global heap
    VLEN_BYTES = "vlen-bytes"  # variable-length ASCII strings in the global heap
    SEQUENCE = "sequence"  # variable-length sequences of plain values in the global heap
    REFERENCE = "reference"  # object references (addresses of other objects)
    REGION_REFERENCE = "region-reference"  # dataset region references
    # Variable-length data nested in records, sequences or arrays (a compound with a vlen
    # string member, a sequence of records or of strings): h5py's values, as they are.
    OBJECTS = "objects"


class UnmappableType(Exception):
    """An HDF5 type no Zarr v2 dtype can carry; ``feature`` says which, ``hint`` what to do."""

    def __init__(self, feature: str, hint: str = "") -> None:
        super().__init__(feature)
        self.feature, self.hint = feature, hint


@dataclass(frozen=True)
class TypeLayout:
    """One HDF5 type's values as NumPy sees them (packed: no padding between fields)."""

    dtype: np.dtype
    exact: bool
    note: str = ""
    kind: ValueKind = ValueKind.FIXED
    element: np.dtype | None = None  # element dtype of a SEQUENCE
    enum_mapping: dict[str, int] | None = field(default=None, compare=False)


_IEEE_FLOAT = {  # size (bytes) -> (sign pos, exp pos, exp bits, mantissa pos, mantissa bits), bias
    2: ((15, 10, 5, 0, 10), 15),
    4: ((31, 23, 8, 0, 23), 127),
    8: ((63, 52, 11, 0, 52), 1023),
}
_CLASS_NAMES = {h5t.TIME: "H5T_TIME"}


def layout_of(tid: h5t.TypeID) -> TypeLayout:
    """The layout of HDF5 type ``tid``; raises :class:`UnmappableType` if Zarr cannot hold it."""
    cls = tid.get_class()
    mapper = _MAPPERS.get(cls)
    if mapper is None:
        name = _CLASS_NAMES.get(cls, f"HDF5 type class {cls}")
        raise UnmappableType(f"{name} has no Zarr equivalent")
    return mapper(tid)


def _order(tid: h5t.TypeAtomicID) -> str:
    return ">" if tid.get_order() == h5t.ORDER_BE else "<"


def _full_width(tid: h5t.TypeAtomicID) -> tuple[bool, str]:
    """Whether every bit of the value is significant; HDF5 masks or extends the others on read."""
    size, precision, offset = tid.get_size(), tid.get_precision(), tid.get_offset()
    if precision == 8 * size and offset == 0:
        return True, ""
    return False, f"{precision}-bit value at bit offset {offset} in {size} bytes"


def _integer(tid: h5t.TypeIntegerID) -> TypeLayout:
    size = tid.get_size()
    if size not in (1, 2, 4, 8):
        raise UnmappableType(f"{size}-byte integer has no NumPy equivalent")
    # h5py reads bitfields as unsigned integers of the same size.
    signed = tid.get_class() == h5t.INTEGER and tid.get_sign() == h5t.SGN_2
    dtype = np.dtype(f"{_order(tid)}{'i' if signed else 'u'}{size}")
    if tid.get_class() == h5t.BITFIELD:
        # Bit fields are raw bits: HDF5 copies them unchanged (h5py has no precision for them).
        return TypeLayout(dtype, True)
    exact, note = _full_width(tid)
    return TypeLayout(dtype, exact, note)


def _float(tid: h5t.TypeFloatID) -> TypeLayout:
    size = tid.get_size()
    if size not in _IEEE_FLOAT:
        return _long_double(tid)
    dtype = np.dtype(f"{_order(tid)}f{size}")
    exact, note = _full_width(tid)
    if (tid.get_fields(), tid.get_ebias()) != _IEEE_FLOAT[size]:
        # A non-IEEE float (bfloat16, VAX, ...) that HDF5 converts on read.
        exact, note = False, f"non-IEEE {size}-byte float layout {tid.get_fields()}"
    return TypeLayout(dtype, exact, note)


def _long_double(tid: h5t.TypeFloatID) -> TypeLayout:
    """A float wider than 8 bytes: the platform's long double (x87 80-bit in 16 bytes on
    x86-64 Linux, NumPy ``<f16``) is referenced as stored when the file's type is exactly it,
    padding bytes included (HDF5 then copies them unchanged); another layout is inlined as
    h5py converts it, and one h5py cannot read is refused."""
    size = tid.get_size()
    try:
        dtype = tid.dtype
    except (TypeError, ValueError) as e:
        raise UnmappableType(
            f"{size}-byte float {tid.get_fields()} that h5py cannot read ({e})",
            "convert it to float64 before scanning",
        ) from None
    if tid.equal(h5t.NATIVE_LDOUBLE):
        return TypeLayout(np.dtype(np.longdouble), True)
    return TypeLayout(dtype, False, f"{size}-byte float {tid.get_fields()} is not this "
                      "platform's long double; stored as h5py converts it")


def _complex(tid: h5t.TypeComplexID) -> TypeLayout:
    base = layout_of(tid.get_super())
    if base.dtype.kind != "f" or base.dtype.itemsize == 2:
        raise UnmappableType(f"complex of {base.dtype} has no NumPy or Zarr equivalent")
    dtype = np.dtype(f"{base.dtype.byteorder}c{2 * base.dtype.itemsize}")
    return TypeLayout(dtype, base.exact, base.note)


def _string(tid: h5t.TypeStringID) -> TypeLayout:
    if tid.is_variable_str():
        utf8 = tid.get_cset() == h5t.CSET_UTF8
        kind = ValueKind.VLEN_UTF8 if utf8 else ValueKind.VLEN_BYTES
        return TypeLayout(np.dtype(object), False, "variable-length strings live in the heap", kind)
    size, pad = tid.get_size(), tid.get_strpad()
    dtype = np.dtype(f"S{size}")
    if pad == h5t.STR_SPACEPAD:
        return TypeLayout(dtype, False, "space-padded strings: HDF5 strips the spaces on read")
    if pad == h5t.STR_NULLTERM and size > 1:
        # HDF5 drops whatever follows the first NUL when reading; the stored bytes may differ.
        return TypeLayout(dtype, False, "NUL-terminated strings: HDF5 drops bytes after the NUL")
    return TypeLayout(dtype, True)


def _opaque(tid: h5t.TypeOpaqueID) -> TypeLayout:
    # h5py stores NumPy types HDF5 lacks (datetime64, timedelta64) as opaque data tagged
    # "NUMPY:<dtype>" and reads them back as that dtype; the bytes are NumPy's own.
    tag = tid.get_tag()
    if tag.startswith(b"NUMPY:"):
        return TypeLayout(np.dtype(tag[len(b"NUMPY:") :].decode()), True)
    return TypeLayout(np.dtype(f"V{tid.get_size()}"), True)


def _enum(tid: h5t.TypeEnumID) -> TypeLayout:
    base = layout_of(tid.get_super())
    mapping = {}
    for i in range(tid.get_nmembers()):
        mapping[tid.get_member_name(i).decode()] = int(tid.get_member_value(i))
    # h5py writes numpy bool as an int8 enum {FALSE: 0, TRUE: 1} and reads that back as bool.
    if mapping == {"FALSE": 0, "TRUE": 1} and base.dtype.itemsize == 1:
        return TypeLayout(np.dtype("|b1"), base.exact, base.note)
    return TypeLayout(base.dtype, base.exact, base.note, enum_mapping=mapping)


def _compound(tid: h5t.TypeCompoundID) -> TypeLayout:
    names = [tid.get_member_name(i).decode() for i in range(tid.get_nmembers())]
    offsets = [tid.get_member_offset(i) for i in range(len(names))]
    members = [layout_of(tid.get_member_type(i)) for i in range(len(names))]
    if any(member.kind is not ValueKind.FIXED for member in members):
        _refuse_references(names, members, "compound member")
        return _objects(tid, "compound with variable-length members")
    if _is_h5py_complex(tid):
        base = members[0]
        dtype = np.dtype(f"{base.dtype.byteorder}c{2 * base.dtype.itemsize}")
        packed_ri = offsets == [0, base.dtype.itemsize] and tid.get_size() == dtype.itemsize
        note = base.note if packed_ri else "complex parts are not packed as real, imag"
        return TypeLayout(dtype, packed_ri and base.exact, note)
    dtype = np.dtype([(n, m.dtype) for n, m in zip(names, members, strict=True)])
    notes = [f"{n}: {m.note}" for n, m in zip(names, members, strict=True) if not m.exact]
    position = 0
    for name, member, offset in zip(names, members, offsets, strict=True):
        if offset != position:
            notes.append(f"member {name!r} at byte {offset}, not {position} (padding or reorder)")
            break
        position += member.dtype.itemsize
    if tid.get_size() != dtype.itemsize and not notes:
        notes.append(f"{tid.get_size() - dtype.itemsize} bytes of padding at the end")
    return TypeLayout(dtype, not notes, "; ".join(notes))


def _is_h5py_complex(tid: h5t.TypeCompoundID) -> bool:
    """True when h5py reads this compound as complex numbers (its r/i naming convention)."""
    try:
        return tid.dtype.kind == "c"
    except (TypeError, ValueError):  # members h5py cannot read; not its complex convention
        return False


def _array(tid: h5t.TypeArrayID) -> TypeLayout:
    base = layout_of(tid.get_super())
    if base.kind is not ValueKind.FIXED:
        _refuse_references(["element"], [base], "array")
        return _objects(tid, "array of variable-length elements")
    dtype = np.dtype((base.dtype, tuple(tid.get_array_dims())))
    return TypeLayout(dtype, base.exact, base.note, enum_mapping=base.enum_mapping)


def _sequence(tid: h5t.TypeVlenID) -> TypeLayout:
    base = layout_of(tid.get_super())
    if (base.kind is not ValueKind.FIXED or base.dtype.fields or base.dtype.subdtype
            or base.dtype.kind not in "biufcSV"):
        # numcodecs vlen-array holds sequences of plain values (numbers, fixed strings) only.
        _refuse_references(["element"], [base], "variable-length sequence")
        return _objects(tid, f"variable-length sequence of {base.dtype}")
    # h5py hands out sequence elements in native byte order, whatever the file's order.
    element = base.dtype.newbyteorder("=")
    note = "variable-length sequences live in the heap"
    return TypeLayout(np.dtype(object), False, note, ValueKind.SEQUENCE, element=element)


def _objects(tid: h5t.TypeID, what: str) -> TypeLayout:
    """Variable-length data nested in another type: inlined as h5py reads it (its dtype,
    record padding removed), through the ``refindex.objects`` codec."""
    try:
        dtype = tid.dtype
    except (TypeError, ValueError) as e:
        raise UnmappableType(f"{what} that h5py cannot read ({e})") from None
    return TypeLayout(packed(dtype), False, f"{what}: values live in the heap",
                      ValueKind.OBJECTS)


def _refuse_references(names: list[str], members: list[TypeLayout], where: str) -> None:
    """References nested in other types: h5py hands out Reference objects no Zarr codec
    stores (top-level references become paths instead)."""
    for name, member in zip(names, members, strict=True):
        if member.kind in (ValueKind.REFERENCE, ValueKind.REGION_REFERENCE):
            raise UnmappableType(f"{where} {name!r} is a {member.kind.value}; references "
                                 "are stored only as a dataset's own type")


def _reference(tid: h5t.TypeReferenceID) -> TypeLayout:
    kind = h5py.check_ref_dtype(tid.dtype)
    if kind is h5py.RegionReference:
        note = "region references become the referenced dataset's path; the region is dropped"
        return TypeLayout(np.dtype(object), False, note, ValueKind.REGION_REFERENCE)
    if kind is h5py.Reference:
        note = "object references become the referenced object's path"
        return TypeLayout(np.dtype(object), False, note, ValueKind.REFERENCE)
    raise UnmappableType(f"{tid.get_size()}-byte reference type h5py cannot read")


_MAPPERS = {
    h5t.INTEGER: _integer,
    h5t.BITFIELD: _integer,
    h5t.FLOAT: _float,
    h5t.STRING: _string,
    h5t.OPAQUE: _opaque,
    h5t.COMPOUND: _compound,
    h5t.REFERENCE: _reference,
    h5t.ENUM: _enum,
    h5t.VLEN: _sequence,
    h5t.ARRAY: _array,
}
if hasattr(h5t, "COMPLEX"):  # HDF5 >= 2.0 has a native complex class
    _MAPPERS[h5t.COMPLEX] = _complex
