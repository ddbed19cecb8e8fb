"""MRC files for the tests, written by mrcfile (which writes the byte order of the data it is
given) or patched byte for byte at the MRC2014 header offsets to make the cases mrcfile will
not write: modes 3 and 101, odd machine stamps, corrupt and truncated headers."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import mrcfile
import numpy as np

# Each mode's dtype, as mrcfile reads it, and a generator of its values.
MODES = {0: "i1", 1: "i2", 2: "f4", 4: "c8", 6: "u2", 12: "f2"}
BYTE_ORDERS = ("<", ">")


def values(dtype: str, shape: tuple[int, ...], byte_order: str = "<") -> np.ndarray:
    """Distinct values of ``dtype`` (with NaN and infinities for floats) in ``byte_order``."""
    count = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    if kind in "iu":
        info = np.iinfo(dtype)
        data = (np.arange(count) * 7919) % (int(info.max) - int(info.min)) + int(info.min)
        data = data.astype(dtype)
    else:
        data = np.linspace(-1e3, 1e3, count).astype(dtype)
        if kind == "c":
            data = data + 1j * data[::-1]
        data.reshape(-1)[:3] = [np.nan, np.inf, -np.inf][:min(3, count)]
    return data.reshape(shape).astype(np.dtype(dtype).newbyteorder(byte_order))


def write(path: Path, data: np.ndarray, *, image_stack: bool = False,
          voxel_size: tuple[float, float, float] = (1.5, 2.0, 2.5),
          origin: tuple[float, float, float] = (10.0, 20.0, 30.0),
          labels: tuple[str, ...] = ("a test file",),
          extended: tuple[bytes, int] | None = None) -> Path:
    """``data`` (2-D image, 3-D volume or ``image_stack``, 4-D volume stack) as an MRC file;
    ``extended``: (type, number of entries) of an FEI-style extended header."""
    with mrcfile.new(path, overwrite=True) as mrc:
        with warnings.catch_warnings():  # NaN among the values is what the tests want
            warnings.simplefilter("ignore", RuntimeWarning)
            mrc.set_data(data)
        if image_stack:
            mrc.set_image_stack()
        mrc.voxel_size = voxel_size
        mrc.header.origin = origin
        for label in labels:
            mrc.add_label(label)
        if extended is not None:
            kind, entries = extended
            dtype = mrcfile.dtypes.get_ext_header_dtype(kind)
            ext = np.zeros(entries, dtype=dtype)
            ext.view("u1")[:] = np.arange(ext.nbytes) % 251  # bytes that are no MRC data
            mrc.set_extended_header(ext)
            mrc.header.exttyp = kind
    return path


def patch(path: Path, offset: int, fmt: str, *value) -> Path:
    """Overwrite header bytes at ``offset`` with ``struct.pack(fmt, *value)`` (``fmt`` with
    its byte order, e.g. ``"<i"``)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, *value))
    return path


def truncate(path: Path, size: int) -> Path:
    with open(path, "r+b") as f:
        f.truncate(size)
    return path


def read(path: Path, permissive: bool = False) -> np.ndarray:
    """What mrcfile reads as the data (a copy)."""
    with warnings.catch_warnings():  # permissive: warnings are how mrcfile tells its guesses
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.open(path, permissive=permissive) as mrc:
            return np.array(mrc.data)


def by_hand(path: Path, data: np.ndarray, *, ispg: int, stamp: bytes, exttyp: bytes = b"",
            extended: bytes = b"", labels: tuple[bytes, ...] = ()) -> Path:
    """``data`` (3-D, in its own byte order) as an MRC2014 file written byte for byte, as IMOD
    writes one (NVERSION 0, any machine stamp), without mrcfile."""
    order = data.dtype.byteorder if data.dtype.byteorder in "<>" else "<"
    mode = {v: k for k, v in MODES.items()}[data.dtype.newbyteorder("<").str[1:]]
    nz, ny, nx = data.shape
    header = bytearray(1024)
    struct.pack_into(f"{order}10i", header, 0, nx, ny, nz, mode, 0, 0, 0, nx, ny, nz)
    struct.pack_into(f"{order}6f3i", header, 40, nx, ny, nz, 90, 90, 90, 1, 2, 3)
    struct.pack_into(f"{order}3f2i", header, 76, 0, 0, 0, ispg, len(extended))
    header[104:108] = exttyp.ljust(4, b"\0")
    header[208:216] = b"MAP " + stamp
    struct.pack_into(f"{order}i", header, 220, len(labels))
    for i, label in enumerate(labels):
        header[224 + 80 * i:224 + 80 * (i + 1)] = label.ljust(80)
    path.write_bytes(bytes(header) + extended + data.tobytes())
    return path
