"""The xarray backend: ``xr.open_dataset("x.refs.json", engine="refindex")``."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numcodecs
import numpy as np
from xarray.backends import BackendEntrypoint
from xarray.backends.store import StoreBackendEntrypoint
from xarray.backends.zarr import ZarrStore
from xarray.core import indexing
from xarray.core.variable import Variable

from refindex.index import ArrayNode, Index
from refindex.store import ReferenceStore, open_store
from refindex.xarray.attributes import typed_attrs
from refindex.xarray.dimensions import with_dimensions
from refindex.xarray.guess import looks_like_sidecar, written_by_refindex
from refindex.xarray.irregular import IrregularArray, preferred_chunks
from refindex.xarray.records import native_records
from refindex.xarray.regular import read_by_region
from refindex.xarray.tuned import tuned

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
        named = with_dimensions(store.index)
        if named is not store.index:  # a view for xarray; the caller's index stays as it is
            store = ReferenceStore(named, store.options, store.name)
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
        return looks_like_sidecar(filename_or_obj)


class RefindexSidecarEntrypoint(RefindexBackendEntrypoint):
    """The same backend, registered as ``"_refindex"`` so that xarray asks it before
    kerchunk's engine: it claims the sidecars refindex wrote (refindex.xarray.guess)."""

    description = ("Open refindex sidecars when xr.open_dataset is given no engine "
                   "(engine='refindex' opens kerchunk sidecars too)")

    def guess_can_open(self, filename_or_obj) -> bool:
        return written_by_refindex(filename_or_obj)


class _ReferenceZarrStore(ZarrStore):
    """xarray's Zarr store, reading arrays with irregular chunks along their own chunks,
    records (compound types) in native byte order, attributes with their recorded dtypes, and
    closing the refindex store the backend made when the dataset is closed."""

    owned_store: ReferenceStore | None = None

    def close(self) -> None:
        super().close()
        if self.owned_store is not None:
            self.owned_store.close()

    def open_store_variable(self, name):
        variable = super().open_store_variable(name)
        node = self._node(name)
        if node is not None and node.irregular:
            variable = _along_stored_chunks(variable, node, self.zarr_group.store)
        elif node is not None:
            variable = read_by_region(variable, node, self.members[name], self.zarr_group.store)
        else:
            variable = tuned(variable, self.members[name], self.zarr_group.store.zarr_concurrency)
        if node is not None:
            variable.attrs = typed_attrs(variable.attrs, node.attr_dtypes)
            variable.encoding.update(_stored_codecs(node.zarray))
        return native_records(variable)

    def get_attrs(self):
        dtypes = self.zarr_group.store.index.group_attr_dtypes.get(self._group_path, {})
        return typed_attrs(super().get_attrs(), dtypes)

    @property
    def _group_path(self) -> str:
        return self.zarr_group.path.strip("/")

    def _node(self, name: str) -> ArrayNode | None:
        path = f"{self._group_path}/{name}".strip("/")
        return self.zarr_group.store.index.arrays.get(path)


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
        return variable


def _stored_codecs(zarray: dict) -> dict:
    """The encoding's codecs as the sidecar names them: the store serves each step wrapped
    in a guard (``refindex.guarded``) and gzip as ``refindex.zlib``, which ``to_zarr`` would
    otherwise copy into new stores that then need refindex, and with this array's chunk
    size, to be read."""
    compressor, filters = zarray.get("compressor"), list(zarray.get("filters") or ())
    if zarray.get("dtype") == "|O" and filters:
        filters = filters[1:]  # the object codec, which zarr picks from the dtype itself
    return {"compressors": (numcodecs.get_codec(compressor),) if compressor else (),
            "filters": tuple(numcodecs.get_codec(f) for f in filters)}


def _along_stored_chunks(variable: Variable, node, store: ReferenceStore) -> Variable:
    """``variable`` read along its array's own irregular chunks instead of zarr's re-tiled
    view (one Dask chunk per stored chunk with ``chunks={}``)."""
    data = indexing.LazilyIndexedArray(IrregularArray(store, node.path, variable.dtype))
    chunks = preferred_chunks(node, variable.dims)
    encoding = {**variable.encoding, "preferred_chunks": chunks,
                "chunks": tuple(node.zarray["chunks"])}
    return Variable(variable.dims, data, variable.attrs, encoding)


def _fill_value(stored, dtype: np.dtype):
    if isinstance(stored, list) and len(stored) == 1:
        stored = stored[0]
    if isinstance(stored, str) and stored in _JSON_FLOATS:
        stored = _JSON_FLOATS[stored]
    try:
        return np.asarray(stored, dtype=dtype)[()]
    except (TypeError, ValueError):
        return stored
