"""TIFF files for the tests, written by tifffile, and what tifffile reads back from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile


def values(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values of ``dtype``: a smooth ramp (which image codecs keep near-exact) plus
    noise, NaN and infinities for floats."""
    count = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    if kind in "iu":
        info = np.iinfo(dtype)
        span = min(int(info.max) - int(info.min), 1 << 20)
        data = (np.arange(count) * 7) % span + max(int(info.min), -(1 << 19))
        return data.astype(dtype).reshape(shape)
    data = np.linspace(-1e3, 1e3, count).astype(dtype)
    data.reshape(-1)[:3] = [np.nan, np.inf, -np.inf][:min(3, count)]
    return data.reshape(shape)


def image(shape: tuple[int, ...], dtype: str = "u1") -> np.ndarray:
    """A smooth image (JPEG and WebP compress it to something close; tests compare with
    tifffile's own decode, never with these values)."""
    grids = np.indices(shape, dtype="f8")
    data = sum(np.sin(g / (3 + i)) for i, g in enumerate(grids)) * 40 + 128
    return data.astype(dtype)


def write(path: Path, data: np.ndarray, **kwargs) -> Path:
    """``data`` as a TIFF file (grey pages unless ``photometric`` says otherwise)."""
    kwargs.setdefault("photometric", "minisblack")
    tifffile.imwrite(path, data, **kwargs)
    return path


def read(path: Path, series: int = 0, level: int = 0) -> np.ndarray:
    """What tifffile reads as series ``series``, level ``level``."""
    return tifffile.imread(path, series=series, level=level)


def pyramid(path: Path, data: np.ndarray, levels: int = 3, *, tile=(16, 16),
            compression=None, metadata=None) -> Path:
    """An OME-TIFF pyramid: level 0 ``data`` (axes ending ``YX``), each further level
    halved in y and x, as SubIFDs."""
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(data, subifds=levels - 1, tile=tile, compression=compression,
                  metadata=metadata)
        for level in range(1, levels):
            step = 2 ** level
            tif.write(data[..., ::step, ::step], subfiletype=1, tile=tile,
                      compression=compression)
    return path


def patch(path: Path, offset: int, raw: bytes) -> Path:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(raw)
    return path


def truncate(path: Path, size: int) -> Path:
    with open(path, "r+b") as f:
        f.truncate(size)
    return path


def multi_file_ome(folder: Path, data: np.ndarray, name: str = "mf") -> list[Path]:
    """``data`` (z, y, x) as a multi-file OME-TIFF: one plane per file, every file holding
    the OME-XML that names them all (by file name and UUID), as Bio-Formats writes them."""
    nz, ny, nx = data.shape
    uuids = [f"urn:uuid:00000000-0000-4000-8000-{i:012d}" for i in range(nz)]
    files = [f"{name}{i}.ome.tif" for i in range(nz)]
    tiffdata = "".join(
        f'<TiffData FirstZ="{i}" IFD="0" PlaneCount="1">'
        f'<UUID FileName="{files[i]}">{uuids[i]}</UUID></TiffData>' for i in range(nz))
    pixels = (f'<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="{data.dtype.name}" '
              f'SizeX="{nx}" SizeY="{ny}" SizeZ="{nz}" SizeC="1" SizeT="1" '
              f'PhysicalSizeX="0.25" PhysicalSizeY="0.25" PhysicalSizeZ="1.5">'
              f'<Channel ID="Channel:0:0" SamplesPerPixel="1"/>{tiffdata}</Pixels>')
    paths = []
    for i in range(nz):
        xml = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
               f'UUID="{uuids[i]}"><Image ID="Image:0" Name="{name}">{pixels}</Image></OME>')
        paths.append(folder / files[i])
        tifffile.imwrite(paths[-1], data[i], description=xml, metadata=None)
    return paths


def _segments(stream: bytes) -> list[bytes]:
    """The marker segments of a JPEG stream up to its scan (start of scan and entropy-coded
    data as the last one)."""
    parts, at = [], 2
    while at < len(stream):
        marker = stream[at + 1]
        if marker == 0xDA:  # start of scan: the rest is the image
            parts.append(stream[at:])
            break
        length = int.from_bytes(stream[at + 2:at + 4], "big")
        parts.append(stream[at:at + 2 + length])
        at += 2 + length
    return parts


def jpeg_with_shared_tables(path: Path, data: np.ndarray, tile: tuple[int, int]) -> Path:
    """Grey ``data`` (y, x) as JPEG tiles whose quantisation and Huffman tables sit once in
    the JPEGTables tag (as Aperio SVS and libtiff write them), each tile an abbreviated
    stream without them."""
    import imagecodecs

    ny, nx = tile
    padded = np.zeros((-(-data.shape[0] // ny) * ny, -(-data.shape[1] // nx) * nx), data.dtype)
    padded[:data.shape[0], :data.shape[1]] = data
    tables, tiles = None, []
    for y in range(0, padded.shape[0], ny):
        for x in range(0, padded.shape[1], nx):
            parts = _segments(imagecodecs.jpeg8_encode(padded[y:y + ny, x:x + nx], level=90))
            shared = [p for p in parts if p[1] in (0xDB, 0xC4)]  # DQT, DHT
            tables = tables or b"\xff\xd8" + b"".join(shared) + b"\xff\xd9"
            tiles.append(b"\xff\xd8" + b"".join(p for p in parts if p[1] not in (0xDB, 0xC4,
                                                                             0xE0)))
    tifffile.imwrite(path, iter(tiles), shape=data.shape, dtype=data.dtype, tile=tile,
                     compression="jpeg", photometric="minisblack",
                     extratags=[(347, 7, len(tables), tables, True)])
    return path


def empty_segment(path: Path, segment: int) -> Path:
    """Make strip or tile ``segment`` of the first page empty (offset and byte count 0), as
    GDAL writes tiles that hold only its nodata value (sparse files)."""
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        fields = [(tags[code].valueoffset, tags[code].dtype) for code in (324, 325)
                  if code in tags] or [(tags[code].valueoffset, tags[code].dtype)
                                       for code in (273, 279)]
        order = "little" if tif.byteorder == "<" else "big"
    for where, dtype in fields:
        size = {3: 2, 4: 4, 16: 8}[int(dtype)]
        patch(path, where + segment * size, (0).to_bytes(size, order))
    return path
