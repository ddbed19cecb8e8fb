"""Combining members into one dataset: the same Dataset xr.open_mfdataset gives, or a
CombineError naming every problem."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.combine import CombineOptions, combine
from refindex.errors import CombineError, SidecarError
from refindex.sidecar import load_index, write_index
from tests.combine import ncfiles

TIME = CombineOptions(concat_dims=("time",))
# What open_mfdataset should do to compare: variables without the dimension kept once.
MINIMAL = {"data_vars": "minimal", "coords": "minimal", "compat": "override"}


def sidecars(paths, tmp_path):
    """Scan each file to a sidecar of its own, in the order given."""
    out = []
    for path in paths:
        sidecar = tmp_path / "members" / f"{path.name}.refs.json"
        sidecar.parent.mkdir(exist_ok=True)
        write_index(refindex.scan(path).index, sidecar)
        out.append(sidecar)
    return out


def combined_dataset(index, tmp_path, **kwargs) -> xr.Dataset:
    write_index(index, tmp_path / "combined.refs.json")
    return xr.open_dataset(tmp_path / "combined.refs.json", engine="refindex", **kwargs)


def reference(paths) -> xr.Dataset:
    with xr.open_mfdataset(sorted(paths), combine="by_coords", engine="netcdf4",
                           **MINIMAL) as ds:
        return ds.load()


def assert_same_dataset(ours: xr.Dataset, theirs: xr.Dataset) -> None:
    """Values (NaN-aware, bit for bit), coordinates, attributes and the CF encoding."""
    assert ours.identical(theirs)
    for name, variable in theirs.variables.items():
        np.testing.assert_array_equal(ours[name].values, variable.values, strict=True)
        for key in ("units", "calendar", "_FillValue", "scale_factor", "add_offset"):
            assert _same(ours[name].encoding.get(key), variable.encoding.get(key)), (name, key)
        # The stored type, in the byte order it is stored in (NetCDF3 is big-endian; netCDF4
        # reports it in the machine's).
        ours_dtype, their_dtype = ours[name].encoding["dtype"], variable.encoding["dtype"]
        assert ours_dtype.newbyteorder("=") == their_dtype.newbyteorder("="), name


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    a, b = np.asarray(a), np.asarray(b)
    nan_aware = a.dtype.kind in "fc" and b.dtype.kind in "fc"
    return bool(np.array_equal(a, b, equal_nan=nan_aware)) and a.dtype == b.dtype


def test_daily_files_with_their_own_time_units_combine_like_open_mfdataset(tmp_path):
    paths = ncfiles.daily(tmp_path / "daily", days=12, own_units=True)
    index = combine(sidecars(paths, tmp_path), TIME)
    ds = combined_dataset(index, tmp_path)
    assert_same_dataset(ds, reference(paths))
    assert ds.time.encoding["units"] == "days since 2020-01-01"  # the first member's
    assert index.combined["dims"] == {"time": {"kind": "concat", "length": 12,
                                               "positions": 12}}


def test_members_are_ordered_by_coordinate_values_not_by_name(tmp_path):
    paths = ncfiles.daily(tmp_path / "daily", days=6)
    renamed = []
    for i, path in enumerate(sorted(paths, reverse=True)):  # names now sort backwards
        renamed.append(path.rename(path.with_name(f"{i:02d}.nc")))
    ds = combined_dataset(combine(sidecars(renamed, tmp_path), TIME), tmp_path)
    assert (np.diff(ds.time.values) > np.timedelta64(0)).all()
    assert_same_dataset(ds, reference(paths_sorted_by_time(renamed)))


def paths_sorted_by_time(paths):
    def first_time(path):
        with netCDF4.Dataset(path) as f:
            return float(f["time"][0])
    return sorted(paths, key=first_time)


def test_the_concatenated_dimension_is_found_when_not_named(tmp_path):
    paths = ncfiles.daily(tmp_path / "daily", days=4)
    index = combine(sidecars(paths, tmp_path))
    assert list(index.combined["dims"]) == ["time"]


def test_leap_years_and_a_time_chunk_that_divides_no_year_read_exactly(tmp_path):
    paths = ncfiles.yearly(tmp_path / "yearly", chunk=30)
    index = combine(sidecars(paths, tmp_path), TIME)
    node = index.arrays["pr"]
    assert node.irregular and node.zarray["shape"][0] == 366 * 2 + 365 * 3
    ds = combined_dataset(index, tmp_path)
    assert_same_dataset(ds, reference(paths))
    # Dask chunks follow the members' own chunks: 13 per year, the last 5 or 6 long.
    chunked = combined_dataset(index, tmp_path, chunks={})
    assert chunked.pr.chunks[0][:13] == (30,) * 12 + (6,)
    xr.testing.assert_identical(chunked.load(), reference(paths))


def test_zarr_reads_the_uneven_array_retiled_exactly(tmp_path):
    paths = ncfiles.yearly(tmp_path / "yearly", years=(2003, 2004), chunk=30)
    index = combine(sidecars(paths, tmp_path), TIME)
    group = zarr.open_group(refindex.open_store(index), mode="r", zarr_format=2)
    raw = []
    for path in paths_sorted_by_time(paths):
        with netCDF4.Dataset(path) as f:
            f.set_auto_maskandscale(False)
            raw.append(f["pr"][:])
    expected = np.concatenate(raw)
    assert group["pr"].chunks == (30, 6, 4)
    np.testing.assert_array_equal(group["pr"][:], expected)
    np.testing.assert_array_equal(group["pr"][350:380, 2, 1:3], expected[350:380, 2, 1:3])


def test_uneven_sidecars_are_version_2_and_not_kerchunk(tmp_path):
    paths = ncfiles.yearly(tmp_path / "yearly", years=(2003, 2004), chunk=30)
    index = combine(sidecars(paths, tmp_path), TIME)
    write_index(index, tmp_path / "c.json")
    assert '"refindex_sidecar":"2.0"' in (tmp_path / "c.json").read_text()[:40]
    loaded = load_index(tmp_path / "c.json")
    assert loaded.arrays["pr"].grid.to_json() == index.arrays["pr"].grid.to_json()
    with pytest.raises(SidecarError, match="'pr'.*differing lengths.*native"):
        write_index(index, tmp_path / "k.json", format="kerchunk")


def test_members_holding_different_variables_are_merged(tmp_path):
    tas = ncfiles.daily(tmp_path / "tas", days=5, variables=("tas",), name="tas")
    pr = ncfiles.daily(tmp_path / "pr", days=5, variables=("pr",), name="pr")
    index = combine(sidecars(tas + pr, tmp_path), TIME)
    assert_same_dataset(combined_dataset(index, tmp_path), reference(tas + pr))


def test_a_differing_scale_factor_and_codec_are_refused_naming_every_member(tmp_path):
    good = [ncfiles.one_file(tmp_path / f"m{i}.nc", 2 * i, packed={}) for i in range(3)]
    scaled = ncfiles.one_file(tmp_path / "scaled.nc", 6, packed={"scale_factor": 0.02})
    plain = ncfiles.one_file(tmp_path / "plain.nc", 8, packed={}, zlib=False)
    with pytest.raises(CombineError) as caught:
        combine(sidecars([*good, scaled, plain], tmp_path), TIME)
    message = str(caught.value)
    assert "pr: scale_factor differs" in message and "scaled.nc" in message
    assert "pr: codecs differ" in message and "plain.nc" in message
    assert len(caught.value.problems) == 2


def test_overlapping_times_are_refused(tmp_path):
    paths = [ncfiles.one_file(tmp_path / "a.nc", 0, length=3),
             ncfiles.one_file(tmp_path / "b.nc", 2, length=3)]
    with pytest.raises(CombineError, match="'time'.*b.nc overlap those of .*a.nc"):
        combine(sidecars(paths, tmp_path), TIME)


def test_a_grid_that_differs_between_members_is_refused(tmp_path):
    paths = [ncfiles.one_file(tmp_path / "a.nc", 0), ncfiles.one_file(tmp_path / "b.nc", 2),
             ncfiles.one_file(tmp_path / "shifted.nc", 4, lat_shift=0.5)]
    with pytest.raises(CombineError, match="lat: values differ .*shifted.nc"):
        combine(sidecars(paths, tmp_path), TIME)


def test_a_variable_missing_from_a_member_is_refused(tmp_path):
    tas = ncfiles.daily(tmp_path / "tas", days=3, variables=("tas",), name="tas")
    pr = ncfiles.daily(tmp_path / "pr", days=2, variables=("pr",), name="pr")
    with pytest.raises(CombineError, match=r"pr: no member holds it at time=2020-01-03"):
        combine(sidecars(tas + pr, tmp_path), TIME)


def test_two_new_dimensions_from_file_names(tmp_path):
    paths = ncfiles.ensemble(tmp_path / "ens")
    options = CombineOptions(new_dims=(("model", r"^([a-z]+)_"), ("member", r"_r(\d+)")))
    index = combine(sidecars(paths, tmp_path), options)
    ds = combined_dataset(index, tmp_path)
    assert ds.tas.dims == ("model", "member", "time", "lat", "lon")
    assert list(ds.model.values) == ["alpha", "beta"] and list(ds.member.values) == [1, 2, 3]
    for model in ("alpha", "beta"):
        for member in (1, 2, 3):
            with xr.open_dataset(tmp_path / "ens" / f"{model}_r{member}.nc") as one:
                np.testing.assert_array_equal(ds.tas.sel(model=model, member=member).values,
                                              one.tas.values, strict=True)
                xr.testing.assert_identical(ds.time, one.time)


def test_a_file_name_that_does_not_match_the_new_dimension_is_refused(tmp_path):
    paths = ncfiles.ensemble(tmp_path / "ens", models=("alpha",), members=(1, 2))
    odd = paths[0].rename(paths[0].with_name("odd.nc"))
    options = CombineOptions(new_dims=(("member", r"_r(\d+)"),))
    with pytest.raises(CombineError, match=r"'member': file name of .*odd.nc does not match"):
        combine(sidecars([odd, paths[1]], tmp_path), options)


@pytest.mark.parametrize("policy", ["first", "drop", "error"])
def test_conflicting_global_attributes_follow_the_policy(tmp_path, policy):
    paths = ncfiles.daily(tmp_path / "daily", days=3)  # "history" differs, "title" not
    members = sidecars(paths, tmp_path)
    if policy == "error":
        with pytest.raises(CombineError, match=r"attributes \['history'\] differ"):
            combine(members, TIME.replace(attrs=policy))
        return
    attrs = combine(members, TIME.replace(attrs=policy)).groups[""]
    assert attrs["title"] == "daily test collection"
    assert attrs.get("history") == ("written for day 0" if policy == "first" else None)


def test_bounds_in_other_units_are_rewritten_with_the_coordinate(tmp_path):
    paths = ncfiles.daily(tmp_path / "daily", days=4, own_units=True, bounds=True)
    index = combine(sidecars(paths, tmp_path), TIME)
    ds = combined_dataset(index, tmp_path, decode_coords="all")
    with xr.open_mfdataset(sorted(paths), combine="by_coords", decode_coords="all",
                           **MINIMAL) as theirs:
        np.testing.assert_array_equal(ds.time_bnds.values, theirs.time_bnds.values)


def test_netcdf3_members_with_record_times_combine_like_open_mfdataset(tmp_path):
    paths = []
    for month, days in ((1, 31), (2, 29), (3, 31)):  # 2020: a leap February
        path = tmp_path / f"m{month}.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as f:
            f.createDimension("time", None)
            f.createDimension("station", 3)
            t = f.createVariable("time", "f8", ("time",))
            t.units = f"hours since 2020-{month:02d}-01"
            t[:] = np.arange(days) * 24.0
            v = f.createVariable("level", "i2", ("time", "station"), fill_value=np.int16(-1))
            v.scale_factor = np.float32(0.5)
            v[:] = np.arange(days * 3).reshape(days, 3) % 300
            f.history = f"month {month}"
        paths.append(path)
    index = combine(sidecars(paths, tmp_path), TIME)
    assert_same_dataset(combined_dataset(index, tmp_path), reference(paths))


def _with_station_names(paths, counts) -> None:
    """Add a variable-length string variable of ``count`` names to each file (h5py)."""
    import h5py

    for path, count in zip(paths, counts, strict=True):
        with h5py.File(path, "a") as f:
            f.create_dataset("names", data=[f"station {i}" for i in range(count)],
                             dtype=h5py.string_dtype())


def _left_out_sidecars(paths, tmp_path, max_inline: int):
    out = []
    for path in paths:
        sidecar = tmp_path / "members" / f"{path.name}.refs.json"
        sidecar.parent.mkdir(exist_ok=True)
        options = refindex.ScanOptions(max_inline=max_inline)
        write_index(refindex.scan(path, options).index, sidecar)
        out.append(sidecar)
    return out


def test_an_array_every_member_left_out_stays_left_out_in_the_combined_index(tmp_path):
    paths = sorted(ncfiles.daily(tmp_path / "daily", days=2))
    _with_station_names(paths, [200, 200])
    index = combine(_left_out_sidecars(paths, tmp_path, max_inline=1000), TIME)
    assert "names" not in index.arrays and list(index.left_out) == ["names"]
    assert "variable-length strings" in index.left_out["names"]
    assert str(paths[0]) in index.left_out["names"] or str(paths[1]) in index.left_out["names"]


def test_an_array_left_out_of_some_members_only_is_a_combine_error(tmp_path):
    paths = sorted(ncfiles.daily(tmp_path / "daily", days=2))
    _with_station_names(paths, [200, 3])
    with pytest.raises(CombineError, match="names: left out of .*day-2020-01-01.nc's scan"):
        combine(_left_out_sidecars(paths, tmp_path, max_inline=1000), TIME)
