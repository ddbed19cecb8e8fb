"""Walk an HDF5 / NetCDF4 file with h5py and build its Index: groups, arrays with Zarr v2
metadata, and a chunk table per array. Only metadata is read, except for what must be inlined
(compact datasets, variable-length values, chunks HDF5 stored with a different filter mask)."""

from __future__ import annotations

import math
from collections.abc import Callable

import h5py
import numcodecs
import numpy as np

from refindex.codecs import UnsupportedCodecError, codecs_for, filters_of
from refindex.errors import (
    ContainerError,
    RefindexError,
    SourceNotFoundError,
    UnsupportedFeatureError,
)
from refindex.index import ArrayNode, ChunkTable, Index
from refindex.scan.hdf5.attrs import encode_attrs_and_dtypes
from refindex.scan.hdf5.dims import DimensionNamer, is_dimension_only, variable_name
from refindex.scan.hdf5.layout import (
    Layout,
    LayoutError,
    chunked_layout,
    contiguous_layout,
    external_layout,
    layout_kind,
    masks_by_use,
)
from refindex.scan.hdf5.types import TypePlan, encode_inline, plan_numpy_dtype, plan_type
from refindex.scan.left_out import leave_out
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Progress


class Hdf5Scanner:
    """Builds the Index of one open HDF5 file.

    ``source_id`` is the id of the file's own source in ``index``; ``resolve_source(path)``
    gives a source id for another file (external links, external raw storage) and
    ``resolve_source.locate(path)`` where that file is.
    """

    def __init__(
        self,
        file: h5py.File,
        index: Index,
        source_id: int,
        name: str,
        options: ScanOptions,
        resolve_source: Callable[[str], int],
        progress: Progress | None = None,
        remote: bool = False,
    ) -> None:
        self.file, self.index, self.source_id, self.name = file, index, source_id, name
        self.remote = remote
        self.options, self.resolve_source, self.progress = options, resolve_source, progress
        self.dims = DimensionNamer()
        self.skipped: list[str] = []
        self.where = "/"  # the object being scanned, for errors h5py raises about it

    def scan(self) -> Index:
        self._group_attrs(self.file, "")
        self._group(self.file, "", ancestors=frozenset({_identity(self.file)}))
        self.dims.finish(self.index.arrays)
        return self.index

    def _group(self, group: h5py.Group, path: str, ancestors: frozenset) -> None:
        for name in group:
            _check_name(name, path, self.name)
            self.where = f"/{path}/{name}" if path else f"/{name}"
            child_path = f"{path}/{variable_name(name)}" if path else variable_name(name)
            obj = self._resolve_link(group, name, child_path)
            if obj is None:
                continue
            if isinstance(obj, h5py.Group):
                if _identity(obj) in ancestors:
                    self.skipped.append(f"{child_path}: link back to an enclosing group")
                    continue
                self._group_attrs(obj, child_path)
                self._group(obj, child_path, ancestors | {_identity(obj)})
            elif isinstance(obj, h5py.Dataset):
                self._dataset(obj, child_path, path)

    def _group_attrs(self, group: h5py.Group, path: str) -> None:
        self.index.groups[path], dtypes = encode_attrs_and_dtypes(group)
        if dtypes:
            self.index.group_attr_dtypes[path] = dtypes

    def _resolve_link(self, group: h5py.Group, name: str, path: str):
        link = group.get(name, getlink=True)
        if self.remote and isinstance(link, h5py.ExternalLink):
            # HDF5 would look for the target on the local disk, not next to the remote file.
            self.skipped.append(f"{path}: external link to {link.filename}:{link.path} in a "
                                "remote file (scan the target file on its own)")
            return None
        try:
            obj = group[name]
        except (KeyError, OSError) as exc:
            if isinstance(link, h5py.HardLink):
                # A hard link always names an object in this file: failing to open it is
                # damage, not a dangling link, and leaving the object out would hide that.
                raise self._corrupt(path, exc) from None
            kind = type(link).__name__
            self.skipped.append(f"{path}: {kind} that cannot be resolved ({exc})")
            return None
        return obj if isinstance(obj, h5py.Group | h5py.Dataset) else None

    def _dataset(self, dset: h5py.Dataset, path: str, group_path: str) -> None:
        try:
            self.dims.add(dset, path, group_path)  # a dimension of the group, or an array
            if is_dimension_only(dset):
                return
            attrs, dtypes = encode_attrs_and_dtypes(dset)
            node = self._array(dset, path, attrs)
            node.attr_dtypes = dtypes
        except (OSError, RuntimeError) as exc:
            # h5py reports damaged metadata (chunk index, messages, heaps) this way.
            raise self._corrupt(path, exc) from None
        except UnsupportedFeatureError as exc:
            leave_out(self.index, path, exc, self.options)
            return
        self.index.arrays[path] = node
        if self.progress:
            self.progress(path, len(node.chunks))

    def _array(self, dset: h5py.Dataset, path: str, attrs: dict) -> ArrayNode:
        plan = plan_type(dset)
        if dset.shape is None:  # null dataspace: no elements at all
            return _node(path, (0,), (1,), plan, None, attrs, ChunkTable((0,)))
        if math.prod(dset.shape) == 0:
            chunks = tuple(max(c, 1) for c in (dset.chunks or dset.shape))
            grid = tuple(-(-s // c) for s, c in zip(dset.shape, chunks, strict=True))
            return _node(path, dset.shape, chunks, plan, None, attrs, ChunkTable(grid))
        if not plan.referencable:
            return self._inline_array(dset, path, attrs, plan, plan.note)
        kind = layout_kind(dset)
        if kind == "compact":
            return self._inline_array(dset, path, attrs, plan, None)
        if kind == "virtual":
            if self.remote:
                # HDF5 would resolve the mapped source files on the local disk.
                raise self._unsupported(path, "virtual dataset (VDS) in a remote file",
                                        "scan a local copy next to its source files")
            return self._inline_array(dset, path, attrs, plan, "virtual dataset (VDS)")
        try:
            layout = self._layout(dset, kind)
        except LayoutError as exc:
            if kind == "external":
                return self._inline_external(dset, path, attrs, plan, str(exc))
            return self._inline_array(dset, path, attrs, plan, str(exc))
        if kind != "chunked":
            return _node(path, dset.shape, layout.chunk_shape, plan, None, attrs, layout.table)
        return self._chunked_array(dset, path, attrs, plan, layout)

    def _layout(self, dset: h5py.Dataset, kind: str) -> Layout:
        if kind == "external":
            return external_layout(dset, self.resolve_source)
        # A dataset reached through an external link lives in another file.
        own_file = dset.file == self.file
        source = self.source_id if own_file else self.resolve_source(dset.file.filename)
        if kind == "chunked":
            return chunked_layout(dset, source)
        return contiguous_layout(dset, source, self.options.file_size if own_file else None)

    def _chunked_array(
        self, dset: h5py.Dataset, path: str, attrs: dict, plan: TypePlan, layout: Layout
    ) -> ArrayNode:
        filters = filters_of(dset.id.get_create_plist())
        try:
            found = self._common_codecs(dset, path, layout, filters)
        except UnsupportedCodecError as exc:
            return self._inline_array(dset, path, attrs, plan, str(exc))
        if found is None:
            return self._inline_array(
                dset, path, attrs, plan,
                "chunks stored with different HDF5 filter masks that HDF5 cannot re-encode alike",
            )
        codecs, reencoded = found
        for flat, data in reencoded.items():
            layout.table.set_inline(flat, data)
        return _node(path, dset.shape, layout.chunk_shape, plan, codecs or None, attrs,
                     layout.table)

    def _common_codecs(
        self, dset: h5py.Dataset, path: str, layout: Layout, filters
    ) -> tuple[list, dict[int, bytes]] | None:
        """The array's codecs and the chunks stored otherwise, re-encoded to them (flat
        position -> bytes); None when no filter mask in use can take all chunks.

        HDF5 skips an optional filter for a chunk it does not shrink (LZF, szip), so one array
        can hold chunks of several pipelines. The most used one is tried first; HDF5 may skip
        the filter again when re-encoding (szip), so then the others are tried."""
        for mask in masks_by_use(layout):
            codecs = codecs_for(filters, dset.dtype, layout.chunk_shape, mask)
            odd = self._odd_mask_chunks(layout, filters, dset.dtype, codecs)
            size = odd.size * math.prod(layout.chunk_shape) * dset.dtype.itemsize
            if odd.size and self._inline_too_big(size):
                raise self._unsupported(
                    path,
                    f"{odd.size} chunks stored with a different HDF5 filter mask than the rest",
                    "raise --max-inline",
                )
            try:
                return codecs, self._reencoded_chunks(dset, layout, odd, codecs)
            except UnsupportedCodecError:
                raise
            except RefindexError:
                continue  # HDF5 declined an optional filter for a re-encoded chunk
        return None

    def _odd_mask_chunks(self, layout: Layout, filters, dtype, codecs: list) -> np.ndarray:
        """Chunks whose filter mask decodes differently from the array's codecs."""
        present = layout.table.present()
        masks = layout.masks[present]
        odd = []
        for mask in np.unique(masks).tolist():
            if codecs_for(filters, dtype, layout.chunk_shape, mask) != codecs:
                odd.append(present[masks == mask])
        return np.concatenate(odd) if odd else np.zeros(0, dtype=np.int64)

    def _reencoded_chunks(
        self, dset: h5py.Dataset, layout: Layout, flats: np.ndarray, codecs: list
    ) -> dict[int, bytes]:
        pipeline = [numcodecs.get_codec(dict(c)) for c in codecs]
        encoded = {}
        for flat in flats.tolist():
            coords = layout.table.coords(flat)
            region = tuple(
                slice(c * n, min((c + 1) * n, s))
                for c, n, s in zip(coords, layout.chunk_shape, dset.shape, strict=True)
            )
            full = np.zeros(layout.chunk_shape, dtype=dset.dtype)
            values = dset[region]
            full[tuple(slice(0, v) for v in values.shape)] = values
            data = np.ascontiguousarray(full).tobytes()
            for codec in pipeline:
                data = codec.encode(data)
            encoded[flat] = bytes(data)
        return encoded

    def _inline_array(
        self, dset: h5py.Dataset, path: str, attrs: dict, plan: TypePlan, reason: str | None
    ) -> ArrayNode:
        """The whole array as one inline chunk; ``reason`` says why it cannot be referenced
        (None for compact storage, which lives in the file's metadata anyway)."""
        size = dset.id.get_storage_size() if plan.referencable else _decoded_size(dset)
        if reason is not None and self._inline_too_big(max(size, dset.nbytes)):
            raise self._unsupported(
                path,
                reason,
                "raise --max-inline to inline it",
            )
        try:
            values = encode_inline(dset[()], plan)
        except (TypeError, ValueError, KeyError) as exc:
            # h5py has no conversion for some nested types it can describe.
            raise self._unsupported(path, f"values h5py cannot read ({exc})", "") from None
        if plan.object_codec is not None:
            data = numcodecs.get_codec(dict(plan.object_codec)).encode(values)
            # Variable-length values: their size is known only now.
            if reason is not None and self._inline_too_big(len(data)):
                raise self._unsupported(path, f"{reason} ({len(data):,} bytes encoded)",
                                        "raise --max-inline to inline it")
        else:
            data = np.ascontiguousarray(values, dtype=plan_numpy_dtype(plan)).tobytes()
        table = ChunkTable(tuple(1 for _ in dset.shape))
        table.set_inline(0, bytes(data))
        chunks = dset.shape if dset.shape else ()
        return _node(
            path, dset.shape, chunks, plan, None, attrs, table, object_codec=plan.object_codec
        )

    def _inline_external(
        self, dset: h5py.Dataset, path: str, attrs: dict, plan: TypePlan, reason: str
    ) -> ArrayNode:
        """External storage references cannot express, its bytes inlined. They are read here,
        from the files the references would name: h5py would look for relative names in the
        current directory, not next to the container."""
        hint = "raise --max-inline to inline it"
        if self.remote:
            raise self._unsupported(path, f"{reason} in a remote file",
                                    "scan a local copy next to its external files")
        if self._inline_too_big(dset.nbytes):
            raise self._unsupported(path, reason, hint)
        table = ChunkTable(tuple(1 for _ in dset.shape))
        table.set_inline(0, _external_bytes(dset, self.resolve_source.locate))
        return _node(path, dset.shape, dset.shape, plan, None, attrs, table)

    def _inline_too_big(self, nbytes: int) -> bool:
        return nbytes > self.options.max_inline

    def _unsupported(self, path: str, feature: str, hint: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(self.name, "/" + path, feature, hint)

    def _corrupt(self, path: str, exc: Exception) -> ContainerError:
        return ContainerError(f"{self.name}: {'/' + path!r}: cannot read HDF5 metadata ({exc}); "
                              "the file may be corrupt or truncated")


def _check_name(name: str | bytes, group: str, file: str) -> None:
    """A name must be UTF-8 text: h5py hands out other bytes as bytes or with surrogates,
    which no Zarr key or JSON document can hold."""
    try:
        name.encode("utf-8")
    except (AttributeError, UnicodeEncodeError):
        raise ContainerError(f"{file}: group {'/' + group!r}: member name {name!r} is not "
                             "UTF-8 text; the file may be corrupt") from None


def _node(
    path: str,
    shape,
    chunks,
    plan: TypePlan,
    codecs,
    attrs: dict,
    table: ChunkTable,
    object_codec: dict | None = None,
) -> ArrayNode:
    filters = list(codecs or [])
    if object_codec is not None:
        filters = [dict(object_codec)]
    if plan.inner_shape:
        # An HDF5 array element type: its shape becomes trailing axes, whole in every chunk.
        shape, chunks = (*shape, *plan.inner_shape), (*chunks, *plan.inner_shape)
        table.grid = (*table.grid, *([1] * len(plan.inner_shape)))
    zarray = {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": plan.zarr_dtype,
        "compressor": None,
        "filters": filters or None,
        "fill_value": plan.fill_value,
        "order": "C",
        "dimension_separator": ".",
    }
    return ArrayNode(path, zarray, attrs, table)


def _external_bytes(dset: h5py.Dataset, locate: Callable[[str], str]) -> bytes:
    """The raw bytes of external storage, segment after segment, from the files ``locate(name)``
    gives; like HDF5, a file that ends early reads as zeros."""
    dcpl = dset.id.get_create_plist()
    remaining = dset.size * dset.dtype.itemsize
    parts = []
    for i in range(dcpl.get_external_count()):
        name, offset, size = dcpl.get_external(i)
        want = min(size, remaining)
        location = locate(name.decode() if isinstance(name, bytes) else name)
        try:
            with open(location, "rb") as f:
                f.seek(offset)
                part = f.read(want)
        except FileNotFoundError:
            raise SourceNotFoundError(f"{dset.file.filename}: external file {location} of "
                                      f"{dset.name!r} not found") from None
        parts.append(part.ljust(want, b"\0"))
        remaining -= want
        if not remaining:
            break
    return b"".join(parts).ljust(dset.size * dset.dtype.itemsize, b"\0")


def _decoded_size(dset: h5py.Dataset) -> int:
    """A bound on the size of an array's values once read (vlen data lives in the heap)."""
    return dset.size * max(dset.dtype.itemsize, 16)


def _identity(obj: h5py.HLObject) -> tuple:
    """Which HDF5 object this is, whatever link led to it (file number and header address)."""
    info = h5py.h5o.get_info(obj.id)
    return (info.fileno, info.addr)
