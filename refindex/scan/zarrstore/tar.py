"""The members of an uncompressed tar archive (ustar, pax, GNU), walked header by header with
Python's tarfile over a seekable file (local, or a RemoteFile that reads blocks).

A tar has no table of contents: every header says where the next one is, so the walk reads
the archive's headers in order. Over a remote object that costs a block read per block of
members (``ReadOptions.block_size``; ``readahead_blocks`` overlaps them).
"""

from __future__ import annotations

import posixpath
import tarfile
from typing import BinaryIO

from refindex.errors import ContainerError
from refindex.index import Source
from refindex.scan.zarrstore.members import MemberTable

_BLOCK = tarfile.BLOCKSIZE


def list_tar(fileobj: BinaryIO, size: int, source: Source, location: str) -> MemberTable:
    """Every regular file of the tar archive ``fileobj`` (``size`` bytes, read at
    ``location``) as a member of one source; hard and symbolic links to members are
    members too (links to nothing in the archive are listed in ``table.notes``). Sparse
    members and damaged or truncated archives raise ContainerError."""
    table = MemberTable(location)
    source_id = table.add_source(source, location)
    links: list[tuple[str, str]] = []
    with _open(fileobj, location) as archive:
        while True:
            try:
                info = archive.next()
            except (tarfile.TarError, EOFError, UnicodeDecodeError) as error:
                raise ContainerError(f"{location}: damaged tar header near byte "
                                     f"{archive.offset} ({error}); the archive is corrupt or "
                                     "truncated") from None
            if info is None:
                break
            archive.members.clear()  # tarfile keeps every header; a million would cost GBs
            _add(table, source_id, info, size, location, links)
        end = archive.offset
    _check_end(fileobj, end, size, location)
    _add_links(table, links, location)
    return table


def _open(fileobj: BinaryIO, location: str) -> tarfile.TarFile:
    """tarfile over ``fileobj`` (uncompressed only: a compressed stream has no byte ranges);
    closing it leaves ``fileobj`` open."""
    try:
        return tarfile.TarFile(fileobj=fileobj, mode="r")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ContainerError(f"{location}: not a readable tar archive ({error})") from None


def _add(table: MemberTable, source_id: int, info: tarfile.TarInfo, size: int,
         location: str, links: list[tuple[str, str]]) -> None:
    name = _clean(info.name)
    if not name:
        return
    if info.issparse():
        raise ContainerError(f"{location}: member {info.name!r} is a sparse file, whose bytes "
                             "are not stored in one piece; re-create the archive without "
                             "--sparse")
    if info.isreg():
        if info.offset_data + info.size > size:
            raise ContainerError(f"{location}: member {info.name!r} runs past the end of the "
                                 f"archive ({size} bytes): the archive is truncated")
        table.add(name, source_id, info.offset_data, info.size)
    elif info.islnk():
        links.append((name, _clean(info.linkname)))
    elif info.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
        links.append((name, _clean(target)))
    # Directories, devices and FIFOs hold no bytes: nothing to reference.


def _check_end(fileobj: BinaryIO, offset: int, size: int, location: str) -> None:
    """tarfile ends its walk quietly at a damaged or missing header: only a zero block (the
    end-of-archive marker) is a proper end."""
    fileobj.seek(offset)
    block = fileobj.read(_BLOCK)
    if len(block) < _BLOCK:
        raise ContainerError(f"{location}: the archive ends at byte {size} without an "
                             "end-of-archive marker: it is truncated")
    if block.count(0) != _BLOCK:
        raise ContainerError(f"{location}: damaged tar header at byte {offset} (bad checksum "
                             "or format): the archive is corrupt")


def _add_links(table: MemberTable, links: list[tuple[str, str]], location: str) -> None:
    if not links:
        return
    rows = table.latest_rows()
    for name, target in links:
        row = rows.get(target)
        if row is None:
            table.notes.append(f"{name}: a link to {target!r}, which is not a file in the "
                               "archive")
            continue
        member = table.member(row)
        table.add(name, member.source, member.offset, member.size)
        rows[name] = len(table) - 1


def _clean(name: str) -> str:
    """A member name as a store key: no leading ``./`` or ``/``, no trailing ``/``."""
    name = posixpath.normpath(name) if name else ""
    name = name.lstrip("/")
    return "" if name in (".", "..") or name.startswith("../") else name
