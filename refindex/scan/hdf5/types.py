"""HDF5 dataset types → Zarr v2 dtype, fill value and object codec, and inlined values.

What an h5py user reads (``dset[...]``) and what zarr reads from a :class:`TypePlan` are equal
bit for bit, except that references become the referenced object's path and variable-length
UTF-8 strings become ``str`` (as ``dset.asstr()[...]`` gives).

===========================  =================================  =============================
HDF5 type                    Zarr v2 dtype (object codec)       referenced in place?
===========================  =================================  =============================
integer, bitfield            ``<i4``, ``>u2``, ...              yes, unless bits are padding
IEEE float 2/4/8 bytes       ``<f2``, ``>f4``, ``<f8``          yes
long double (x86-64: 16 B)   ``<f16`` (NumPy longdouble)        yes if the platform's own
                                                                layout; else inlined
h5py bool (int8 enum)        ``|b1``                            yes
enum                         its base integer; mapping in plan  yes
complex (r/i compound or     ``<c8``, ``>c16``                  yes, when r and i are packed
HDF5 2.0 native complex)
fixed string ASCII/UTF-8     ``|S{n}``                          NUL-padded yes; NUL-terminated
                                                                (n > 1) or space-padded no
compound (nested, arrays)    field list, e.g. ``[["a","<i4"],   yes when packed; else inlined
                             ["b","<f8",[2]]]``                 without the padding
array (top level)            its base; ``inner_shape`` dims     yes
opaque                       ``|V{n}``; h5py's ``NUMPY:`` tag   yes
                             → ``<M8[s]`` etc.
vlen string UTF-8 / ASCII    ``|O`` (vlen-utf8 / vlen-bytes)    no, inlined
vlen sequence of numbers,    ``|O`` (vlen-array)                no, inlined
fixed strings or opaque
vlen data nested: compound   field list with ``|O`` fields, or  no, inlined as h5py reads it
with vlen members, sequence  ``|O``, with ``refindex.objects``  (``bytes``, ``str``, arrays)
of records/strings/sequences
object / region reference    ``|O`` (vlen-utf8): target path    no, inlined
===========================  =================================  =============================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np
from h5py import h5d

from refindex.dtype_json import dtype_from_v2_json, dtype_to_v2_json
from refindex.errors import UnsupportedFeatureError
from refindex.scan.hdf5.type_layout import (
    TypeLayout,
    UnmappableType,
    ValueKind,
    layout_of,
    packed,
)
from refindex.scan.json_values import fill_to_json

__all__ = ["TypePlan", "encode_inline", "plan_type", "plan_numpy_dtype"]

_OBJECT_CODECS = {
    ValueKind.VLEN_UTF8: {"id": "vlen-utf8"},
    ValueKind.VLEN_BYTES: {"id": "vlen-bytes"},
    ValueKind.REFERENCE: {"id": "vlen-utf8"},
    ValueKind.REGION_REFERENCE: {"id": "vlen-utf8"},
}


@dataclass(frozen=True)
class TypePlan:
    """How one HDF5 dataset's values become a Zarr v2 array.

    ``zarr_dtype`` and ``fill_value`` are the ``.zarray`` JSON values. ``fill_value`` is None
    when HDF5's fill is all zero bytes (its default), so readers don't take 0 for missing;
    datetimes excepted, whose zero fill is an explicit 0 because zarr reads null as NaT.
    ``object_codec`` is the numcodecs config to put first in ``filters`` for ``|O`` dtypes.
    ``referencable`` is True when a chunk's bytes, once the HDF5 filters are undone, are
    exactly the C-order bytes of ``zarr_dtype``; otherwise ``note`` says why and the values
    must be inlined through :func:`encode_inline`. ``inner_shape`` are trailing dimensions the
    Zarr array has beyond the dataset's (an HDF5 array element type): append them to the
    shape and the chunk shape. ``enum_mapping`` is an enum's member names → values.
    ``kind`` says what the elements are, which decides how :func:`encode_inline` converts them.
    """

    zarr_dtype: str | list
    fill_value: object
    object_codec: dict | None
    referencable: bool
    note: str = ""
    inner_shape: tuple[int, ...] = ()
    enum_mapping: dict[str, int] | None = None
    kind: ValueKind = ValueKind.FIXED
    # The open file that references are resolved against; set only for reference types.
    file: h5py.File | None = field(default=None, compare=False, repr=False)


def plan_type(dset: h5py.Dataset) -> TypePlan:
    """The :class:`TypePlan` for ``dset``; raises UnsupportedFeatureError if Zarr can't hold it."""
    try:
        layout = layout_of(dset.id.get_type())
    except UnmappableType as e:
        raise UnsupportedFeatureError(dset.file.filename, dset.name, e.feature, e.hint) from e
    if layout.kind is ValueKind.FIXED:
        return _plan_fixed(dset, layout)
    if layout.kind is ValueKind.OBJECTS:
        return _plan_objects(layout)
    if layout.kind is ValueKind.SEQUENCE:
        codec = {"id": "vlen-array", "dtype": layout.element.str}
    else:
        codec = _OBJECT_CODECS[layout.kind]
    is_reference = layout.kind in (ValueKind.REFERENCE, ValueKind.REGION_REFERENCE)
    return TypePlan(
        zarr_dtype="|O",
        # Inlined arrays have every chunk, so no element is ever filled.
        fill_value=None,
        object_codec=dict(codec),
        referencable=False,
        note=layout.note,
        kind=layout.kind,
        file=dset.file if is_reference else None,
    )


def _plan_objects(layout: TypeLayout) -> TypePlan:
    dtype, inner_shape = layout.dtype, ()
    if dtype.subdtype is not None:  # an HDF5 array of variable-length elements
        dtype, inner_shape = dtype.subdtype
    return TypePlan(
        zarr_dtype=dtype_to_v2_json(dtype),
        fill_value=None,  # inlined: every element is there
        object_codec={"id": "refindex.objects"},
        referencable=False,
        note=layout.note,
        inner_shape=tuple(inner_shape),
        kind=ValueKind.OBJECTS,
    )


def _plan_fixed(dset: h5py.Dataset, layout: TypeLayout) -> TypePlan:
    dtype, exact, note = layout.dtype, layout.exact, layout.note
    h5py_dtype = packed(dset.dtype)
    if h5py_dtype != dtype:
        # Our reading of the HDF5 type and h5py's disagree: trust what users see through h5py
        # and inline its values rather than reference bytes of a different meaning.
        dtype, exact = h5py_dtype, False
        note = f"h5py reads {dset.dtype} but the file stores {layout.dtype}"
    inner_shape: tuple[int, ...] = ()
    if dtype.subdtype is not None:
        dtype, inner_shape = dtype.subdtype
    fill, fill_note = _fill_value(dset, dtype, inner_shape)
    if fill_note:
        exact, note = False, "; ".join(filter(None, [note, fill_note]))
    return TypePlan(
        zarr_dtype=dtype_to_v2_json(dtype),
        fill_value=fill,
        object_codec=None,
        referencable=exact,
        note="" if exact else note,
        inner_shape=tuple(inner_shape),
        enum_mapping=layout.enum_mapping,
    )


def _fill_value(
    dset: h5py.Dataset, dtype: np.dtype, inner_shape: tuple[int, ...]
) -> tuple[object, str]:
    """The ``.zarray`` fill value, and why it cannot be used (empty if it can)."""
    if dset.id.get_create_plist().fill_value_defined() != h5d.FILL_VALUE_USER_DEFINED:
        return _zero_fill(dtype), ""  # the library default: all zero bytes
    try:
        fill = np.asarray(dset.fillvalue, dtype=dset.dtype)
    except (TypeError, ValueError, OSError):
        return None, "h5py cannot read the fill value, so absent chunks can't be filled"
    # Padded records: same fields, packed; array elements: one fill per base element.
    fill = fill.astype(np.dtype((dtype, inner_shape)) if inner_shape else dtype)
    if not fill.tobytes().strip(b"\0"):
        return _zero_fill(dtype), ""
    if dtype.kind == "f" and dtype.itemsize > 8 and fill.astype("f8") != fill:
        # A long double fill no float64 (hence no JSON number) holds exactly; NaN too, whose
        # payload JSON loses.
        return None, "long double fill value has no exact JSON number, so absent chunks can't fill"
    if inner_shape:
        flat = fill.reshape(-1)
        if any(item.tobytes() != flat[0].tobytes() for item in flat):
            return None, "fill value differs across the array element; absent chunks can't fill"
        fill = flat[0:1].reshape(())
    return fill_to_json(fill), ""


def _zero_fill(dtype: np.dtype) -> object:
    """The fill value for all-zero bytes: null, which zarr reads as zero, except for datetimes,
    where zarr 3 takes null as NaT; those get an explicit 0."""
    return 0 if dtype.kind in "mM" else None


def plan_numpy_dtype(plan: TypePlan) -> np.dtype:
    """The NumPy dtype of one Zarr element of ``plan`` (object for ``|O``)."""
    return dtype_from_v2_json(plan.zarr_dtype)


def encode_inline(dset_values: np.ndarray, plan: TypePlan) -> np.ndarray:
    """Values as h5py reads them (``dset[()]``) → the array the Zarr dtype and codec expect.

    Variable-length UTF-8 strings become ``str``, ASCII ones stay ``bytes``, sequences become
    arrays of their element dtype, references become the referenced object's path (``""`` for
    a null or anonymous target), and fixed-size values are cast to the packed ``zarr_dtype``
    (dropping record padding). The shape is the dataset's plus ``plan.inner_shape``.
    """
    values = np.asarray(dset_values)
    if plan.kind is ValueKind.OBJECTS:
        return _nested_objects(dset_values, plan)
    if plan.kind is ValueKind.FIXED:
        dtype = plan_numpy_dtype(plan)
        if plan.inner_shape:
            dtype = np.dtype((dtype, plan.inner_shape))
        # Structured casts go field by field, which is what drops record padding.
        # (np.ascontiguousarray would turn a scalar into shape (1,).)
        return values.astype(dtype, order="C")
    if values.dtype != object:
        # A scalar dataset: h5py returns the one value itself (bytes, an array, a reference).
        values = np.empty((), dtype=object)
        values[()] = dset_values
    out = np.empty(values.shape, dtype=object)
    flat_in, flat_out = values.reshape(-1), out.reshape(-1)
    convert = _converter(plan)
    for i, item in enumerate(flat_in):
        flat_out[i] = convert(item)
    return out


def _nested_objects(dset_values, plan: TypePlan) -> np.ndarray:
    """h5py's values of an OBJECTS plan as they are, records packed; a scalar dataset's one
    value (h5py returns it bare) as a 0-d array."""
    dtype = plan_numpy_dtype(plan)
    if dtype.fields is not None:
        return np.asarray(dset_values).astype(dtype)
    values = np.asarray(dset_values) if isinstance(dset_values, np.ndarray) else None
    if values is None or values.dtype != object:
        values = np.empty((), dtype=object)
        values[()] = dset_values
    return values


def _converter(plan: TypePlan):
    if plan.kind is ValueKind.VLEN_UTF8:
        return lambda item: item.decode("utf-8") if isinstance(item, bytes) else str(item)
    if plan.kind is ValueKind.VLEN_BYTES:
        return lambda item: item.encode("utf-8") if isinstance(item, str) else bytes(item)
    if plan.kind is ValueKind.SEQUENCE:
        element = np.dtype(plan.object_codec["dtype"])
        return lambda item: np.asarray(item, dtype=element).reshape(-1)
    if plan.file is None:
        raise ValueError("a reference TypePlan needs the file it was planned from")
    return lambda item: reference_path(plan.file, item)


def reference_path(file: h5py.File, ref: h5py.Reference) -> str:
    """The path of the object ``ref`` points to in ``file``; ``""`` for a null reference or a
    target without a path (anonymous or deleted). For a region reference, the dataset's path."""
    if not ref:
        return ""
    try:
        name = h5py.h5r.get_name(ref, file.id)
    except (ValueError, KeyError, OSError):
        return ""
    return name.decode() if name else ""
