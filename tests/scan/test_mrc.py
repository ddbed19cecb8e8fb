"""MRC2014 files (as mrcfile writes them) scanned by refindex and read back through zarr and
xarray equal what mrcfile reads, bit for bit and in the stored byte order: every mode, both
byte orders, images, image stacks, volumes and volume stacks, with and without extended
headers; the header's voxel size, origin and labels are attributes; a remote scan reads only
the header; a corrupt or truncated header is a ContainerError naming the field."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.io import ReadOptions
from refindex.scan import ScanOptions, blocks, scan
from refindex.scan.json_values import float_from_json
from tests.roundtrip import scan_to_sidecar
from tests.scan import mrcfiles
from tests.scan.mrcfiles import BYTE_ORDERS, MODES

KiB = 1024


def open_data(sidecar) -> zarr.Array:
    return zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)["data"]


def assert_reads_like_mrcfile(path, sidecar, dims: list[str]) -> None:
    """zarr gives mrcfile's data in its stored dtype, bit for bit; xarray the same values on
    ``dims``."""
    expected = mrcfiles.read(path)
    array = open_data(sidecar)
    assert array.dtype == expected.dtype
    actual = array[...]
    assert actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()
    assert array.attrs["_ARRAY_DIMENSIONS"] == dims
    with xr.open_dataset(sidecar, engine="refindex") as ds:
        assert list(ds["data"].dims) == dims
        assert ds["data"].values.astype(expected.dtype).tobytes() == expected.tobytes()


@pytest.mark.parametrize("order", BYTE_ORDERS, ids=["little", "big"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_in_both_byte_orders_reads_like_mrcfile(mode, order, tmp_path):
    path = mrcfiles.write(tmp_path / "v.mrc", mrcfiles.values(MODES[mode], (3, 5, 7), order))
    with mrcfile.open(path) as mrc:
        assert int(mrc.header.mode) == mode and mrc.data.dtype.byteorder in "|" + order
    assert_reads_like_mrcfile(path, scan_to_sidecar(path, tmp_path), ["z", "y", "x"])


@pytest.mark.parametrize("shape, image_stack, dims", [
    ((6, 9), False, ["y", "x"]),
    ((4, 6, 9), True, ["stack", "y", "x"]),
    ((4, 6, 9), False, ["z", "y", "x"]),
    ((3, 4, 6, 9), False, ["stack", "z", "y", "x"]),
], ids=["image", "image-stack", "volume", "volume-stack"])
def test_images_stacks_and_volumes_have_mrcfiles_shape(shape, image_stack, dims, tmp_path):
    data = mrcfiles.values("f4", shape)
    path = mrcfiles.write(tmp_path / "s.mrc", data, image_stack=image_stack)
    assert_reads_like_mrcfile(path, scan_to_sidecar(path, tmp_path), dims)


@pytest.mark.parametrize("kind", [b"FEI1", b"FEI2"])
@pytest.mark.parametrize("order", BYTE_ORDERS, ids=["little", "big"])
def test_an_extended_header_is_skipped_and_its_type_recorded(kind, order, tmp_path):
    path = mrcfiles.write(tmp_path / "e.mrc", mrcfiles.values("i2", (4, 6, 9), order),
                          extended=(kind, 4))
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_reads_like_mrcfile(path, sidecar, ["z", "y", "x"])
    attrs = zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2).attrs
    with mrcfile.open(path) as mrc:
        assert attrs["extended_header_bytes"] == int(mrc.header.nsymbt) > 0
    assert attrs["extended_header_type"] == kind.decode()


def test_header_fields_voxel_size_origin_and_labels_are_attributes(tmp_path):
    path = mrcfiles.write(tmp_path / "a.mrc", mrcfiles.values("f4", (4, 6, 9), ">"),
                          voxel_size=(0.44825, 0.3925, 0.45875), origin=(1.0, -2.5, 3.25),
                          labels=("first label", "second"))
    with xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex") as ds:
        attrs = ds.attrs
    with mrcfile.open(path) as mrc:
        voxel = mrc.voxel_size
        assert attrs["voxel_size"] == {a: float(voxel[a]) for a in "xyz"}
        assert attrs["origin"] == {a: float(mrc.header.origin[a]) for a in "xyz"}
        assert attrs["labels"] == [bytes(label).decode().strip()
                                   for label in mrc.header.label[:mrc.header.nlabl]]
        assert attrs["labels"][-2:] == ["first label", "second"]
        header = attrs["mrc_header"]
        for field in ("nx", "ny", "nz", "mode", "mx", "my", "mz", "ispg", "nsymbt", "nversion"):
            assert header[field] == int(mrc.header[field]), field
        assert float_from_json(header["dmax"]) == float(mrc.header.dmax) or np.isnan(
            float_from_json(header["dmax"])) and np.isnan(mrc.header.dmax)
        assert header["map"] == "MAP " and header["machst"] == [0x11, 0x11, 0, 0]
    assert attrs["byte_order"] == "big"


def test_multiscales_scale_each_axis_by_the_voxel_size(tmp_path):
    path = mrcfiles.write(tmp_path / "m.mrc", mrcfiles.values("f4", (2, 3, 4, 5)),
                          voxel_size=(1.5, 2.0, 2.5))
    attrs = zarr.open_group(refindex.open_store(scan_to_sidecar(path, tmp_path)), mode="r",
                            zarr_format=2).attrs
    (multiscale,) = attrs["multiscales"]
    assert [axis["name"] for axis in multiscale["axes"]] == ["stack", "z", "y", "x"]
    assert multiscale["axes"][1] == {"name": "z", "type": "space", "unit": "angstrom"}
    (dataset,) = multiscale["datasets"]
    assert dataset["path"] == "data"
    assert dataset["coordinateTransformations"] == [{"type": "scale",
                                                     "scale": [1.0, 2.5, 2.0, 1.5]}]


def test_without_a_voxel_size_there_are_no_multiscales(tmp_path):
    path = mrcfiles.write(tmp_path / "z.mrc", mrcfiles.values("f4", (2, 3, 4)),
                          voxel_size=(0.0, 0.0, 0.0))
    assert "multiscales" not in scan(path).index.groups[""]


@pytest.mark.parametrize("mode, name", [(3, "MRC mode 3 (complex int16"),
                                        (101, "MRC mode 101 (4-bit")])
def test_modes_without_a_dtype_are_refused_by_name(mode, name, tmp_path):
    path = mrcfiles.write(tmp_path / "c.mrc", mrcfiles.values("f4", (2, 3, 4)))
    mrcfiles.patch(path, 12, "<i", mode)
    result = scan(path)
    assert "data" not in result.index.arrays
    assert result.left_out["data"].startswith(name)
    assert result.index.groups[""]["mrc_header"]["mode"] == mode
    with pytest.raises(UnsupportedFeatureError, match=r"dataset 'data': MRC mode"):
        scan(path, ScanOptions(on_unsupported="error"))


@pytest.mark.parametrize("dtype", ["i2", "i1"])
def test_an_unrecognised_machine_stamp_takes_the_byte_order_the_header_allows(dtype, tmp_path):
    """As mrcfile's permissive mode: little-endian mode 1 read big-endian is 0x01000000, no
    mode; mode 0 is 0 either way, but nx 5 read the other way round (0x05000000) makes data
    larger than the file."""
    for order in BYTE_ORDERS:
        path = mrcfiles.write(tmp_path / f"{order == '<'}.mrc",
                              mrcfiles.values(dtype, (2, 3, 5), order))
        big = order == ">" and dtype != "i1"  # mrcfile writes int8 files little-endian
        mrcfiles.patch(path, 212, "4B", 0, 0, 0, 0)
        assert scan(path).skipped == [f"MRC machine stamp unrecognised: read as "
                                      f"{'big' if big else 'little'}-endian, the one "
                                      "byte order in which the header's mode and sizes are valid "
                                      "and the data fits in the file"]
        sidecar = scan_to_sidecar(path, tmp_path)
        expected = mrcfiles.read(path, permissive=True)
        assert open_data(sidecar)[...].tobytes() == expected.tobytes()
        assert open_data(sidecar).dtype == expected.dtype


def test_the_little_endian_stamp_0x44_0x41_is_little_endian(tmp_path):
    path = mrcfiles.write(tmp_path / "s.mrc", mrcfiles.values("f4", (2, 3, 4)))
    mrcfiles.patch(path, 212, "4B", 0x44, 0x41, 0, 0)
    assert_reads_like_mrcfile(path, scan_to_sidecar(path, tmp_path), ["z", "y", "x"])


def test_a_file_is_mrc_by_its_content_not_its_name(tmp_path):
    path = mrcfiles.write(tmp_path / "volume.h5", mrcfiles.values("f4", (2, 3, 4)))
    assert_reads_like_mrcfile(path, scan_to_sidecar(path, tmp_path), ["z", "y", "x"])
    (tmp_path / "not.mrc").write_bytes(bytes(2048))
    with pytest.raises(ContainerError, match="not an HDF5 or NetCDF4 file, nor NetCDF3, TIFF, MRC"):
        scan(tmp_path / "not.mrc")


# -- row blocks -------------------------------------------------------------------------------


def test_large_data_is_cut_into_row_blocks_along_the_slowest_axis(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "CONTIGUOUS_BLOCK", 4 * KiB)
    path = mrcfiles.write(tmp_path / "big.mrc", mrcfiles.values("f4", (16, 16, 32)))
    index = scan(path).index
    node = index.arrays["data"]
    assert node.zarray["chunks"] == [2, 16, 32]  # 4 KiB: two sections of 2 KiB
    assert len(node.chunks) == 8
    with mrcfile.open(path) as mrc:
        start = 1024 + int(mrc.header.nsymbt)
    assert list(node.chunks.offset) == [start + i * 4 * KiB for i in range(8)]
    assert_reads_like_mrcfile(path, scan_to_sidecar(path, tmp_path), ["z", "y", "x"])


def test_a_volume_stack_is_cut_into_row_blocks_of_each_volume(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "CONTIGUOUS_BLOCK", 4 * KiB)
    path = mrcfiles.write(tmp_path / "vs.mrc", mrcfiles.values("f4", (3, 5, 16, 32)))
    node = scan(path).index.arrays["data"]
    assert node.zarray["chunks"][0] == 1 and node.zarray["chunks"][1] < 5
    assert_reads_like_mrcfile(path, scan_to_sidecar(path, tmp_path),
                              ["stack", "z", "y", "x"])


# -- corrupt and truncated headers --------------------------------------------------------


@pytest.mark.parametrize("offset, fmt, value, message", [
    (0, "<i", 0, "field nx is 0"),
    (4, "<i", -3, "field ny is -3"),
    (12, "<i", 7, "field mode is 7"),
    (92, "<i", 1 << 30, "field nsymbt is 1073741824"),
    (92, "<i", -4, "field nsymbt is -4"),
    (220, "<i", 11, "field nlabl is 11"),
    (8, "<i", 1000, r"MRC data \(nx 4 × ny 3 × nz 1000 values of mode 2\) ends at byte"),
])
def test_an_inconsistent_header_names_the_field(offset, fmt, value, message, tmp_path):
    path = mrcfiles.write(tmp_path / "bad.mrc", mrcfiles.values("f4", (2, 3, 4)))
    mrcfiles.patch(path, offset, fmt, value)
    with pytest.raises(ContainerError, match=message) as caught:
        scan(path)
    assert str(path) in str(caught.value)


def test_a_volume_stack_whose_mz_does_not_divide_nz_names_mz(tmp_path):
    path = mrcfiles.write(tmp_path / "vs.mrc", mrcfiles.values("f4", (2, 3, 4, 5)))
    mrcfiles.patch(path, 36, "<i", 4)
    with pytest.raises(ContainerError, match="field mz is 4: a volume stack"):
        scan(path)


def test_truncated_data_and_a_truncated_header_are_container_errors(tmp_path):
    path = mrcfiles.write(tmp_path / "t.mrc", mrcfiles.values("f4", (2, 3, 4)))
    mrcfiles.truncate(path, path.stat().st_size - 1)
    with pytest.raises(ContainerError, match="the file is truncated"):
        scan(path)
    mrcfiles.truncate(path, 600)
    with pytest.raises(ContainerError, match="MRC header truncated: the file has 600 bytes"):
        scan(path)


def test_an_unusable_machine_stamp_is_a_container_error(tmp_path):
    path = mrcfiles.write(tmp_path / "s.mrc", mrcfiles.values("f4", (2, 3, 4)))
    mrcfiles.patch(path, 212, "4B", 0x12, 0x34, 0, 0)
    mrcfiles.patch(path, 12, "<i", 0x02000002)  # a known mode in neither byte order
    with pytest.raises(ContainerError, match=r"MRC machine stamp \(0x12 0x34 0x00 0x00\) is "
                       "neither"):
        scan(path)


# -- remote ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", BYTE_ORDERS, ids=["little", "big"])
def test_scan_from_s3_reads_back_exactly(order, s3_env, s3_bucket, tmp_path):
    path = mrcfiles.write(tmp_path / "r.mrc", mrcfiles.values("f2", (3, 4, 6, 9), order),
                          extended=(b"FEI1", 2))
    sidecar = scan_to_sidecar(s3_env.upload(path, s3_bucket, path.name), tmp_path)
    assert_reads_like_mrcfile(path, sidecar, ["stack", "z", "y", "x"])


def test_remote_scan_reads_only_the_header(s3_env, s3_bucket, tmp_path):
    path = mrcfiles.write(tmp_path / "big.mrc", mrcfiles.values("i2", (64, 128, 128)),
                          extended=(b"FEI1", 8))
    url = s3_env.upload(path, s3_bucket, path.name)
    block = 64 * KiB
    result = scan(url, read_options=ReadOptions.from_env().replace(block_size=block))
    # The container sniff reads the first 64 KiB + 8 bytes: two blocks, header included;
    # one HEAD before them.
    assert result.fetched <= 2 * block < path.stat().st_size / 16
    assert result.requests <= 3, result.requests


def test_a_section_is_read_with_one_request_for_its_row_block(http_server, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(blocks, "CONTIGUOUS_BLOCK", 4 * KiB)
    path = mrcfiles.write(tmp_path / "slice.mrc", mrcfiles.values("f4", (16, 16, 32)),
                          extended=(b"FEI1", 1))
    index = scan(http_server.put(path.name, path.read_bytes())).index
    http_server.log.clear()
    store = refindex.open_store(index, cache_size=0, readahead_size=0)
    section = zarr.open_group(store, mode="r", zarr_format=2)["data"][5]
    assert section.tobytes() == mrcfiles.read(path)[5].tobytes()
    start = 1024 + index.groups[""]["extended_header_bytes"] + 2 * 4 * KiB  # block 2: z 4, 5
    assert [rng for method, _, rng in http_server.log if method == "GET"] == [
        f"bytes={start}-{start + 4 * KiB - 1}"]


def test_a_transposed_map_names_its_axes_by_mapc_mapr_maps(tmp_path):
    """Columns along y, rows along x (mapc 2, mapr 1, maps 3): the data is (z, x, y), and
    the multiscale scales each axis by its own voxel size."""
    path = mrcfiles.write(tmp_path / "t.mrc", mrcfiles.values("f4", (2, 3, 4)),
                          voxel_size=(1.0, 2.0, 3.0))
    mrcfiles.patch(path, 64, "<3i", 2, 1, 3)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_reads_like_mrcfile(path, sidecar, ["z", "x", "y"])
    (multiscale,) = scan(path).index.groups[""]["multiscales"]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("order, stamp", [("<", b"\x44\x41\0\0"), (">", b"\x11\x11\0\0")])
def test_a_file_written_byte_for_byte_as_mrc2014_says_reads_the_same(order, stamp, tmp_path):
    """Not mrcfile's writer: an IMOD-style header (stamp 0x44 0x41, NVERSION 0) with a SERI
    extended header of 1,024 bytes that would misread as values if not skipped."""
    data = mrcfiles.values("i2", (3, 4, 5), order)
    path = mrcfiles.by_hand(tmp_path / "imod.mrc", data, ispg=1, stamp=stamp, exttyp=b"SERI",
                            extended=bytes(range(256)) * 4, labels=(b"IMOD label",))
    assert mrcfiles.read(path).tobytes() == data.tobytes()
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_reads_like_mrcfile(path, sidecar, ["z", "y", "x"])
    attrs = scan(path).index.groups[""]
    assert (attrs["extended_header_type"], attrs["extended_header_bytes"]) == ("SERI", 1024)
    assert attrs["labels"] == ["IMOD label"]
