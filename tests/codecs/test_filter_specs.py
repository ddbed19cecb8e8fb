"""filters_of reads a dataset's pipeline in order, as frozen FilterSpecs."""

from __future__ import annotations

import dataclasses

import pytest

from refindex.codecs import FilterSpec, filters_of


def test_filters_of_lists_the_pipeline_in_write_order(make_dataset):
    dset = make_dataset(shuffle=True, compression="gzip", compression_opts=4, fletcher32=True)

    specs = filters_of(dset.id.get_create_plist())

    assert [s.id for s in specs] == [2, 1, 3]
    assert specs[0].cd_values == (4,)  # shuffle's element size, set by HDF5
    assert specs[1].cd_values == (4,)  # deflate level
    assert specs[1].name == "deflate"


def test_filter_specs_are_frozen_and_hashable():
    spec = FilterSpec(id=1, flags=0, cd_values=(6,), name="deflate")

    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.id = 2  # type: ignore[misc]
    assert hash(spec) == hash(FilterSpec(1, 0, (6,), "deflate"))


def test_unfiltered_dataset_has_an_empty_pipeline_and_no_codecs(make_dataset):
    from refindex.codecs import codecs_for

    dset = make_dataset()

    assert filters_of(dset.id.get_create_plist()) == []
    assert codecs_for([], dset.dtype, dset.chunks) == []
