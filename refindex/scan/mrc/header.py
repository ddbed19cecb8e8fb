"""The 1,024-byte MRC2014 header (as the ``mrcfile`` package reads it): its fields, the byte
order from the machine stamp, and the checks that make a truncated or inconsistent header a
ContainerError naming the field.

There is no magic at byte 0: an MRC file has ``MAP`` at byte 208 (``mrcfile`` checks those
three bytes; MRC2014 writes ``"MAP "``). ``refindex.scan`` asks :func:`looks_like_mrc` only
after the HDF5 and NetCDF3 signatures did not match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from refindex.errors import ContainerError

HEADER_SIZE = 1024
MAP_OFFSET = 208
STAMP_OFFSET = 212

# The header's fields at their MRC2014 offsets; the byte order is set when it is known.
_FIELDS = np.dtype({
    "names": ["nx", "ny", "nz", "mode", "nxstart", "nystart", "nzstart", "mx", "my", "mz",
              "cella", "cellb", "mapc", "mapr", "maps", "dmin", "dmax", "dmean", "ispg",
              "nsymbt", "exttyp", "nversion", "origin", "map", "machst", "rms", "nlabl",
              "label"],
    "formats": ["i4"] * 10 + [("f4", 3), ("f4", 3), "i4", "i4", "i4", "f4", "f4", "f4",
                              "i4", "i4", "S4", "i4", ("f4", 3), "S4", ("u1", 4), "f4",
                              "i4", ("S80", 10)],
    "offsets": [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 52, 64, 68, 72, 76, 80, 84, 88, 92,
                104, 108, 196, 208, 212, 216, 220, 224],
    "itemsize": HEADER_SIZE,
})

# Modes whose values a NumPy dtype holds exactly (mrcfile's ``dtype_from_mode``).
MODE_DTYPES = {0: "i1", 1: "i2", 2: "f4", 4: "c8", 6: "u2", 12: "f2"}
# Modes MRC2014 defines that no NumPy / Zarr dtype holds: refused by name.
REFUSED_MODES = {
    3: "MRC mode 3 (complex int16: pairs of int16 that no NumPy or Zarr type holds as complex, "
       "and mrcfile does not read either)",
    101: "MRC mode 101 (4-bit values packed two to a byte, which no Zarr type holds)",
}

# Bits per value of every mode (mode 101 packs two values in a byte).
_MODE_BITS = {0: 8, 1: 16, 2: 32, 3: 32, 4: 64, 6: 16, 12: 16, 101: 4}


@dataclass(frozen=True)
class Header:
    """A parsed MRC header: ``fields`` is the header as one NumPy record in the file's byte
    order (``byte_order`` ``"<"`` or ``">"``); ``stamp_matches`` is False when the machine
    stamp was unrecognised and the byte order came from the header's values instead."""

    fields: np.void
    byte_order: str
    stamp_matches: bool

    def __getitem__(self, name: str):
        return self.fields[name]

    def integer(self, name: str) -> int:
        return int(self.fields[name])

    @property
    def data_offset(self) -> int:
        """Where the data starts: after the header and the extended header."""
        return HEADER_SIZE + self.integer("nsymbt")


def looks_like_mrc(head: bytes) -> bool:
    """Whether a file's first bytes are an MRC header's: ``MAP`` at byte 208 (the rest is
    checked by :func:`read_header`, whose errors name the field)."""
    return head[MAP_OFFSET:MAP_OFFSET + 3] == b"MAP"


def read_header(fileobj: BinaryIO, file_size: int, name: str) -> Header:
    """The MRC header of ``fileobj`` (``file_size`` bytes, ``name`` in errors); a
    ContainerError naming the field when it is truncated or inconsistent."""
    fileobj.seek(0)
    raw = fileobj.read(HEADER_SIZE)
    if len(raw) < HEADER_SIZE or file_size < HEADER_SIZE:
        raise ContainerError(f"{name}: MRC header truncated: the file has {file_size} bytes, "
                             f"fewer than the {HEADER_SIZE}-byte header")
    byte_order, stamp_matches = _byte_order(raw, file_size, name)
    fields = np.frombuffer(raw, _FIELDS.newbyteorder(byte_order))[0]
    header = Header(fields, byte_order, stamp_matches)
    _check(header, file_size, name)
    return header


def _byte_order(raw: bytes, file_size: int, name: str) -> tuple[str, bool]:
    """The byte order the machine stamp says (``0x44 0x44`` or ``0x44 0x41`` little-endian,
    ``0x11 0x11`` big-endian, as mrcfile reads them); for another stamp, the one order in
    which the mode is a known one, the sizes are positive and the data fits in the file (as
    mrcfile's permissive mode guesses, more strictly), else a ContainerError: a wrong guess
    would misread every value."""
    stamp = raw[STAMP_OFFSET:STAMP_OFFSET + 4]
    if stamp[0] == 0x44 and stamp[1] in (0x44, 0x41):
        return "<", True
    if stamp[0] == 0x11 and stamp[1] == 0x11:
        return ">", True
    plausible = [order for order in "<>" if _plausible(raw, order, file_size)]
    if len(plausible) == 1:
        return plausible[0], False
    pretty = " ".join(f"0x{byte:02x}" for byte in stamp)
    raise ContainerError(f"{name}: MRC machine stamp ({pretty}) is neither little- (0x44 0x44) "
                         "nor big-endian (0x11 0x11), and the header's mode, sizes and the "
                         "file size do not tell the byte order either")


def _plausible(raw: bytes, order: str, file_size: int) -> bool:
    """Whether the header read in ``order`` has a known mode, positive sizes, and an extended
    header and data that fit in the file."""
    nx, ny, nz, mode = (int(v) for v in np.frombuffer(raw[:16], f"{order}i4"))
    nsymbt = int(np.frombuffer(raw[92:96], f"{order}i4")[0])
    if mode not in _MODE_BITS or min(nx, ny, nz) <= 0 or nsymbt < 0:
        return False
    return HEADER_SIZE + nsymbt + -(-nx * ny * nz * _MODE_BITS[mode] // 8) <= file_size


def _check(header: Header, file_size: int, name: str) -> None:
    for field in ("nx", "ny", "nz"):
        if header.integer(field) <= 0:
            raise ContainerError(f"{name}: MRC header field {field} is {header.integer(field)}; "
                                 "sizes must be positive")
    mode = header.integer("mode")
    if mode not in MODE_DTYPES and mode not in REFUSED_MODES:
        raise ContainerError(f"{name}: MRC header field mode is {mode}, which MRC2014 does not "
                             "define (0, 1, 2, 3, 4, 6, 12 or 101)")
    nsymbt = header.integer("nsymbt")
    if nsymbt < 0 or header.data_offset > file_size:
        raise ContainerError(f"{name}: MRC header field nsymbt is {nsymbt}: the extended header "
                             f"would end at byte {HEADER_SIZE + nsymbt} but the file has "
                             f"{file_size} bytes")
    nlabl = header.integer("nlabl")
    if not 0 <= nlabl <= 10:
        raise ContainerError(f"{name}: MRC header field nlabl is {nlabl}; a header holds 0 to "
                             "10 labels")
    if is_volume_stack(header) and (header.integer("mz") <= 0
                                    or header.integer("nz") % header.integer("mz")):
        raise ContainerError(f"{name}: MRC header field mz is {header.integer('mz')}: a volume "
                             f"stack (ispg {header.integer('ispg')}) needs mz > 0 dividing nz "
                             f"({header.integer('nz')})")


def is_volume_stack(header: Header) -> bool:
    """Whether ``ispg`` says volume stack (401..630), as mrcfile decides it."""
    return 401 <= header.integer("ispg") <= 630
