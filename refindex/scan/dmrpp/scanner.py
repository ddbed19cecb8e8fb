"""A DMR++ document's groups, dimensions and variables → the Index the HDF5 scanner gives the
data file it describes: the same paths, Zarr metadata, attributes and chunk tables."""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET

import numpy as np

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.index import ArrayNode, Index
from refindex.phony_dims import Axis, first_number, name_group_axes, parents_first
from refindex.scan.dmrpp.attrs import encode_attributes
from refindex.scan.dmrpp.document import DAP4, dap, dmrpp, local_name, namespace
from refindex.scan.dmrpp.storage import (
    Place,
    Storage,
    check_table_extents,
    fill_value_of,
    read_storage,
)
from refindex.scan.dmrpp.types import NUMERIC, TEXT, VARIABLE_TYPES, numeric_dtype
from refindex.scan.json_values import fill_to_json
from refindex.scan.left_out import leave_out
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Progress

DIMENSIONS = "_ARRAY_DIMENSIONS"


class DmrppImporter:
    """Builds ``index`` from the parsed document ``root`` (named ``document`` in errors),
    whose chunks lie in source ``source_id`` of ``data_size`` bytes (None: not known yet):
    ``walk``, then ``finish`` with the size."""

    def __init__(self, root: ET.Element, document: str, index: Index, source_id: int,
                 data_size: int | None, options: ScanOptions,
                 progress: Progress | None = None) -> None:
        self.root, self.document, self.index = root, document, index
        self.source_id, self.data_size = source_id, data_size
        self.options, self.progress = options, progress
        self.dimensions: dict[str, int] = {}  # fully qualified name -> size
        self.group_dims: dict[str, list[tuple[str, int]]] = {}
        self.axes: dict[str, dict[str, list[Axis]]] = {}  # group -> array path -> its axes
        self.sized: list[tuple[ET.Element, str, str]] = []  # read again once the size is known
        self.skipped: list[str] = []
        self.legacy_order = root.get(dmrpp("version")) is None

    def walk(self) -> None:
        """Read the document into the index (``finish`` completes it)."""
        self._group(self.root, "")
        self._name_axes()

    def finish(self, data_size: int | None) -> list[str]:
        """Complete the index once the data file's size is known (bytes; None: unknown):
        chunks that end past it are a ContainerError, contiguous arrays whose row blocks
        depend on it are read again."""
        if data_size is not None and self.data_size is None:
            self.data_size = data_size
            sized, self.sized = self.sized, []
            for element, kind, group in sized:
                self._variable(element, kind, group)
            if sized:
                self._name_axes()
            for path, node in self.index.arrays.items():
                check_table_extents(node.chunks, self._place(path, node))
        return self.skipped

    def _group(self, element: ET.Element, path: str) -> None:
        self._declare_group(element, path)
        for child in element:
            if namespace(child.tag) != DAP4:
                continue
            kind = local_name(child.tag)
            name = child.get("name", "")
            if kind == "Group":
                if not name or "/" in name:
                    raise ContainerError(f"{self.document}: group name {name!r} in "
                                         f"{'/' + path!r}")
                self._group(child, f"{path}/{name}" if path else name)
            elif kind in VARIABLE_TYPES:
                self._variable(child, kind, path)

    def _declare_group(self, element: ET.Element, path: str) -> None:
        attrs, dtypes = encode_attributes(element, f"{self.document}: group {'/' + path!r}")
        self.index.groups.setdefault(path, {}).update(attrs)
        if dtypes:
            self.index.group_attr_dtypes.setdefault(path, {}).update(dtypes)
        self.group_dims.setdefault(path, [])
        for dimension in element.findall(dap("Dimension")):
            name, size = dimension.get("name"), dimension.get("size", "")
            if not name or not size.isdigit():
                raise ContainerError(f"{self.document}: group {'/' + path!r}: Dimension "
                                     f"{dict(dimension.attrib)} needs a name and a size")
            self.dimensions[f"/{path}/{name}" if path else f"/{name}"] = int(size)
            self.group_dims[path].append((name, int(size)))

    def _variable(self, element: ET.Element, kind: str, group: str) -> None:
        original_group = group
        name = element.get("name", "")
        if not name:
            raise ContainerError(f"{self.document}: a {kind} variable without a name in group "
                                 f"{'/' + group!r}")
        if "/" in name:  # a flattened name: the groups are in the variable's name
            group = posixpath.join(group, posixpath.dirname(name.strip("/")))
            name = posixpath.basename(name)
            for depth, _ in enumerate(group.split("/")):
                self.index.groups.setdefault("/".join(group.split("/")[:depth + 1]), {})
        path = f"{group}/{name}" if group else name
        element_group = original_group
        axes = self._axes(element, path, group)
        # Every variable counts for phony names, those left out too (as in the HDF5 scanner).
        self.axes.setdefault(group, {})[path] = axes
        try:
            node, sized = self._array(element, kind, path, axes)
        except UnsupportedFeatureError as exc:
            leave_out(self.index, path, exc, self.options)
            return
        if sized:
            self.sized.append((element, kind, element_group))
        self.index.arrays[path] = node
        if self.progress:
            self.progress(path, len(node.chunks))

    def _axes(self, element: ET.Element, path: str, group: str) -> list[Axis]:
        axes: list[Axis] = []
        for dim in element.findall(dap("Dim")):
            name, size = dim.get("name"), dim.get("size")
            if name is not None:
                fqn = self._dimension(name, group, path)
                axes.append((posixpath.basename(fqn), self.dimensions[fqn]))
            elif size is not None and size.isdigit():
                axes.append((None, int(size)))
            else:
                raise ContainerError(f"{self.document}: variable {'/' + path!r}: Dim "
                                     f"{dict(dim.attrib)} has neither a name nor a size")
        return axes

    def _dimension(self, name: str, group: str, path: str) -> str:
        """The fully qualified name of dimension ``name`` as a variable of ``group`` uses it:
        absolute, or looked up from the group outwards."""
        if name.startswith("/"):
            if name in self.dimensions:
                return name
        else:
            scope = group
            while True:
                fqn = f"/{scope}/{name}" if scope else f"/{name}"
                if fqn in self.dimensions:
                    return fqn
                if not scope:
                    break
                scope = scope.rpartition("/")[0]
        raise ContainerError(f"{self.document}: variable {'/' + path!r}: dimension {name!r} "
                             "is not declared")

    def _array(self, element: ET.Element, kind: str, path: str, axes: list[Axis]
               ) -> tuple[ArrayNode, bool]:
        is_scale = len(axes) == 1 and axes[0][0] == posixpath.basename(path)
        attrs, dtypes = encode_attributes(element, f"{self.document}: variable {'/' + path!r}",
                                          is_scale)
        shape = tuple(size for _, size in axes)
        native = self._element_dtype(element, kind, path)
        place = Place(shape, native, self.source_id, self.data_size, self.document,
                      "/" + path, self.options.max_inline, self.legacy_order)
        storage = read_storage(element, place)
        dtype = native.newbyteorder(storage.byte_order)  # none for bytes and strings
        node = ArrayNode(path, _zarray(shape, storage, dtype, place), attrs, storage.table)
        node.attr_dtypes = dtypes
        return node, storage.sized

    def _element_dtype(self, element: ET.Element, kind: str, path: str) -> np.dtype:
        """The NumPy dtype (native order) of one element of variable ``element``: a DAP4
        number; a Char or a fixed-length string whose bytes are the values as stored
        (NUL-padded; NUL-terminated of length 1), ``|S<n>``; else UnsupportedFeatureError."""
        if kind in NUMERIC:
            return numeric_dtype(kind, "=")
        if kind == "Char":
            return np.dtype("S1")
        if kind in TEXT and element.find(dmrpp("vlsa")) is not None:
            return np.dtype(object)  # taken as UTF-8 text: DMR++ states no character set
        fixed = element.find(dmrpp("FixedLengthStringArray"))
        if kind in TEXT and fixed is not None:
            length, pad = fixed.get("string_length", ""), fixed.get("pad", "")
            if not length.isdigit() or int(length) < 1:
                raise ContainerError(f"{self.document}: variable {'/' + path!r}: "
                                     f"FixedLengthStringArray string_length {length!r}")
            if pad == "null_pad" or (pad == "null_term" and int(length) == 1):
                return np.dtype(f"S{length}")
            feature = {"space_pad": "space-padded strings: HDF5 strips the spaces on read",
                       "null_term": "NUL-terminated strings: HDF5 drops bytes after the NUL"
                       }.get(pad, f"fixed-length strings padded {pad!r}")
            raise UnsupportedFeatureError(self.document, "/" + path, feature,
                                          "scan the data file itself")
        what = ("variable-length strings without their values (dmrpp:vlsa)" if kind in TEXT
                else f"DAP4 {kind} variable")
        raise UnsupportedFeatureError(
            self.document, "/" + path, what,
            "DMR++ does not state their stored form exactly; scan the data file itself")

    def _place(self, path: str, node: ArrayNode) -> Place:
        """Where ``node``'s chunks are, for errors about them."""
        return Place(tuple(node.zarray["shape"]), np.dtype(node.zarray["dtype"]),
                     self.source_id, self.data_size, self.document, "/" + path,
                     self.options.max_inline)

    def _name_axes(self) -> None:
        """``_ARRAY_DIMENSIONS`` of every array: its dimensions' names, and for anonymous
        axes the phony names h5netcdf (and the HDF5 scanner) give them."""
        next_number: dict[str, int] = {}
        for group in parents_first(self.axes):
            arrays = self.axes[group]
            first = first_number(group, next_number)
            names, next_number[group] = name_group_axes(
                list(arrays.values()), first, self.group_dims.get(group, []))
            for path, dims in zip(arrays, names, strict=True):
                if path in self.index.arrays:
                    self.index.arrays[path].attrs[DIMENSIONS] = list(dims)


def _zarray(shape: tuple[int, ...], storage: Storage, dtype: np.dtype, place: Place) -> dict:
    fill = fill_value_of(storage.fill, dtype, place)
    return {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(storage.chunk_shape),
        "dtype": dtype.str,
        "compressor": None,
        "filters": storage.codecs or None,
        # All-zero bytes is HDF5's default fill, which the HDF5 scanner writes as null.
        "fill_value": None if fill is None or not fill.tobytes().strip(b"\0")
        else fill_to_json(fill),
        "order": "C",
        "dimension_separator": ".",
    }
