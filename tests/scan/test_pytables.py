"""Files PyTables writes — tables with nested columns, EArray, CArray, VLArray (numbers,
strings, pickled objects), plain arrays, its CLASS/VERSION/TITLE and pickled attributes — and
nested compounds with gaps: scanned, then read through zarr and xarray equal to h5py."""

from __future__ import annotations

import h5py
import hdf5plugin  # noqa: F401 - h5py reads the blosc chunks PyTables writes through it
import numpy as np
import pytest

import refindex
from refindex.scan import scan
from tests.roundtrip import assert_xarray_matches, assert_zarr_matches, scan_to_sidecar

tables = pytest.importorskip("tables")


class Inner(tables.IsDescription):
    x = tables.Float64Col(pos=0)
    y = tables.Int16Col(shape=(2,), pos=1)


class Row(tables.IsDescription):
    id = tables.Int32Col(pos=0)
    name = tables.StringCol(6, pos=1)
    inner = Inner()
    flag = tables.BoolCol(pos=3)
    c = tables.ComplexCol(itemsize=16, pos=4)


# A nested record with gaps: NumPy's aligned layout pads both levels.
GAPPED = np.dtype([("a", "i1"), ("n", np.dtype([("x", "i1"), ("y", "<f8")], align=True)),
                   ("z", "<u2")], align=True)


def _rows(table, count: int) -> None:
    row = table.row
    for i in range(count):
        row["id"], row["name"], row["inner/x"] = i, f"n{i}".encode(), i / 3
        row["inner/y"], row["flag"], row["c"] = [i, -i], i % 2, complex(i, -i)
        row.append()
    table.flush()


@pytest.fixture
def pytables_file(tmp_path):
    path = tmp_path / "pytables.h5"
    with tables.open_file(path, "w", title="written by PyTables") as f:
        table = f.create_table("/", "table", Row, "a nested table", chunkshape=(4,),
                               filters=tables.Filters(complevel=5, complib="zlib", shuffle=True))
        _rows(table, 10)
        table.attrs.pickled = {"a": 1, "b": [1, 2]}
        table.attrs.scale = np.float32(2.5)
        earray = f.create_earray("/", "earray", tables.Float32Atom(), (0, 3),
                                 filters=tables.Filters(complevel=1, complib="blosc"))
        earray.append(np.arange(12, dtype="f4").reshape(4, 3))
        f.create_carray("/", "carray", tables.Int64Atom(), (5, 5), chunkshape=(2, 5))[...] = (
            np.arange(25).reshape(5, 5))
        numbers = f.create_vlarray("/", "vlarray", tables.Int32Atom())
        numbers.append([1, 2, 3])
        numbers.append([4])
        strings = f.create_vlarray("/", "vlstring", tables.VLStringAtom())
        strings.append("héllo".encode())
        strings.append(b"")
        texts = f.create_vlarray("/", "vlunicode", tables.VLUnicodeAtom())
        texts.append("héllo")
        objects = f.create_vlarray("/", "vlobject", tables.ObjectAtom())
        objects.append({"k": 1})
        f.create_array("/", "array", np.arange(6).reshape(2, 3))
        group = f.create_group("/", "grp", "a group")
        # PyTables packs the outer record but keeps the inner one's gap (the crash).
        f.create_table(group, "gapped", GAPPED).append([(1, (2, 2.5), 3),
                                                         (-1, (-2, -2.5), 65535)])
        f.create_earray(group, "strings", tables.StringAtom(4), (0,)).append(
            np.array([b"ab", b"abcd"]))
        f.create_array(group, "scalar", 42)
    return path


def test_every_pytables_layout_reads_as_h5py_reads_it(pytables_file, tmp_path):
    sidecar = scan_to_sidecar(pytables_file, tmp_path)
    index = refindex.load_index(sidecar)
    assert sorted(index.arrays) == ["array", "carray", "earray", "grp/gapped", "grp/scalar",
                                    "grp/strings", "table", "vlarray", "vlobject", "vlstring",
                                    "vlunicode"]
    assert index.left_out == {}
    assert_zarr_matches(pytables_file, sidecar)
    assert_xarray_matches(pytables_file, sidecar)
    assert_xarray_matches(pytables_file, sidecar, group="grp")


def test_pytables_arrays_are_referenced_not_inlined(pytables_file):
    index = scan(pytables_file).index
    for path in ("array", "carray", "earray"):
        chunks = index.arrays[path].chunks
        assert chunks.inline_bytes() == 0 and chunks.referenced_bytes() > 0, path


def test_pytables_attributes_are_kept_as_stored_never_unpickled(pytables_file):
    index = scan(pytables_file).index
    attrs = index.arrays["table"].attrs
    assert attrs["CLASS"] == "TABLE" and attrs["TITLE"] == "a nested table"
    with h5py.File(pytables_file) as f:
        assert attrs["pickled"] == f["table"].attrs["pickled"].decode()
    assert index.groups[""]["TITLE"] == "written by PyTables"
    assert index.groups["grp"]["CLASS"] == "GROUP"


@pytest.mark.parametrize("chunks", [None, (2,)])
def test_nested_compound_with_gaps_reads_as_h5py_reads_it(tmp_path, chunks):
    inner = np.dtype({"names": ["x"], "formats": ["<f8"], "offsets": [4], "itemsize": 16})
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<i4", inner], "offsets": [0, 8],
                      "itemsize": 32})
    path = tmp_path / "gaps.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("records", data=np.array([(1, (2.5,)), (3, (-4.5,)), (5, (6.0,))],
                                                  dtype=dtype), chunks=chunks)
        f["other"] = np.arange(3)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert refindex.load_index(sidecar).arrays["records"].zarray["dtype"] == [
        ["a", "<i4"], ["b", [["x", "<f8"]]]]
    assert_zarr_matches(path, sidecar)
    assert_xarray_matches(path, sidecar)
