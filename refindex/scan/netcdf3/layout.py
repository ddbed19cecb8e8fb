"""Where a NetCDF3 variable's values are, as chunk references.

A non-record variable is one contiguous block at ``begin``, exposed as row blocks of about
``CONTIGUOUS_BLOCK`` bytes so that a slice need not fetch all of it. A record variable is
interleaved with the others: record ``r`` lies at ``begin + r * recsize``, so each record is
one chunk of shape ``(1, ...)`` (cut into row blocks too when one record is larger than the
block size). Sizes follow netCDF-C (``NC_var_shape``, ``NC_computeshapes``), not the header's
``vsize``, which saturates for large variables and ignores the one-record-variable case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refindex.errors import ContainerError
from refindex.index import ChunkTable
from refindex.scan.blocks import row_blocks
from refindex.scan.netcdf3.header import Header, Variable


@dataclass(frozen=True)
class Shapes:
    """The dimensions as readers see them: ``lengths[i]`` of dimension ``i`` (the record
    dimension has the record count), which dimension is the record one (None if none), and
    the record size in bytes (the stride between two records of one variable)."""

    lengths: tuple[int, ...]
    record_dim: int | None
    record_size: int


@dataclass(frozen=True)
class VariableLayout:
    """A variable's Zarr shape and chunk shape, and its chunk table."""

    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    table: ChunkTable


def dimension_shapes(header: Header, file_size: int, name: str) -> Shapes:
    """Dimension lengths and the record size of ``header``; the record count of a
    "streaming" file is the number of whole records the file holds. A ContainerError when
    the header contradicts itself (dimension ids, unlimited dimensions, overlapping data)."""
    record_dims = [i for i, d in enumerate(header.dimensions) if d.length == 0]
    if len(record_dims) > 1:
        names = ", ".join(repr(header.dimensions[i].name) for i in record_dims)
        raise ContainerError(f"{name}: NetCDF3 header names more than one unlimited "
                             f"dimension ({names}); the file is corrupt")
    record_dim = record_dims[0] if record_dims else None
    for variable in header.variables:
        _check_dimids(variable, header, record_dim, name)
    _check_data_order(header, record_dim, name)
    record_size = _record_size(header, record_dim)
    numrecs = header.numrecs
    if numrecs is None:
        numrecs = _streaming_record_count(header, record_dim, record_size, file_size)
    lengths = tuple(numrecs if i == record_dim else d.length
                    for i, d in enumerate(header.dimensions))
    return Shapes(lengths, record_dim, record_size)


def variable_layout(variable: Variable, shapes: Shapes, source: int, file_size: int,
                    name: str) -> VariableLayout:
    """The chunk references of ``variable``; a ContainerError when its data would reach past
    the end of the file (a truncated file)."""
    shape = tuple(shapes.lengths[d] for d in variable.dimids)
    itemsize = variable.nc_type.dtype.itemsize
    if _is_record(variable, shapes.record_dim):
        return _record_layout(variable, shape, itemsize, shapes.record_size, source,
                              file_size, name)
    return _contiguous_layout(variable, shape, itemsize, source, file_size, name)


def _contiguous_layout(variable: Variable, shape: tuple[int, ...], itemsize: int, source: int,
                       file_size: int, name: str) -> VariableLayout:
    total = math.prod(shape) * itemsize
    _check_inside(variable, variable.begin + total, file_size, name)
    chunk_shape, grid = row_blocks(shape, itemsize, file_size - variable.begin)
    table = ChunkTable(grid)
    block = math.prod(chunk_shape) * itemsize
    table.source[:] = source
    table.offset[:] = variable.begin + np.arange(len(table), dtype=np.int64) * block
    table.length[:] = block
    return VariableLayout(shape, chunk_shape, table)


def _record_layout(variable: Variable, shape: tuple[int, ...], itemsize: int, record_size: int,
                   source: int, file_size: int, name: str) -> VariableLayout:
    numrecs, inner = shape[0], shape[1:]
    record_bytes = math.prod(inner) * itemsize
    if numrecs:
        last_end = variable.begin + (numrecs - 1) * record_size + record_bytes
        _check_inside(variable, last_end, file_size, name)
    # What a block of the last record may read past its own values must stay in the file.
    room = file_size - variable.begin - max(numrecs - 1, 0) * record_size
    inner_chunks, inner_grid = row_blocks(inner, itemsize, room)
    table = ChunkTable((numrecs, *inner_grid))
    block = math.prod(inner_chunks) * itemsize
    starts = np.add.outer(np.arange(numrecs, dtype=np.int64) * record_size,
                          np.arange(math.prod(inner_grid), dtype=np.int64) * block)
    table.source[:] = source
    table.offset[:] = variable.begin + starts.reshape(-1)
    table.length[:] = block
    return VariableLayout(shape, (1, *inner_chunks), table)


def _record_size(header: Header, record_dim: int | None) -> int:
    """Bytes from one record to the next: each record variable's per-record size padded to 4
    bytes, summed; when that sum is the first record variable's padded size (one record
    variable), its unpadded size — netCDF-C packs records then."""
    record_variables = [v for v in header.variables if _is_record(v, record_dim)]
    total = sum(_padded_size(v, header, record_dim) for v in record_variables)
    if record_variables and total == _padded_size(record_variables[0], header, record_dim):
        return _unpadded_size(record_variables[0], header, record_dim)
    return total


def _unpadded_size(variable: Variable, header: Header, record_dim: int | None) -> int:
    """Bytes of a non-record variable, or of one record of a record variable, as netCDF-C
    counts them (``NC_var_shape``: a zero-length axis counts as 1)."""
    lengths = [header.dimensions[d].length for d in variable.dimids if d != record_dim]
    return math.prod(max(n, 1) for n in lengths) * variable.nc_type.dtype.itemsize


def _padded_size(variable: Variable, header: Header, record_dim: int | None) -> int:
    size = _unpadded_size(variable, header, record_dim)
    return size + -size % 4


def _is_record(variable: Variable, record_dim: int | None) -> bool:
    return bool(variable.dimids) and variable.dimids[0] == record_dim


def _check_data_order(header: Header, record_dim: int | None, name: str) -> None:
    """Refuse what netCDF-C refuses (``NC_check_voffs``): non-record variables' data after
    the header and after one another in header order, then the record variables' likewise;
    overlapping data means a corrupt header, whose values no reader can trust."""
    end, previous = header.size, "the header"
    for records in (False, True):
        for variable in header.variables:
            if _is_record(variable, record_dim) != records:
                continue
            if variable.begin < end:
                raise ContainerError(f"{name}: NetCDF3 variable {variable.name!r} starts at "
                                     f"byte {variable.begin}, inside {previous} (which ends at "
                                     f"byte {end}); the header is corrupt")
            end = variable.begin + _padded_size(variable, header, record_dim)
            previous = f"variable {variable.name!r}"


def _streaming_record_count(header: Header, record_dim: int | None, record_size: int,
                            file_size: int) -> int:
    """Whole records between the first record variable's data and the end of the file."""
    starts = [v.begin for v in header.variables if _is_record(v, record_dim)]
    if not starts or record_size == 0:
        return 0
    return max(0, file_size - min(starts)) // record_size


def _check_dimids(variable: Variable, header: Header, record_dim: int | None,
                  name: str) -> None:
    for axis, dimid in enumerate(variable.dimids):
        if dimid >= len(header.dimensions):
            raise ContainerError(f"{name}: NetCDF3 variable {variable.name!r} names dimension "
                                 f"id {dimid}, but the file has {len(header.dimensions)} "
                                 "dimensions; the header is corrupt")
        if dimid == record_dim and axis:
            raise ContainerError(f"{name}: NetCDF3 variable {variable.name!r} has the "
                                 f"unlimited dimension on axis {axis}, not first; the header "
                                 "is corrupt")


def _check_inside(variable: Variable, end: int, file_size: int, name: str) -> None:
    if end > file_size:
        raise ContainerError(f"{name}: NetCDF3 variable {variable.name!r}: its data ends at "
                             f"byte {end} but the file has {file_size} bytes; the file is "
                             "truncated")
