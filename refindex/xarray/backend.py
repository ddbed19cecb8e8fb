"""The xarray backend: ``xr.open_dataset("x.refs.json", engine="refindex")``."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from xarray.backends import BackendEntrypoint
from xarray.backends.store import StoreBackendEntrypoint
from xarray.backends.zarr import ZarrStore
from xarray.core import indexing
from xarray.core.variable import Variable

from refindex.index import Index
from refindex.store import ReferenceStore, open_store
from refindex.xarray.irregular import IrregularArray, preferred_chunks
from refindex.xarray.tuned import tuned

_SNIFF_BYTES = 65536
_SIDECAR_MARKERS = (b'"refindex_sidecar"', b'"refs"', b'".zgroup"', b'/.zarray"', b'".zarray"')
_DIRECTORY_INDEXES = ("index.json", ".zmetadata")
_JSON_FLOATS = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


class RefindexBackendEntrypoint(BackendEntrypoint):
    """Open a refindex / kerchunk sidecar as an xarray Dataset, reading through refindex."""

    description = "Open HDF5/NetCDF4 (and more) through a refindex or kerchunk reference sidecar"
    url = "https://github.com/refindex/refindex"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "group", "mask_and_scale",
                               "decode_times", "concat_characters", "decode_coords",
                               "use_cftime", "decode_timedelta", "storage_options")

    def open_dataset(
        self,
        filename_or_obj: str | os.PathLike | dict | Index | ReferenceStore,
        *,
        drop_variables: str | Iterable[str] | None = None,
        group: str | None = None,
        mask_and_scale: bool = True,
        decode_times: bool = True,
        concat_characters: bool = True,
        decode_coords: bool = True,
        use_cftime: bool | None = None,
        decode_timedelta: bool | None = None,
        storage_options: dict | None = None,
    ):
        store = open_store(filename_or_obj, **(storage_options or {}))
        # kerchunk moves a _FillValue attribute into the Zarr fill_value and drops it: its
        # sidecars mean the fill value as the missing-value marker, as plain Zarr readers do.
        made_here = store.index.generator.get("name") == "refindex"
        zarr_class = _CfZarrStore if made_here else _ReferenceZarrStore
        zarr_store = zarr_class.open_group(store, group=group, mode="r", consolidated=True,
                                           zarr_format=2, use_zarr_fill_value_as_mask=True)
        if store is not filename_or_obj:  # made here: closed with the dataset
            zarr_store.owned_store = store
        return StoreBackendEntrypoint().open_dataset(
            zarr_store,
            mask_and_scale=mask_and_scale,
            decode_times=decode_times,
            concat_characters=concat_characters,
            decode_coords=decode_coords,
            drop_variables=drop_variables,
            use_cftime=use_cftime,
            decode_timedelta=decode_timedelta,
        )

    def guess_can_open(self, filename_or_obj) -> bool:
        if isinstance(filename_or_obj, Index | ReferenceStore):
            return True
        if not isinstance(filename_or_obj, str | os.PathLike):
            return False
        text = os.fspath(filename_or_obj)
        if "://" in text and not text.startswith("file://"):
            return text.endswith(".refs.json")
        return _looks_like_sidecar(text.removeprefix("file://"))


def _looks_like_sidecar(path: str) -> bool:
    if os.path.isdir(path):  # a directory sidecar: native, or kerchunk parquet references
        return any(os.path.isfile(os.path.join(path, name)) for name in _DIRECTORY_INDEXES)
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and any(m in head for m in _SIDECAR_MARKERS)


class _ReferenceZarrStore(ZarrStore):
    """xarray's Zarr store, reading arrays with irregular chunks along their own chunks, and
    closing the refindex store the backend made when the dataset is closed."""

    owned_store: ReferenceStore | None = None

    def close(self) -> None:
        super().close()
        if self.owned_store is not None:
            self.owned_store.close()

    def open_store_variable(self, name):
        variable = super().open_store_variable(name)
        path = f"{self.zarr_group.path}/{name}".strip("/")
        node = self.zarr_group.store.index.arrays.get(path)
        if node is not None and node.irregular:
            variable = _along_stored_chunks(variable, node, self.zarr_group.store)
        else:
            variable = tuned(variable, self.members[name], self.zarr_group.store.zarr_concurrency)
        return variable


class _CfZarrStore(_ReferenceZarrStore):
    """xarray's Zarr store with NetCDF semantics for ``_FillValue``.

    For Zarr v2, xarray treats the array's ``fill_value`` as ``_FillValue``. An HDF5 fill
    value is not a missing-value marker, though: only a ``_FillValue`` attribute is (as netCDF4
    and h5netcdf read it). So the attribute decides, as stored.
    """

    def open_store_variable(self, name):
        variable = super().open_store_variable(name)
        stored = self.zarr_group[name].attrs.get("_FillValue")
        if stored is None:
            variable.attrs.pop("_FillValue", None)
        else:
            variable.attrs["_FillValue"] = _fill_value(stored, variable.dtype)
        # Numeric attributes get back the type JSON lost, so CF decoding picks the dtypes
        # netCDF4 would (a float32 scale_factor unpacks int16 data to float32).
        path = f"{self.zarr_group.path}/{name}".strip("/")
        node = self.zarr_group.store.index.arrays.get(path)
        for attr, dtype in (node.attr_dtypes.items() if node else ()):
            if attr in variable.attrs and attr != "_FillValue":
                variable.attrs[attr] = _typed(variable.attrs[attr], dtype)
        return variable


def _along_stored_chunks(variable: Variable, node, store: ReferenceStore) -> Variable:
    """``variable`` read along its array's own irregular chunks instead of zarr's re-tiled
    view (one Dask chunk per stored chunk with ``chunks={}``)."""
    data = indexing.LazilyIndexedArray(IrregularArray(store, node.path, variable.dtype))
    chunks = preferred_chunks(node, variable.dims)
    encoding = {**variable.encoding, "preferred_chunks": chunks,
                "chunks": tuple(node.zarray["chunks"])}
    return Variable(variable.dims, data, variable.attrs, encoding)


def _typed(value, dtype: str):
    try:
        return np.asarray(value, dtype=dtype)[()]
    except (TypeError, ValueError):
        return value


def _fill_value(stored, dtype: np.dtype):
    if isinstance(stored, list) and len(stored) == 1:
        stored = stored[0]
    if isinstance(stored, str) and stored in _JSON_FLOATS:
        stored = _JSON_FLOATS[stored]
    try:
        return np.asarray(stored, dtype=dtype)[()]
    except (TypeError, ValueError):
        return stored
