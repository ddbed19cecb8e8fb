"""DMR++ import: the sidecar built from a DMR++ document alone is the one a scan of the data
file gives, and reads the same values as h5py, bit for bit.

Where DMR++ cannot say what the HDF5 scanner records, the difference is stated here (and in
docs/scanners.md): strings, records and filters other than deflate, shuffle and fletcher32
are left out by name; ``dmrpp:missingdata`` values are inlined where the file has absent
chunks; a lone ``dmrpp:chunk`` (no ``dmrpp:chunks``) states no fill value; flattened
documents carry no group attributes.
"""

from __future__ import annotations

import contextlib
import shutil

import numpy as np
import pytest

from refindex.errors import ContainerError, SourceNotFoundError, UnsupportedFeatureError
from refindex.index import INLINE, Index
from refindex.scan import ScanOptions, scan
from refindex.scan.dmrpp import looks_like_dmrpp
from refindex.sidecar import write_index
from tests.roundtrip import assert_xarray_matches, assert_zarr_matches
from tests.scan.dmrppfiles import granule, plain_hdf5, write_dmrpp

NOT_STATED = "DMR++ does not state their stored form exactly; scan the data file itself"


def assert_same_index(direct: Index, imported: Index, arrays: set[str] | None = None,
                      groups: bool = True) -> None:
    """Sources, groups and every array in both (or ``arrays``): Zarr metadata, attributes
    and their dtypes, chunk tables and inline chunks."""
    assert [(s.url, s.size, s.etag) for s in direct.sources] == [
        (s.url, s.size, s.etag) for s in imported.sources]
    if groups:
        assert direct.groups == imported.groups
        assert direct.group_attr_dtypes == imported.group_attr_dtypes
    names = set(direct.arrays) & set(imported.arrays) if arrays is None else arrays
    for path in sorted(names):
        a, b = direct.arrays[path], imported.arrays[path]
        assert a.zarray == b.zarray, path
        assert a.attrs == b.attrs, path
        assert a.attr_dtypes == b.attr_dtypes, path
        assert np.array_equal(a.chunks.source, b.chunks.source), path
        referenced = a.chunks.source >= 0  # an inline chunk's offset and length mean nothing
        for column in ("offset", "length"):
            assert np.array_equal(getattr(a.chunks, column)[referenced],
                                  getattr(b.chunks, column)[referenced]), path
        assert a.chunks.inline == b.chunks.inline, path


@pytest.fixture
def nc(tmp_path):
    return granule(tmp_path / "granule.nc")


def test_a_granule_imports_as_the_scan_of_its_data_file(nc):
    direct = scan(nc).index
    imported = scan(write_dmrpp(nc)).index
    assert set(direct.arrays) == set(imported.arrays) and not imported.left_out
    assert_same_index(direct, imported)
    # What the granule holds, so the comparison covers it.
    tas = imported.arrays["tas"]
    assert tas.zarray["filters"] == [{"id": "shuffle", "elementsize": 4},
                                     {"id": "zlib", "level": 4}]
    assert tas.zarray["fill_value"] == float(np.float32(1e20))
    assert imported.arrays["sparse"].zarray["filters"] == [{"id": "fletcher32"}]
    assert (imported.arrays["sparse"].chunks.source == -1).sum() == 13  # 2 of 15 written
    assert (imported.arrays["never"].chunks.source == -1).all()
    assert imported.arrays["obs/deeper/grid"].attrs["_ARRAY_DIMENSIONS"] == ["x", "station"]
    assert imported.arrays["scalar"].zarray["shape"] == []
    assert imported.arrays["lat"].chunks.inline  # dimension coordinates copied, as a scan does


def test_values_read_from_the_import_equal_h5py(nc, tmp_path):
    sidecar = tmp_path / "imported.json"
    write_index(scan(write_dmrpp(nc)).index, sidecar)
    assert_zarr_matches(nc, sidecar)
    assert_xarray_matches(nc, sidecar, group="obs")


def test_compact_big_endian_and_unwritten_datasets_import_as_scanned(tmp_path):
    h5 = plain_hdf5(tmp_path / "plain.h5")
    direct = scan(h5).index
    imported = scan(write_dmrpp(h5)).index
    assert imported.left_out == {
        "lzf": "filter 'lzf'; DMR++ states deflate, shuffle and fletcher32 only; scan the data "
               "file itself",
        "records": f"DAP4 Structure variable; {NOT_STATED}",
        "space_padded": "space-padded strings: HDF5 strips the spaces on read; scan the data "
                        "file itself"}
    assert_same_index(direct, imported)
    assert imported.arrays["big_endian"].zarray["dtype"] == ">f8"
    assert imported.arrays["compact"].chunks.source.tolist() == [INLINE]
    assert imported.arrays["unwritten"].zarray["fill_value"] == -1.5
    assert imported.arrays["codes"].zarray["dtype"] == "|S8"  # NUL-padded: exact
    assert imported.arrays["padded_fill"].zarray["fill_value"] == "TkEAAA=="
    assert imported.arrays["letters"].zarray["dtype"] == "|S1"
    assert all(name.startswith("phony_dim_")  # as the scan names them (compared above)
               for name in imported.arrays["unwritten"].attrs["_ARRAY_DIMENSIONS"])
    sidecar = tmp_path / "plain.json"
    write_index(imported, sidecar)
    assert_zarr_matches(h5, sidecar, skip=frozenset({"lzf", "records", "space_padded"}))


def test_missingdata_values_are_inlined_and_read_the_same(nc, tmp_path):
    direct = scan(nc).index
    imported = scan(write_dmrpp(nc, missing="missingdata")).index
    # The file has no chunk of "never"; the document holds its values instead.
    never = imported.arrays["never"]
    assert never.chunks.source.tolist() == [INLINE]
    assert never.zarray["chunks"] == [45, 30]
    assert_same_index(direct, imported, set(direct.arrays) - {"never"} - _LONE)
    sidecar = tmp_path / "missing.json"
    write_index(imported, sidecar)
    assert_zarr_matches(nc, sidecar)


_LONE = {"lat", "lon", "lat_bnds", "obs/station", "scalar"} | {
    f"obs/v_{c}" for c in ("i1", "u1", "i2", "u2", "u4", "i8", "u8", "f4")}


def test_a_lone_chunk_states_no_fill_value(nc, tmp_path):
    direct = scan(nc).index
    imported = scan(write_dmrpp(nc, contiguous="chunk")).index
    for path in _LONE:  # the contiguous ones: every element stored, none ever filled
        assert imported.arrays[path].zarray["fill_value"] is None
        imported.arrays[path].zarray["fill_value"] = direct.arrays[path].zarray["fill_value"]
    assert_same_index(direct, imported)


def test_flattened_names_place_variables_in_their_groups(nc):
    direct = scan(nc).index
    imported = scan(write_dmrpp(nc, flatten=True, byte_type="Byte")).index
    assert set(imported.groups) == {"", "obs", "obs/deeper"}
    assert imported.groups["obs"] == {}  # a flattened document has no group attributes
    assert_same_index(direct, imported, groups=False)


def test_a_dmrpp_is_recognised_by_content_not_by_name(nc, tmp_path):
    document = write_dmrpp(nc, tmp_path / "description.xml")
    assert looks_like_dmrpp(document.read_bytes()[:4096])
    assert scan(document).index.sources[0].url == str(nc)
    named = tmp_path / "really-hdf5.dmrpp"
    shutil.copy(nc, named)
    assert scan(named).index.sources[0].url == str(named)


def test_href_relative_to_the_document_and_hyrax_placeholder(nc, tmp_path):
    relative = write_dmrpp(nc, href="granule.nc")
    assert scan(relative).index.sources[0].url == str(nc)
    placeholder = write_dmrpp(nc, href="OPeNDAP_DMRpp_DATA_ACCESS_URL")
    assert scan(placeholder).index.sources[0].url == str(nc)
    elsewhere = tmp_path / "copy.xml"
    shutil.copy(placeholder, elsewhere)
    with pytest.raises(ContainerError, match="placeholder"):
        scan(elsewhere)


def test_a_missing_href_is_an_error(nc):
    with pytest.raises(ContainerError, match="without dmrpp:href.*--dmrpp"):
        scan(write_dmrpp(nc, href=""))


def test_a_missing_data_file_is_an_error(nc, tmp_path):
    document = write_dmrpp(nc, href=str(tmp_path / "gone.nc"))
    with pytest.raises(SourceNotFoundError):
        scan(document)


def test_chunks_past_the_end_of_the_data_file_are_an_error(nc, tmp_path):
    short = tmp_path / "short.nc"
    short.write_bytes(nc.read_bytes()[:20000])
    document = write_dmrpp(nc, href=str(short))
    with pytest.raises(ContainerError, match="past the end of the data file"):
        scan(document)


def test_document_type_declarations_are_refused(nc, tmp_path):
    laughs = tmp_path / "laughs.dmrpp"
    text = write_dmrpp(nc).read_text(encoding="latin-1")
    bomb = ('<!DOCTYPE Dataset [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">'
                      for p, n in zip("abcdefgh", "bcdefghi", strict=True)) + "]>\n")
    head, _, rest = text.partition("\n")
    laughs.write_text(f"{head}\n{bomb}{rest.replace('granule', '&i;', 1)}",
                      encoding="latin-1")
    with pytest.raises(ContainerError, match="document type or entity declaration"):
        scan(laughs)


@pytest.mark.parametrize("change, message", [
    (("</Dataset>", "</Datase>"), "malformed DMR\\+\\+ XML"),
    (('chunkPositionInArray="[0,0,16]"', 'chunkPositionInArray="[0,0,15]"'),
     "not the start of a chunk"),
    (('<Dim name="/lat"/>', '<Dim name="/latitude"/>'), "dimension '/latitude' is not declared"),
    (('type="Float32"><Value>0.5', 'type="Float33"><Value>0.5'), "not a DAP4 atomic type"),
    (('type="Int16"><Value>3<', 'type="Int16"><Value>300000<'), "not a Int16"),
    (('offset="', 'offset="x'), "without a whole offset"),
    (('byteOrder="LE"', 'byteOrder="ME"'), "neither LE nor BE"),
    (('type="Float32"><Value>0.5', 'type="Float32"><Value>1e40'), "does not fit Float32"),
    (('<dmrpp:chunkDimensionSizes>1 20 16<', '<dmrpp:chunkDimensionSizes>1 20 0<'),
     "do not fit shape"),
    (('<dmrpp:v c="3">a</dmrpp:v>', '<dmrpp:v c="30">a</dmrpp:v>'), "vlsa holds more than 7"),
    (('<dmrpp:v c="3">a</dmrpp:v>', '<dmrpp:v>a</dmrpp:v>'), "vlsa holds 5 values for 7"),
])
def test_malformed_documents_are_errors_naming_what_is_wrong(nc, change, message):
    document = write_dmrpp(nc)
    text = document.read_text(encoding="latin-1")
    assert change[0] in text
    document.write_text(text.replace(change[0], change[1], 1), encoding="latin-1")
    with pytest.raises(ContainerError, match=message):
        scan(document)


def test_strict_refuses_what_dmrpp_cannot_state(tmp_path):
    h5 = plain_hdf5(tmp_path / "plain.h5")
    with pytest.raises(UnsupportedFeatureError, match="'/lzf'.*filter 'lzf'"):
        scan(write_dmrpp(h5), ScanOptions(on_unsupported="error"))


def test_strings_without_their_values_are_left_out(nc):
    document = write_dmrpp(nc)
    text = document.read_text(encoding="latin-1")
    start, end = text.index("<dmrpp:vlsa>"), text.index("</dmrpp:vlsa>")
    document.write_text(text[:start] + text[end + len("</dmrpp:vlsa>"):], encoding="latin-1")
    imported = scan(document).index
    assert imported.left_out["names"] == (
        f"variable-length strings without their values (dmrpp:vlsa); {NOT_STATED}")


def test_large_contiguous_rows_split_as_a_scan_splits_them(tmp_path):
    import h5py

    h5 = tmp_path / "large.h5"
    with h5py.File(h5, "w") as f:
        # 1,031 rows (a prime) of 8,800 bytes: the last ~8 MiB block reaches past the values,
        # which only the file's size allows.
        f.create_dataset("large", data=np.arange(1031 * 1100, dtype="f8").reshape(1031, 1100))
        f.create_dataset("after", data=np.zeros(7_800_000, dtype="u1"))
    direct = scan(h5).index
    imported = scan(write_dmrpp(h5)).index
    assert direct.arrays["large"].zarray["chunks"][0] < 1031
    assert_same_index(direct, imported)


def test_the_command_line_reports_a_bad_document_in_one_line(nc, tmp_path, capsys):
    from refindex.cli import main

    document = write_dmrpp(nc, href="")
    assert main(["scan", str(document), "-o", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "without dmrpp:href" in err
    assert not (tmp_path / "out.json").exists()


def test_dmrpp_option_names_one_source(nc, tmp_path, capsys):
    from refindex.cli import main

    assert main(["scan", "--dmrpp", str(nc), str(nc), "-o", str(tmp_path / "c")]) == 2
    assert "--dmrpp" in capsys.readouterr().err


def test_dmrpp_option_reads_the_document_beside_a_local_granule(nc, tmp_path):
    from refindex.cli import main
    from refindex.sidecar import load_index

    write_dmrpp(nc)
    out = tmp_path / "local.json"
    assert main(["scan", "--dmrpp", str(nc), "-o", str(out)]) == 0
    assert_same_index(scan(nc).index, load_index(out))


def test_a_truncated_document_is_an_error_wherever_it_is_cut(nc, tmp_path):
    data = write_dmrpp(nc).read_bytes()
    cut = tmp_path / "cut.dmrpp"
    for end in range(400, len(data) - 1, max(1, len(data) // 40)):
        cut.write_bytes(data[:end])
        with pytest.raises(ContainerError, match=str(cut)):
            scan(cut)


def test_mutated_documents_scan_or_fail_with_a_refindex_error(nc, tmp_path):
    """Digits changed where they matter (sizes, offsets, positions, values, fill values): the
    scan gives an index or a RefindexError, never another exception."""
    from refindex.errors import RefindexError

    data = bytearray(write_dmrpp(nc, missing="missingdata").read_bytes())
    digits = [i for i, byte in enumerate(data) if chr(byte).isdigit() and i > 300]
    rng = np.random.default_rng(5)
    mutant = tmp_path / "mutant.dmrpp"
    for _ in range(300):
        changed = bytearray(data)
        for position in rng.choice(digits, 2):
            changed[position] = b"0123456789-9x"[rng.integers(13)]
        mutant.write_bytes(bytes(changed))
        with contextlib.suppress(RefindexError):
            scan(mutant)


def test_a_grid_of_implausibly_many_chunks_is_refused_before_it_is_allocated(tmp_path):
    h5 = plain_hdf5(tmp_path / "plain.h5")
    document = write_dmrpp(h5)
    text = document.read_text(encoding="latin-1")
    text = text.replace('<Dim size="4"/>\n    <Dim size="6"/>',
                        '<Dim size="4000000"/>\n    <Dim size="6000000"/>')
    document.write_text(text, encoding="latin-1")
    with pytest.raises(ContainerError, match="big_endian.*chunks.*refused"):
        scan(document)


def test_missing_data_larger_than_max_inline_is_left_out_before_inflating(nc):
    imported = scan(write_dmrpp(nc, missing="missingdata"), ScanOptions(max_inline=1000)).index
    assert imported.left_out["never"] == ("dmrpp:missingdata values of 10,800 bytes; raise "
                                          "--max-inline")


def test_a_document_without_a_version_lists_its_filters_in_the_old_order(nc):
    document = write_dmrpp(nc)
    text = document.read_text(encoding="latin-1")
    assert 'compressionType="shuffle deflate"' in text
    # Before dmrpp:version, build_dmrpp wrote the filters the other way round.
    text = text.replace(' dmrpp:version="3.21.0-test"', "").replace(
        'compressionType="shuffle deflate"', 'compressionType="deflate shuffle"')
    document.write_text(text, encoding="latin-1")
    assert_same_index(scan(nc).index, scan(document).index)
