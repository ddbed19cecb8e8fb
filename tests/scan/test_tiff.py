"""TIFF, BigTIFF and OME-TIFF files (as tifffile writes them) scanned by refindex and read
back through zarr and xarray equal what tifffile reads, value for value: stripped (rows per
strip dividing the height or not) and tiled, contiguous and separate samples, every
compression a registered codec decodes, both predictors in both byte orders, pyramids and
multi-file datasets; what cannot be read exactly is left out by name; damaged files are
ContainerErrors naming the file and the problem; a remote scan reads only headers and IFDs."""

from __future__ import annotations

import base64
import re

import imagecodecs
import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr

import refindex
from refindex.errors import ChunkDecodeError, ContainerError, UnsupportedFeatureError
from refindex.io import ReadOptions
from refindex.scan import ScanOptions, scan
from refindex.scan.tiff.scanner import IFD_BLOCK
from tests.roundtrip import scan_to_sidecar
from tests.scan import tifffiles

KiB = 1024


def open_group(sidecar) -> zarr.Group:
    return zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
    assert np.array_equal(actual, expected, equal_nan=expected.dtype.kind == "f")


def assert_reads_like_tifffile(path, sidecar, arrays=("0",)) -> None:
    """Each array (``"level"`` or ``"series/level"``) through zarr and xarray equals
    tifffile's read of that series and level."""
    group = open_group(sidecar)
    for name in arrays:
        series, level = (0, int(name)) if "/" not in name else map(int, name.split("/"))
        expected = tifffiles.read(path, series, level)
        assert_same(group[name][...], expected)
        group_path = name.rpartition("/")[0] or None
        with xr.open_dataset(sidecar, engine="refindex", group=group_path) as ds:
            assert_same(ds[name.rpartition("/")[2]].values, expected)


# -- layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bigtiff", [False, True], ids=["tiff", "bigtiff"])
@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("dtype", ["u1", "u2", "i4", "f4", "f8"])
def test_every_dtype_in_both_byte_orders_and_bigtiff(dtype, byteorder, bigtiff, tmp_path):
    path = tifffiles.write(tmp_path / "a.tif", tifffiles.values(dtype, (3, 20, 30)),
                           byteorder=byteorder, bigtiff=bigtiff)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("rows", [4, 7, 64], ids=["dividing", "not-dividing", "one-strip"])
def test_strips_whose_rows_do_not_divide_the_height_read_exactly(rows, tmp_path):
    path = tifffiles.write(tmp_path / "s.tif", tifffiles.values("u2", (3, 20, 30)),
                           rowsperstrip=rows)
    node = scan(path).index.arrays["0"]
    assert node.zarray["chunks"] == [1, min(rows, 20), 30]
    assert node.irregular == (20 % rows != 0 and rows < 20)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_the_short_last_strip_is_its_own_rows_compressed_or_not(compression, tmp_path):
    path = tifffiles.write(tmp_path / "s.tif", tifffiles.values("f4", (37, 41)),
                           rowsperstrip=10, compression=compression)
    node = scan(path).index.arrays["0"]
    assert node.irregular and list(node.grid.axes[0].stored) == [10, 10, 10, 7]
    with tifffile.TiffFile(path) as tif:
        assert list(tif.pages[0].databytecounts)[-1] == (7 * 41 * 4 if not compression
                                                         else node.chunks.length[-1])
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("tile", [(16, 16), (32, 48)])
def test_tiles_with_partial_edge_tiles_read_exactly(tile, tmp_path):
    path = tifffiles.write(tmp_path / "t.tif", tifffiles.values("u2", (2, 50, 70)), tile=tile)
    node = scan(path).index.arrays["0"]
    assert node.zarray["chunks"] == [1, *tile] and not node.irregular
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("planar", ["contig", "separate"])
@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["stripped", "tiled"])
def test_rgb_with_contiguous_or_separate_samples(planar, tile, tmp_path):
    data = tifffiles.values("u1", (2, 3, 37, 41) if planar == "separate" else (2, 37, 41, 3))
    path = tifffiles.write(tmp_path / "rgb.tif", data, photometric="rgb", planarconfig=planar,
                           tile=tile, rowsperstrip=None if tile else 8)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))
    with xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex") as ds:
        assert ds["0"].dims == (("q", "s", "y", "x") if planar == "separate"
                                else ("q", "y", "x", "s"))


@pytest.mark.parametrize("nodata", [None, "-9999"])
@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["stripped", "tiled"])
def test_empty_segments_read_as_the_nodata_value_or_zero(nodata, tile, tmp_path):
    path = tifffiles.write(tmp_path / "e.tif", tifffiles.values("f4", (40, 40)), tile=tile,
                           rowsperstrip=None if tile else 16, compression="zlib",
                           extratags=[(42113, 2, None, nodata, True)] if nodata else None)
    tifffiles.empty_segment(path, 1)
    expected = tifffiles.read(path)
    assert (expected == float(nodata or 0)).sum() >= 16 * 16
    node = scan(path).index.arrays["0"]
    assert node.chunks.source[1] == -1 and node.zarray["fill_value"] == float(nodata or 0)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


def test_a_file_is_tiff_by_its_content_not_its_name(tmp_path):
    path = tifffiles.write(tmp_path / "image.nc", tifffiles.values("u1", (8, 9)))
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


def test_pages_of_different_shapes_are_separate_series(tmp_path):
    path = tmp_path / "multi.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(tifffiles.values("u2", (10, 12)))
        tif.write(tifffiles.values("f4", (3, 7, 9)), compression="zlib")
    index = scan(path).index
    assert sorted(index.arrays) == ["0/0", "1/0"]
    assert index.groups[""]["bioformats2raw.layout"] == 3
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path), ("0/0", "1/0"))


# -- compression and predictors ---------------------------------------------------------------


LOSSLESS = ["zlib", "lzw", "packbits", "zstd", "adobe_deflate", "lzma"]


@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["stripped", "tiled"])
@pytest.mark.parametrize("compression", LOSSLESS)
def test_each_lossless_compression(compression, tile, tmp_path):
    path = tifffiles.write(tmp_path / "c.tif", tifffiles.values("u2", (2, 37, 41)),
                           compression=compression, tile=tile, rowsperstrip=None if tile else 9)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("dtype, predictor", [("u1", 2), ("u2", 2), ("i4", 2), ("f4", 3),
                                              ("f8", 3)])
@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["stripped", "tiled"])
def test_predictors_in_both_byte_orders(dtype, predictor, byteorder, tile, tmp_path):
    path = tifffiles.write(tmp_path / "p.tif", tifffiles.values(dtype, (2, 37, 41)),
                           compression="zlib", predictor=predictor, byteorder=byteorder,
                           tile=tile, rowsperstrip=None if tile else 10)
    node = scan(path).index.arrays["0"]
    assert node.zarray["filters"][0]["id"] == "refindex.tiff_predictor"
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


def test_a_predictor_on_rgb_samples(tmp_path):
    path = tifffiles.write(tmp_path / "p.tif", tifffiles.values("u2", (37, 41, 3)),
                           photometric="rgb", compression="lzw", predictor=2, rowsperstrip=6)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("tile", [None, (16, 16)], ids=["stripped", "tiled"])
@pytest.mark.parametrize("photometric", ["rgb", "minisblack"])
def test_jpeg_with_shared_tables_decodes_as_tifffile_does(photometric, tile, tmp_path):
    shape = (64, 48, 3) if photometric == "rgb" else (64, 48)
    path = tifffiles.write(tmp_path / "j.tif", tifffiles.image(shape), photometric=photometric,
                           compression="jpeg", tile=tile, rowsperstrip=None if tile else 16)
    codec = scan(path).index.arrays["0"].zarray["compressor"]
    with tifffile.TiffFile(path) as tif:
        assert (codec["tables"] is not None) == (tif.pages[0].jpegtables is not None)
    assert codec["id"] == "refindex.tiff_jpeg"
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


def test_jpeg_tiles_without_their_own_tables_decode_with_the_shared_jpegtables(tmp_path):
    path = tifffiles.jpeg_with_shared_tables(tmp_path / "svs.tif", tifffiles.image((40, 50)),
                                             (16, 16))
    with tifffile.TiffFile(path) as tif:
        tables, offset, count = (tif.pages[0].jpegtables, tif.pages[0].dataoffsets[0],
                                 tif.pages[0].databytecounts[0])
    assert tables and b"\xff\xdb" not in path.read_bytes()[offset:offset + count]  # no DQT
    codec = scan(path).index.arrays["0"].zarray["compressor"]
    assert base64.b64decode(codec["tables"]) == tables
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


IMAGE_CODECS = [("webp", "WEBP"), ("jpeg2000", "JPEG2K"), ("png", "PNG"),
                ("jpegxl", "JPEGXL"), ("jpegxr", "JPEGXR")]


@pytest.mark.parametrize("byteorder", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("compression, feature", IMAGE_CODECS)
def test_image_compressions_decode_as_tifffile_does(compression, feature, byteorder, tmp_path):
    if not getattr(imagecodecs, feature).available:
        pytest.skip(f"imagecodecs without {feature}")
    path = tifffiles.write(tmp_path / "w.tif", tifffiles.image((40, 48, 3)), photometric="rgb",
                           compression=compression, tile=(16, 16), byteorder=byteorder)
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("compression, feature", [("jpeg2000", "JPEG2K"), ("png", "PNG"),
                                                  ("jpegxl", "JPEGXL")])
def test_image_compressions_of_16_bit_samples(compression, feature, tmp_path):
    if not getattr(imagecodecs, feature).available:
        pytest.skip(f"imagecodecs without {feature}")
    path = tifffiles.write(tmp_path / "w.tif", tifffiles.image((40, 48), "u2") * 200,
                           compression=compression, tile=(16, 16))
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


def test_lerc_float_tiles(tmp_path):
    if not imagecodecs.LERC.available:
        pytest.skip("imagecodecs without LERC")
    path = tifffiles.write(tmp_path / "l.tif", tifffiles.values("f4", (40, 48)),
                           compression="lerc", tile=(16, 16))
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path))


# -- pyramids, series, multi-file ------------------------------------------------------------


def test_an_ome_pyramid_of_subifds_is_one_array_per_level_with_multiscales(tmp_path):
    data = tifffiles.values("u2", (2, 3, 40, 50))
    path = tifffiles.pyramid(tmp_path / "p.ome.tif", data, compression="zlib", metadata={
        "axes": "TCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    index = scan(path).index
    assert sorted(index.arrays) == ["0", "1", "2"]
    (multiscale,) = index.groups[""]["multiscales"]
    assert [axis["name"] for axis in multiscale["axes"]] == ["t", "c", "y", "x"]
    assert multiscale["axes"][3] == {"name": "x", "type": "space", "unit": "micrometer"}
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert scales[0] == [1.0, 1.0, 0.5, 0.5] and scales[1] == [1.0, 1.0, 1.0, 1.0]
    assert index.arrays["1"].attrs["_ARRAY_DIMENSIONS"] == ["t", "c", "y_1", "x_1"]
    assert "<OME" in index.groups[""]["ome_xml"]
    assert_reads_like_tifffile(path, scan_to_sidecar(path, tmp_path), ("0", "1", "2"))


def test_a_multi_file_ome_tiff_is_one_array_over_its_files(tmp_path):
    paths = tifffiles.multi_file_ome(tmp_path, tifffiles.values("u2", (4, 30, 20)))
    index = scan(paths[2]).index
    assert sorted(source.url for source in index.sources) == sorted(str(p) for p in paths)
    assert index.arrays["0"].attrs["_ARRAY_DIMENSIONS"] == ["z", "y", "x"]
    (multiscale,) = index.groups[""]["multiscales"]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.5, .25, .25]
    assert_reads_like_tifffile(paths[2], scan_to_sidecar(paths[2], tmp_path))


def test_the_other_files_of_a_dataset_are_named_beside_the_url_given(tmp_path):
    paths = tifffiles.multi_file_ome(tmp_path, tifffiles.values("u1", (3, 8, 9)))
    index = scan(paths[1], ScanOptions(url="s3://bucket/plate/mf1.ome.tif")).index
    assert sorted(source.url for source in index.sources) == [
        f"s3://bucket/plate/mf{i}.ome.tif" for i in range(3)]
    assert [source.size for source in index.sources] == [paths[1].stat().st_size] * 3


def test_a_missing_file_of_a_multi_file_ome_tiff_leaves_the_array_out(tmp_path):
    paths = tifffiles.multi_file_ome(tmp_path, tifffiles.values("u1", (3, 8, 9)))
    paths[1].unlink()
    result = scan(paths[0])
    assert "0" not in result.index.arrays
    assert "could not find" in result.left_out["0"]


# -- refused by name --------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, name", [
    ({"data": np.zeros((8, 16), bool)}, "TIFF samples of 1 bits"),
    ({"fillorder": 2}, "TIFF FillOrder 2"),
    ({"compression_tag": 32809}, "TIFF compression THUNDERSCAN (32809)"),
])
def test_what_cannot_be_read_exactly_is_left_out_by_name(kwargs, name, tmp_path):
    data = kwargs.pop("data", tifffiles.values("u1", (8, 16)))
    fillorder = kwargs.pop("fillorder", None)
    compression = kwargs.pop("compression_tag", None)
    path = tifffiles.write(tmp_path / "r.tif", data, extratags=[(65111, 3, 1, 2, True)]
                           if fillorder else None, **kwargs)
    if fillorder:  # tifffile will not write FillOrder: a private tag renumbered to 266
        with tifffile.TiffFile(path) as tif:
            where = tif.pages[0].tags[65111].offset
        tifffiles.patch(path, where, (266).to_bytes(2, "little"))
    if compression:  # a compression tifffile will not write: the tag's value patched
        with tifffile.TiffFile(path) as tif:
            where = tif.pages[0].tags[259].offset
        tifffiles.patch(path, where + 8, compression.to_bytes(2, "little"))
    result = scan(path)
    assert "0" not in result.index.arrays
    assert result.left_out["0"].startswith(name)
    with pytest.raises(UnsupportedFeatureError, match=f"dataset '0': {re.escape(name)}"):
        scan(path, ScanOptions(on_unsupported="error"))


# -- damaged files ---------------------------------------------------------------------------


def test_a_truncated_file_names_the_page_and_segment(tmp_path):
    path = tifffiles.write(tmp_path / "t.tif", tifffiles.values("u2", (40, 50)),
                           rowsperstrip=10)
    tifffiles.truncate(path, path.stat().st_size - 100)
    with pytest.raises(ContainerError, match=r"TIFF page 0, segment 3: bytes .* reach past "
                       "the end of the file") as caught:
        scan(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("damage", ["header", "ifd-offset", "ifd-loop"])
def test_a_damaged_header_or_ifd_chain_is_a_container_error(damage, tmp_path):
    path = tmp_path / "d.tif"
    with tifffile.TiffWriter(path) as tif:
        for _ in range(3):
            tif.write(tifffiles.values("u1", (8, 9)), contiguous=False)
    with tifffile.TiffFile(path) as tif:
        first = tif.pages[0].offset
        ifds = [page.offset for page in tif.pages]
    if damage == "header":
        tifffiles.truncate(path, 6)
    elif damage == "ifd-offset":
        tifffiles.patch(path, 4, (path.stat().st_size + 1000).to_bytes(4, "little"))
    else:  # the second IFD's next-IFD offset points back at the first
        with tifffile.TiffFile(path) as tif:
            count = len(tif.pages[1].tags)
        tifffiles.patch(path, ifds[1] + 2 + 12 * count, first.to_bytes(4, "little"))
    with pytest.raises(ContainerError) as caught:
        scan(path)
    assert str(path) in str(caught.value)


def test_an_ifd_loop_behind_a_pyramid_is_found_before_tifffile_walks_it(tmp_path):
    """Found by the fuzzer: the second IFD emptied (no tags), its next-IFD offset pointing at
    the first, and the OME-XML's offset past the end. tifffile notices the loop when indexing
    pages, but its generic series (the OME-XML unreadable) after a pyramid of SubIFDs
    followed it for ever."""
    path = tmp_path / "loop.ome.tif"
    data = tifffiles.values("u2", (24, 20))
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(data, subifds=1, tile=(16, 16))
        tif.write(data[::2, ::2], subfiletype=1, tile=(16, 16))
        tif.write(tifffiles.values("u1", (5, 6)))
    with tifffile.TiffFile(path) as tif:
        second, description = tif.pages[1].offset, tif.pages[0].tags[270].offset
    tifffiles.patch(path, description + 8, (10**6).to_bytes(4, "little"))
    tifffiles.patch(path, second, (0).to_bytes(2, "little") + (8).to_bytes(4, "little"))
    with pytest.raises(ContainerError, match="circular reference") as caught:
        scan(path)
    assert str(path) in str(caught.value)


def test_a_short_strip_that_decodes_to_more_rows_is_a_chunk_decode_error(tmp_path):
    """The last strip's offset pointed at the first strip: its LZW stream decodes to more
    than the one row the strip holds, which refindex refuses rather than cutting."""
    path = tifffiles.write(tmp_path / "s.tif", tifffiles.values("f4", (9, 11)),
                           rowsperstrip=4, compression="lzw")
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags[273]
        first = tif.pages[0].dataoffsets[0]
        size = 2 if tag.dtype == 3 else 4
    tifffiles.patch(path, tag.valueoffset + 2 * size, first.to_bytes(size, "little"))
    with pytest.raises(ChunkDecodeError, match=r"array '0': a chunk of shape \(1, 11\) "
                       r"decoded to \d+ bytes, not 44"):
        open_group(scan(path).index)["0"][...]


# -- remote -----------------------------------------------------------------------------------


def test_scan_from_s3_reads_back_exactly(s3_env, s3_bucket, tmp_path):
    path = tifffiles.pyramid(tmp_path / "r.ome.tif", tifffiles.values("f4", (3, 64, 80)),
                             compression="zstd", metadata={"axes": "ZYX"})
    sidecar = scan_to_sidecar(s3_env.upload(path, s3_bucket, path.name), tmp_path)
    assert_reads_like_tifffile(path, sidecar, ("0", "1", "2"))


def test_remote_scan_reads_only_headers_and_ifds_in_few_requests(s3_env, s3_bucket, tmp_path):
    """tifffile writes each page's IFD after its tiles: one small read per page (IFD_BLOCK),
    after the container sniff's one block of the engine's size."""
    path = tmp_path / "big.tif"
    tifffiles.write(path, tifffiles.values("u2", (16, 512, 512)), tile=(64, 64))
    url = s3_env.upload(path, s3_bucket, path.name)
    block = 256 * KiB
    result = scan(url, read_options=ReadOptions.from_env().replace(block_size=block))
    assert result.fetched <= block + 16 * IFD_BLOCK < path.stat().st_size / 4, result.fetched
    assert result.requests <= 18, result.requests
    assert_reads_like_tifffile(path, scan_to_sidecar(url, tmp_path))


def test_a_remote_pyramids_subifds_are_fetched_in_one_batch(s3_env, s3_bucket, tmp_path):
    """The IFD chain is read one page at a time (each names the next), but every page's
    SubIFDs are known once the chain is: one batch for all of them, not a read each."""
    path = tifffiles.pyramid(tmp_path / "p.ome.tif", tifffiles.values("u2", (12, 256, 256)),
                             levels=3, tile=(64, 64), compression="zlib")
    url = s3_env.upload(path, s3_bucket, path.name)
    result = scan(url, read_options=ReadOptions.from_env().replace(block_size=64 * KiB))
    assert sorted(result.index.arrays) == ["0", "1", "2"]
    # HEAD, the sniff, 12 reads along the chain, then the blocks of the 24 SubIFDs in one
    # batch (8 blocks here) rather than a read each.
    assert result.requests <= 24, result.requests
    assert_reads_like_tifffile(path, scan_to_sidecar(url, tmp_path), ("0", "1", "2"))


def test_a_multi_file_ome_tiff_read_remotely_is_left_out(s3_env, s3_bucket, tmp_path):
    paths = tifffiles.multi_file_ome(tmp_path, tifffiles.values("u1", (3, 8, 9)))
    urls = [s3_env.upload(p, s3_bucket, p.name) for p in paths]
    result = scan(urls[0])
    assert "0" not in result.index.arrays
    assert result.left_out["0"].startswith("a multi-file OME-TIFF read remotely")
