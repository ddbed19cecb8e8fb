"""The members of a zip archive (zip64 included): Python's zipfile reads the central
directory at the end of the archive, then one batch of engine reads fetches every member's
local header, which says where its data starts.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

from refindex.errors import ContainerError
from refindex.index import Source
from refindex.io import ReadEngine
from refindex.scan.zarrstore.members import ENCRYPTED, MemberTable, read_ranges

_LOCAL_HEADER = struct.Struct(zipfile.structFileHeader)  # 30 bytes, then name and extra field
_LOCAL_SIGNATURE = zipfile.stringFileHeader
_BATCH = 65536  # local headers read per engine call (bounds the memory of a huge archive)


def list_zip(fileobj: BinaryIO, size: int, source: Source, location: str,
             engine: ReadEngine) -> MemberTable:
    """Every file of the zip archive ``fileobj`` (``size`` bytes, read at ``location``) as a
    member of one source, with its compression method and CRC-32."""
    table = MemberTable(location)
    source_id = table.add_source(source, location)
    try:
        with zipfile.ZipFile(fileobj) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError, IndexError, KeyError, struct.error) as error:
        # zipfile parses a corrupt central directory into any of these.
        raise ContainerError(f"{location}: not a readable zip archive ({error})") from None
    for info in infos:
        # zipfile shifts offsets by any bytes before the archive: a corrupt central directory
        # can put a member before the start of the file, or past its end.
        if not 0 <= info.header_offset < size:
            raise ContainerError(f"{location}: member {info.filename!r}: its local header "
                                 f"would be at byte {info.header_offset}, outside the archive "
                                 f"({size} bytes): the central directory is corrupt")
    for start in range(0, len(infos), _BATCH):
        batch = infos[start:start + _BATCH]
        spans = [(source_id, info.header_offset,
                  min(_LOCAL_HEADER.size + len(_name_bytes(info)), size - info.header_offset))
                 for info in batch]
        headers = read_ranges(table, spans, engine)
        for info, header in zip(batch, headers, strict=True):
            data_start = _data_start(info, header, location)
            if data_start + info.compress_size > size:
                raise ContainerError(f"{location}: member {info.filename!r} runs past the end "
                                     f"of the archive ({size} bytes): it is truncated")
            method = ENCRYPTED if info.flag_bits & 0x1 else info.compress_type
            table.add(info.filename.lstrip("/"), source_id, data_start, info.compress_size,
                      method, info.file_size, info.CRC)
    return table


def _data_start(info: zipfile.ZipInfo, header: bytes, location: str) -> int:
    """Where the member's data starts: after its local header, whose name and extra field
    may differ in length from the central directory's."""
    name = _name_bytes(info)
    if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise ContainerError(f"{location}: member {info.filename!r}: no local file header at "
                             f"byte {info.header_offset}: the archive is corrupt")
    fields = _LOCAL_HEADER.unpack(header[:_LOCAL_HEADER.size])
    method, name_length, extra_length = fields[4], fields[10], fields[11]
    stored_name = header[_LOCAL_HEADER.size:]
    if method != info.compress_type or stored_name != name[:len(stored_name)]:
        raise ContainerError(f"{location}: member {info.filename!r}: its local header does "
                             "not match the central directory: the archive is corrupt")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _name_bytes(info: zipfile.ZipInfo) -> bytes:
    # zipfile decodes names as UTF-8 when flag 0x800 says so, else as cp437 (a bijection).
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
