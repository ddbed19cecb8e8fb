"""Files PyTables writes open in xarray through refindex: tables (records), arrays,
extendable and chunked arrays (with atoms of several elements), variable-length arrays, and
PyTables' bookkeeping attributes (CLASS, TITLE, FIELD_N_NAME, ...) come back as h5py reads
them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tables
import xarray as xr

from tests.roundtrip import scan_to_sidecar
from tests.xarray.same_as import assert_same_as_h5netcdf, assert_same_values


class Particle(tables.IsDescription):
    name = tables.StringCol(16)
    number = tables.Int64Col()
    energy = tables.Float64Col()
    position = tables.Float32Col(shape=(3,))


def pytables_file(path) -> None:
    with tables.open_file(path, "w", title="particles") as f:
        detector = f.create_group("/", "detector", "Detector information")
        readout = f.create_table(detector, "readout", Particle, "Readout example")
        for i in range(10):
            row = readout.row
            row["name"], row["number"], row["energy"] = f"particle {i}", i, i * 1.5
            row["position"] = [i, -i, 0.5 * i]
            row.append()
        readout.flush()
        f.create_array("/", "plain", np.arange(12).reshape(3, 4), "a plain array")
        f.create_array("/", "scalar", 5)
        growing = f.create_earray("/", "growing", tables.Float32Atom(), (0, 3))
        growing.append(np.arange(15, dtype="f4").reshape(5, 3))
        # in a group of its own: h5netcdf names one axis of it (refindex two), which would
        # shift the numbers of the phony dimensions of the groups below the root
        atoms = f.create_group("/", "atoms")
        vectors = f.create_earray(atoms, "vectors", tables.Float64Atom(shape=(2,)), (0,))
        vectors.append(np.arange(8.0).reshape(4, 2))
        chunked = f.create_carray("/", "chunked", tables.Int16Atom(), (6, 7),
                                  filters=tables.Filters(5, "zlib"), chunkshape=(4, 4))
        chunked[:] = np.arange(42, dtype="i2").reshape(6, 7)
        ragged = f.create_vlarray("/", "ragged", tables.Int32Atom())
        for row in ([1, 2], [3], [4, 5, 6]):
            ragged.append(row)


@pytest.fixture(scope="module")
def pytables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pytables")
    path = folder / "particles.h5"
    pytables_file(path)
    return path, scan_to_sidecar(path, folder)


def h5py_values(path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return np.asarray(f[name][()])


@pytest.mark.parametrize("name", ["plain", "scalar", "growing", "atoms/vectors", "chunked"])
def test_pytables_arrays_read_as_h5py_reads_them(pytables, name):
    path, sidecar = pytables
    group, _, variable = name.rpartition("/")
    values = xr.open_dataset(sidecar, engine="refindex", group=group or None)[variable].values
    assert_same_values(values, h5py_values(path, name), name)


def test_an_atom_of_several_elements_gives_the_array_an_axis_more(pytables):
    variable = xr.open_dataset(pytables[1], engine="refindex", group="atoms")["vectors"]
    assert variable.shape == (4, 2) and len(set(variable.dims)) == 2


def test_a_pytables_table_reads_as_records(pytables):
    path, sidecar = pytables
    readout = xr.open_dataset(sidecar, engine="refindex", group="detector")["readout"]
    expected = h5py_values(path, "detector/readout")
    assert readout.dtype.names == expected.dtype.names
    assert_same_values(readout.values, expected, "readout")


def test_variable_length_arrays_read_as_h5py_reads_them(pytables):
    path, sidecar = pytables
    values = xr.open_dataset(sidecar, engine="refindex")["ragged"].values
    expected = h5py_values(path, "ragged")
    assert [list(v) for v in values] == [list(v) for v in expected]


def test_a_pytables_group_opens_as_h5netcdf_opens_it(pytables):
    # FIELD_N_NAME, FIELD_N_FILL (of each field's type), NROWS, CLASS, TITLE, VERSION
    assert_same_as_h5netcdf(*pytables, group="detector", unhidden=frozenset({"CLASS"}))


def test_pytables_attributes_come_back_as_h5py_reads_them(pytables):
    # (h5netcdf cannot open this root group: it fails on the scalar array)
    root = xr.open_dataset(pytables[1], engine="refindex")
    assert root.attrs["TITLE"] == "particles" and root.attrs["CLASS"] == "GROUP"
    assert root["growing"].attrs["EXTDIM"] == 0
    assert root["growing"].attrs["EXTDIM"].dtype == np.int32
    assert root["growing"].attrs["TITLE"] == ""  # empty, of a one-character string type
