"""Tar headers for pack's members, built by hand: a POSIX ustar header block for a regular
file (mode 0644, owner 0:0, no user or group name) whose name fits ustar, else the pax
header sequence ``tarfile`` writes. A ustar header is byte for byte the one ``tarfile``
writes in its pax format, or, for a name of 101 to 255 bytes, the same with the name split
into the prefix field; building it costs a few microseconds, ``TarFile.addfile`` far more.
"""

from __future__ import annotations

import struct
import tarfile

BLOCK = tarfile.BLOCKSIZE  # every header and every member's data take whole blocks
RECORD = tarfile.RECORDSIZE  # a tar ends padded to a whole record, as tarfile pads it
MODE = 0o644

_NAME, _PREFIX = 100, 155  # bytes of ustar's name and prefix fields
_LARGEST = 8**11 - 1  # largest size or mtime in ustar's 11 octal digits
# name, mode uid gid, size, mtime, checksum, type linkname magic uname gname devmajor
# devminor, prefix, padding to the block
_HEADER = struct.Struct("100s24s12s12s8s189s155s12x")
_IDS = b"%07o\0" % MODE + b"0000000\0" * 2  # mode, uid, gid
_TYPE_TO_DEVICES = tarfile.REGTYPE + bytes(100) + tarfile.POSIX_MAGIC + bytes(80)
_CHECKSUM_BLANK = b" " * 8  # the checksum is computed with its own field as spaces
_FIXED_SUM = sum(_IDS) + sum(_TYPE_TO_DEVICES) + sum(_CHECKSUM_BLANK)


def member_header(name: str, size: int, mtime: int) -> bytes:
    """The header of a regular file ``name`` of ``size`` bytes modified at ``mtime`` (integer
    seconds since the epoch): one ustar block, or the pax sequence ``tarfile`` writes when
    ustar cannot hold it (name not ASCII or not splittable into 100 + 155 bytes, size or mtime
    beyond 11 octal digits)."""
    fields = _ustar_fields(name, size, mtime)
    if fields is None:
        return _pax_header(name, size, mtime)
    short, prefix, size_field, mtime_field = fields
    checksum = (_FIXED_SUM + sum(short) + sum(prefix) + sum(size_field) + sum(mtime_field))
    return _HEADER.pack(short, _IDS, size_field, mtime_field, b"%06o\0 " % checksum,
                        _TYPE_TO_DEVICES, prefix)


def padding(size: int) -> bytes:
    """The zero bytes that fill the last block of ``size`` bytes of member data."""
    return bytes(-size % BLOCK)


def end_of_archive(size: int) -> bytes:
    """What ends a tar of ``size`` bytes so far: two zero blocks, then zeros to a whole
    record (as ``tarfile`` ends one)."""
    return bytes(2 * BLOCK + -(size + 2 * BLOCK) % RECORD)


def _ustar_fields(name: str, size: int, mtime: int) -> tuple[bytes, ...] | None:
    """Name, prefix, size and mtime fields of a ustar header, or None if it cannot hold them."""
    if not (0 <= size <= _LARGEST and 0 <= mtime <= _LARGEST and name.isascii()):
        return None
    encoded = name.encode("ascii")
    if b"\0" in encoded:
        return None
    prefix = b""
    if len(encoded) > _NAME:
        split = _split(encoded)
        if split is None:
            return None
        prefix, encoded = split
    return encoded, prefix, b"%011o\0" % size, b"%011o\0" % mtime


def _split(name: bytes) -> tuple[bytes, bytes] | None:
    """``name`` split at a ``/`` into a prefix of at most 155 bytes and a name of at most 100
    (the shortest prefix that fits, as ``tarfile``'s ustar format splits), or None."""
    # The slash must leave at most 100 bytes after it and at most 155 before it.
    slash = name.find(b"/", len(name) - _NAME - 1, _PREFIX + 1)
    if slash <= 0 or slash == len(name) - 1:
        return None
    return name[:slash], name[slash + 1:]


def _pax_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, MODE
    # A TarFile's defaults, so this is the header TarFile.addfile would write.
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
