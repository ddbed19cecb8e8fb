"""Build the Index of a TIFF file with tifffile: one array per level of each series (a
single series at the root, several as groups ``0``, ``1``, ... as bioformats2raw lays them
out), the pages' strips or tiles as chunks (``layout.py``), their compression and predictor
as codecs (``compression.py``). Only the header and the IFDs are read.

What cannot be read exactly (bit-packed samples, bit-reversed bytes, subsampled YCbCr,
compressions no registered codec decodes) is left out by name; a corrupt structure (no
header, an IFD loop, an IFD or segment past the end of the file) is a ContainerError.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import numpy as np

from refindex.errors import ContainerError, RefindexError, UnsupportedFeatureError
from refindex.index import ArrayNode, Index, Source
from refindex.io import ReadEngine, RemoteFile
from refindex.scan.json_values import fill_to_json
from refindex.scan.left_out import leave_out
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Container, Progress
from refindex.scan.tiff.attrs import file_attrs, level_dims, multiscales, physical_sizes
from refindex.scan.tiff.compression import Refused, page_codecs
from refindex.scan.tiff.layout import level_layout

IFD_BLOCK = 64 * 1024
"""Bytes per read of a remote TIFF's header and IFDs."""
PREFETCH_BATCHES = 8
"""Batches at most in which a remote scan fetches the SubIFDs of all pages."""

TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
"""Classic TIFF and BigTIFF (version 43), little- and big-endian."""

# tifffile logs what it skips in a damaged file instead of raising: these say the structure
# itself is broken, and an index of what was left would silently miss pages.
_BROKEN = ("invalid offset", "invalid page offset", "circular", "truncat", "corrupt",
           "invalid IFD", "out of bounds", "beyond end", "not a TIFF")
_HINT = "convert it (e.g. with tifffile) to a layout and compression refindex references"


def looks_like_tiff(head: bytes) -> bool:
    """Whether a file's first bytes are a TIFF or BigTIFF header (``II*\\0``, ``MM\\0*``,
    ``II+\\0``, ``MM\\0+``)."""
    return head[:4] in TIFF_MAGICS


def scan_tiff(container: Container, index: Index, engine: ReadEngine, options: ScanOptions,
              progress: Progress | None = None) -> list[str]:
    """Add the TIFF file in ``container`` (``options.file_size`` bytes) to ``index`` (see
    ``ContainerScanner``); returns notes on what tifffile reported and was not an error."""
    if options.file_size is None:
        raise ValueError("scan_tiff needs options.file_size")
    tifffile = _tifffile()
    fileobj = _ifd_reader(container, engine) if container.remote else container.fileobj
    try:
        return _scan_with(tifffile, fileobj, container, index, engine, options, progress)
    finally:
        if fileobj is not container.fileobj:  # the scan's cost is the container file's
            container.fileobj.requests += fileobj.requests
            container.fileobj.bytes_fetched += fileobj.bytes_fetched


def _ifd_reader(container: Container, engine: ReadEngine) -> RemoteFile:
    """The remote file read in blocks of IFD_BLOCK (IFDs are small and scattered through the
    file: a block of the engine's size, 1 MiB, for each would fetch a large share of the
    file), starting with the block the container sniff has already read."""
    remote = container.fileobj
    block = min(IFD_BLOCK, remote.size)
    remote.seek(0)
    first = remote.read(block)
    remote.seek(0)
    return RemoteFile(engine, remote.url, remote.size, etag=remote.etag, block_size=IFD_BLOCK,
                      readahead_blocks=0, preloaded=first)


def _scan_with(tifffile, fileobj, container: Container, index: Index, engine: ReadEngine,
               options: ScanOptions, progress: Progress | None) -> list[str]:
    name = container.url
    with _logged(name) as notes:
        try:
            tif = tifffile.TiffFile(fileobj, _multifile=not container.remote)
        except RefindexError:
            raise
        except Exception as exc:  # tifffile raises what its parsing meets  # noqa: BLE001
            raise ContainerError(f"{name}: not a readable TIFF file: {exc}") from None
        with tif:
            _scan_file(tif, fileobj, container, index, engine, options, progress, notes)
    return notes


def _scan_file(tif, fileobj, container: Container, index: Index, engine: ReadEngine,
               options: ScanOptions, progress: Progress | None, notes: list[str]) -> None:
    name = container.url
    try:
        # Index every IFD first: tifffile finds loops in the chain here (and says so), while
        # walking pages for series could follow a loop for ever.
        len(tif.pages)
        _raise_if_broken(notes, name)
        if isinstance(fileobj, RemoteFile):
            _prefetch_subifds(tif, fileobj, engine.options.max_gap)
        all_series = list(tif.series)
        ome = _ome_dict(tif)
    except RefindexError:
        raise
    except Exception as exc:  # tifffile raises what its parsing meets  # noqa: BLE001
        raise ContainerError(f"{name}: TIFF structure unreadable: {exc}") from None
    _raise_if_broken(notes, name)
    index.groups[""] = file_attrs(tif)
    if len(all_series) > 1:
        index.groups[""]["bioformats2raw.layout"] = 3
    sources = _Sources(tif, container, index, engine, options)
    elsewhere = container.remote and _names_other_files(tif)
    for number, series in enumerate(all_series):
        group = "" if len(all_series) == 1 else str(number)
        if group:
            index.groups[group] = {}
        done = _add_levels(tif, series, group, sources, elsewhere, index, options, progress,
                           name)
        if done:
            index.groups[group]["multiscales"] = multiscales(
                series.name or f"series {number}", series.levels[0].axes,
                physical_sizes(ome, number), done)


def _add_levels(tif, series, group: str, sources: _Sources, elsewhere: bool, index: Index,
                options: ScanOptions, progress: Progress | None,
                name: str) -> list[tuple[str, tuple[int, ...]]]:
    """Add an array per level of ``series`` to ``group``, or leave it out by name; the
    (path in the group, shape) of those added."""
    done = []
    base = tuple(int(n) for n in series.levels[0].shape)
    for number, level in enumerate(series.levels):
        path = f"{group}/{number}" if group else str(number)
        try:
            if elsewhere:
                raise Refused("a multi-file OME-TIFF read remotely (tifffile finds the other "
                              "files of the dataset only on a local file system)")
            node = _array(tif, level, path, base, number, sources, name)
        except Refused as refused:
            leave_out(index, path, UnsupportedFeatureError(name, path, str(refused), _HINT),
                      options)
            continue
        except RefindexError:
            raise
        except Exception as exc:  # tifffile parses tags lazily  # noqa: BLE001
            raise ContainerError(f"{name}: TIFF array {path!r}: tifffile cannot read its "
                                 f"pages ({type(exc).__name__}: {exc})") from None
        index.arrays[path] = node
        done.append((str(number), tuple(node.zarray["shape"])))
        if progress:
            progress(path, len(node.chunks))
    return done


def _prefetch_subifds(tif, fileobj: RemoteFile, max_gap: int) -> None:
    """Fetch the blocks of every page's SubIFDs (pyramid levels) in a few batches: tifffile
    would read them one by one, a round trip each. The engine merges ranges up to
    ``max_gap`` bytes apart into one read, which here would fetch the tiles between them
    too (a pyramid's small levels lie a few hundred KB apart): so each batch holds blocks
    that are adjacent or farther apart than that, in at most PREFETCH_BATCHES batches."""
    if not tif.pages.first.subifds:
        return
    blocks = sorted({offset // fileobj.block_size for page in tif.pages
                     for offset in (getattr(page, "subifds", None) or ())})
    batches: list[list[int]] = []
    for block in blocks:
        for batch in batches:
            gap = (block - batch[-1] - 1) * fileobj.block_size
            if gap == 0 or gap > max_gap:
                batch.append(block)
                break
        else:
            if len(batches) < PREFETCH_BATCHES:
                batches.append([block])
            else:
                batches[-1].append(block)
    for batch in batches:
        fileobj.prefetch((block * fileobj.block_size, 1) for block in batch)


def _array(tif, level, path: str, base: tuple[int, ...], number: int, sources: _Sources,
           name: str) -> ArrayNode:
    keyframe = level.keyframe
    codecs = page_codecs(keyframe, tif.byteorder)
    _check_pages(level, keyframe)
    raw = codecs.dtype.itemsize if codecs.compressor is None and not codecs.filters else None
    layout = level_layout(level, keyframe, sources.of, raw, name)
    fill = keyframe.nodata if keyframe.nodata is not None else 0
    zarray = {
        "zarr_format": 2,
        "shape": list(layout.shape),
        "chunks": list(layout.chunks),
        "dtype": codecs.dtype.str,
        "compressor": codecs.compressor,
        "filters": codecs.filters,
        "fill_value": fill_to_json(np.array(fill).astype(codecs.dtype)),
        "order": "C",
        "dimension_separator": ".",
    }
    dims = level_dims(level.axes, layout.shape, base, number)
    attrs = {"_ARRAY_DIMENSIONS": dims, "tiff_axes": level.axes}
    return ArrayNode(path, zarray, attrs, layout.table, grid=layout.grid)


def _check_pages(level, keyframe) -> None:
    """Every page of a level must be stored as its keyframe says: tifffile reads TiffFrames
    as their keyframe, but whole pages may differ."""
    keys = ("compression", "predictor", "planarconfig", "photometric", "fillorder",
            "jpegtables", "chunks", "shape", "dtype")
    from tifffile import TiffPage

    for page in level.pages:
        if page is keyframe or not isinstance(page, TiffPage):
            continue
        for key in keys:
            if getattr(page, key) != getattr(keyframe, key):
                raise Refused(f"TIFF pages of one series stored differently (page "
                              f"{page.index}'s {key} is {getattr(page, key)!r}, page "
                              f"{keyframe.index}'s {getattr(keyframe, key)!r})")


class _Sources:
    """The file each page lies in, as a source of the index: the container itself, or
    another file of a multi-file OME-TIFF (added when first met)."""

    def __init__(self, tif, container: Container, index: Index, engine: ReadEngine,
                 options: ScanOptions) -> None:
        self.index, self.engine, self.options = index, engine, options
        self.found: dict[int, tuple[int, int]] = {
            id(tif): (container.source_id, options.file_size)}

    def of(self, page) -> tuple[int, int]:
        """(source id, size in bytes) of the file ``page`` lies in."""
        parent = page.parent
        if id(parent) not in self.found:
            path = parent.filehandle.path
            info = self.engine.info_sync(path)
            url = path
            if self.options.url:
                url = f"{self.options.url.rsplit('/', 1)[0]}/{os.path.basename(path)}"
            source = Source(url, info.size, info.etag, info.last_modified)
            self.found[id(parent)] = (self.index.add_source(source), info.size)
        return self.found[id(parent)]


def _names_other_files(tif) -> bool:
    """Whether the OME-XML puts planes in other files (a ``TiffData`` whose ``UUID`` is not
    this file's)."""
    if not (tif.is_ome and tif.ome_metadata):
        return False
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(tif.ome_metadata)
    except ElementTree.ParseError:
        return False
    own = root.get("UUID")
    return any(element.tag.endswith("}UUID") and (element.text or "").strip() != own
               for element in root.iter())


def _ome_dict(tif) -> dict | None:
    if not (tif.is_ome and tif.ome_metadata):
        return None
    from tifffile import xml2dict

    try:
        return xml2dict(tif.ome_metadata)
    except Exception:  # noqa: BLE001 - OME-XML tifffile cannot parse: no physical sizes
        return None


def _raise_if_broken(notes: list[str], name: str) -> None:
    for note in notes:
        if any(word.lower() in note.lower() for word in _BROKEN):
            raise ContainerError(f"{name}: TIFF structure damaged: tifffile reports {note!r}")


@contextlib.contextmanager
def _logged(name: str) -> Iterator[list[str]]:
    """tifffile's warnings while the block runs, as notes."""
    notes: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(f"tifffile: {record.getMessage()}")

    logger = logging.getLogger("tifffile")
    handler = _Collect(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield notes
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _tifffile():
    try:
        import tifffile
    except ImportError:
        raise RefindexError("scanning TIFF files needs tifffile: pip install "
                            "'refindex[tiff]'") from None
    return tifffile
