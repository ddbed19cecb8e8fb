"""Records (HDF5 compound types) with fields in foreign byte order, in native order for xarray.

xarray decodes every non-native array to native byte order by casting it to
``kind + itemsize`` (``coding.variables.NativeEndiannessArray``): for a record that is
``V<itemsize>``, a cast NumPy refuses ("Cannot cast array data from dtype([...]) to
dtype('V34')"; h5netcdf fails alike). Here such records are given to xarray already in
native order, field by field, with the same field names, shapes and values.
"""

from __future__ import annotations

import numpy as np
from xarray.coding.variables import unpack_for_decoding
from xarray.core import indexing
from xarray.core.variable import Variable

__all__ = ["native_records"]


def native_records(variable: Variable) -> Variable:
    """``variable`` itself, or, when it holds records with fields in foreign byte order, the
    same variable read as records of the native-order dtype (lazily)."""
    dtype = variable.dtype
    if dtype.fields is None or dtype.isnative:
        return variable
    dims, data, attrs, encoding = unpack_for_decoding(variable)
    return Variable(dims, _NativeRecords(data, dtype.newbyteorder("=")), attrs, encoding,
                    fastpath=True)


class _NativeRecords(indexing.ExplicitlyIndexedNDArrayMixin):
    """A lazy array of records cast to ``dtype`` (the same fields in native byte order)
    when read."""

    __slots__ = ("array", "_dtype")

    def __init__(self, array, dtype: np.dtype) -> None:
        self.array = indexing.as_indexable(array)
        self._dtype = dtype

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def _oindex_get(self, key):
        return type(self)(self.array.oindex[key], self._dtype)

    def _vindex_get(self, key):
        return type(self)(self.array.vindex[key], self._dtype)

    def __getitem__(self, key):
        return type(self)(self.array[key], self._dtype)

    def get_duck_array(self):
        return np.asarray(self.array.get_duck_array()).astype(self._dtype)
