"""Build the Index of an MRC file from its header: the root group holds the header as
attributes (see ``attrs.py``) and one array, ``data``, its values as mrcfile reads them.
Only the 1,024-byte header is read; the extended header is skipped (its type recorded)."""

from __future__ import annotations

from refindex.errors import UnsupportedFeatureError
from refindex.index import ArrayNode, Index
from refindex.io import ReadEngine
from refindex.scan.left_out import leave_out
from refindex.scan.mrc.attrs import group_attrs
from refindex.scan.mrc.header import REFUSED_MODES, read_header
from refindex.scan.mrc.layout import data_layout, data_shape
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Container, Progress

DATA = "data"
"""The data array's path (mrcfile calls it ``data`` too)."""


def scan_mrc(container: Container, index: Index, engine: ReadEngine, options: ScanOptions,
             progress: Progress | None = None) -> list[str]:
    """Add the MRC file in ``container`` (``options.file_size`` bytes) to ``index`` (see
    ``ContainerScanner``). A mode no Zarr dtype holds (3, 101) leaves the data out by name;
the note returned says when the byte order was not the machine stamp's."""
    if options.file_size is None:
        raise ValueError("scan_mrc needs options.file_size")
    name = container.url
    header = read_header(container.fileobj, options.file_size, name)
    _, dims = data_shape(header)
    index.groups[""] = group_attrs(header, dims, DATA)
    mode = header.integer("mode")
    if mode in REFUSED_MODES:
        leave_out(index, DATA, UnsupportedFeatureError(
            name, DATA, REFUSED_MODES[mode], "convert it to another mode (e.g. with mrcfile)"),
            options)
        return []
    layout = data_layout(header, container.source_id, options.file_size, name)
    zarray = {
        "zarr_format": 2,
        "shape": list(layout.shape),
        "chunks": list(layout.chunk_shape),
        "dtype": layout.dtype.str,
        "compressor": None,
        "filters": None,
        "fill_value": None,
        "order": "C",
        "dimension_separator": ".",
    }
    index.arrays[DATA] = ArrayNode(DATA, zarray, {"_ARRAY_DIMENSIONS": list(layout.dims)},
                                   layout.table)
    if progress:
        progress(DATA, len(layout.table))
    if header.stamp_matches:
        return []
    order = "little" if header.byte_order == "<" else "big"
    return [f"MRC machine stamp unrecognised: read as {order}-endian, the one byte order in "
            "which the header's mode and sizes are valid and the data fits in the file"]
