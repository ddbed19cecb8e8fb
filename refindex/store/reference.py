"""A read-only zarr-python 3 store over an Index: metadata from the index, chunk bytes from the
sources through the I/O engine."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable, Iterable
from functools import cached_property

import numpy as np
import ujson
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from refindex.assemble import (
    REMOTE_RUNS_AHEAD,
    DecodedChunks,
    chunk_request,
    codec_for,
    read_region,
)
from refindex.codecs.fast_zlib import fast_codecs
from refindex.codecs.guarded import guarded_codecs
from refindex.errors import (
    ArrayLeftOutError,
    FetchError,
    RefindexError,
    SourceChangedError,
    SourceNotFoundError,
    SourcePolicyError,
)
from refindex.index import ABSENT, INLINE, WHOLE, ArrayNode, ChunkRef, Index
from refindex.io import RangeRequest, ReadEngine, ReadOptions
from refindex.io.batch import ReadBatcher
from refindex.io.policy import sidecar_host_class
from refindex.sidecar import is_local, load_index
from refindex.store.readahead import ChunkReadahead
from refindex.store.tuning import chunks_in_flight

_WRAPPED_ERRORS = (FetchError, SourceChangedError, SourceNotFoundError, SourcePolicyError)


class ReferenceStore(Store):
    """Zarr v2 keys of the arrays an Index describes, read-only.

    Picklable: it pickles the index and the read options; network resources are opened
    lazily in the process (and event loop) that reads. ``close()`` (or ``with store:``)
    closes the HTTP sessions of the engine the store made; an ``engine`` passed in is the
    caller's to close. Making a store changes nothing outside it (zarr's configuration
    included: see ``refindex.store.tuning``).
    """

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False
    supports_listing = True

    def __init__(self, index: Index, options: ReadOptions | None = None, name: str = "", *,
                 engine: ReadEngine | None = None) -> None:
        super().__init__(read_only=True)
        self.index = index
        self.options = options or (engine.options if engine else ReadOptions.from_env())
        self.name = name
        self._engine: ReadEngine | None = engine
        self._owns_engine = engine is None
        self._batcher: ReadBatcher | None = None
        self._readahead = (
            ChunkReadahead(self.options.readahead_size)
            if self.options.readahead_size > 0 and self.options.cache_size > 0
            else None
        )
        self._prefetches: set[asyncio.Future] = set()
        self.decoded = DecodedChunks(self.options.decoded_cache_size)
        """Decoded chunks of the arrays this store re-tiles (see ``retiled_zarray``)."""

    def __getstate__(self) -> dict:
        return {"index": self.index, "options": self.options, "name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["index"], state["options"], state["name"])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ReferenceStore) and other.index is self.index
                and other.options == self.options)

    def __repr__(self) -> str:
        return f"ReferenceStore({self.name or '<index>'}, {self.index.chunk_count()} chunks)"

    @property
    def engine(self) -> ReadEngine:
        """The I/O engine that fetches chunk bytes; created on first use."""
        if self._engine is None:
            self._engine = ReadEngine(self.options)
        return self._engine

    @cached_property
    def zarr_concurrency(self) -> int:
        """Chunks zarr should ask for at once when it reads this store
        (``ReadOptions.zarr_concurrency``; ``AUTO`` from the arrays' chunk sizes). refindex's
        own reads through zarr use it (``refindex.store.tuning``); ``refindex.tune_zarr(store)``
        sets it for the whole process."""
        return chunks_in_flight(self.index, self.options.zarr_concurrency)

    @property
    def batcher(self) -> ReadBatcher:
        """Gathers the chunk reads zarr asks at the same time into one engine read."""
        if self._batcher is None:
            self._batcher = ReadBatcher(self.engine)
        return self._batcher

    @cached_property
    def _metadata(self) -> dict[str, bytes]:
        # zarr decodes gzip chunks with refindex.zlib (zlib-ng); the sidecar says zlib. Every
        # codec step is guarded: bad chunk bytes are a ChunkDecodeError, bombs are stopped.
        return metadata_documents(self.index, lambda zarray, path: guarded_codecs(
            fast_codecs(zarray), path))

    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        prototype = prototype or default_buffer_prototype()
        result = await self._read_many([(key, byte_range)])
        return None if result[0] is None else prototype.buffer.from_bytes(result[0])

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        results = await self._read_many(list(key_ranges))
        return [None if r is None else prototype.buffer.from_bytes(r) for r in results]

    async def exists(self, key: str) -> bool:
        if key in self._metadata:
            return True
        found = self.index.find_chunk(key)
        if found is not None and found[0].irregular:
            return _retiled_region(found[0], found[1]) is not None
        ref = self._chunk_ref(key)
        return ref is not None and ref.source != ABSENT

    async def set(self, key: str, value: Buffer) -> None:
        self._check_writable()

    async def delete(self, key: str) -> None:
        self._check_writable()

    async def list(self) -> AsyncIterator[str]:
        for key in self._metadata:
            yield key
        for node in self.index.arrays.values():
            if node.irregular:  # every regular chunk of the re-tiled view
                grid = [-(-s // c) for s, c in zip(node.zarray["shape"], node.zarray["chunks"],
                                                  strict=True)]
                for coords in np.ndindex(*grid):
                    yield node.chunk_key(coords)
                continue
            for key, _ in node.present_keys():
                yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        async for key in self.list():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/")
        start = f"{prefix}/" if prefix else ""
        seen = set()
        async for key in self.list_prefix(start):
            child = key[len(start):].split("/", 1)[0]
            if child not in seen:
                seen.add(child)
                yield child

    def close(self) -> None:
        """Close the HTTP sessions of the engine this store made (not of one passed in).
        Idempotent; a store used again opens new ones. Inside a running event loop the
        closing is scheduled on it (``await store.aclose()`` waits for it)."""
        super().close()
        engine = self._release_engine()
        if engine is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            engine.close_sync()
            return
        task = loop.create_task(engine.close())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    async def aclose(self) -> None:
        """``close()`` from async code, waiting for the sessions to be closed."""
        super().close()
        engine = self._release_engine()
        if engine is not None:
            await engine.close()

    def _release_engine(self) -> ReadEngine | None:
        """The engine to close (the store's own, if it made one), forgotten by the store."""
        self._batcher = None
        if not self._owns_engine:
            return None
        engine, self._engine = self._engine, None
        return engine

    async def _read_many(self, key_ranges: list[tuple[str, ByteRequest | None]]) -> list:
        """Bytes for each (key, byte range), None for missing keys; one batch to the engine."""
        results: list[bytes | None] = [None] * len(key_ranges)
        pending: list[tuple[int, str, RangeRequest]] = []
        retiled: list[tuple[int, ArrayNode, tuple[int, ...], ByteRequest | None]] = []
        walked: list[ArrayNode] = []
        for i, (key, byte_range) in enumerate(key_ranges):
            if key in self._metadata:
                results[i] = _slice(self._metadata[key], byte_range)
                continue
            self._check_not_left_out(key)
            found = self.index.find_chunk(key)
            if found is not None and found[0].irregular:
                retiled.append((i, *found, byte_range))
                continue
            node, flat, ref = self._locate(key)
            if ref is None or ref.source == ABSENT:
                continue
            if ref.source == INLINE:
                results[i] = _slice(ref.data, byte_range)
                continue
            pending.append((i, key, self._range_request(ref, byte_range)))
            if node is not None and self._readahead is not None:
                self._read_ahead(node, flat)
                walked.append(node)
        try:
            jobs = [self._retiled_chunk(node, coords) for _, node, coords, _ in retiled]
            if pending:
                jobs.append(self._fetch([p[2] for p in pending], [p[1] for p in pending]))
            done = await asyncio.gather(*jobs)
            if pending:
                for (i, _, _), data in zip(pending, done.pop(), strict=True):
                    results[i] = data
            for (i, _, _, byte_range), data in zip(retiled, done, strict=True):
                results[i] = None if data is None else _slice(data, byte_range)
        finally:
            for node in walked:
                self._readahead.done(node)
        return results

    async def _retiled_chunk(self, node: ArrayNode, coords: tuple[int, ...]) -> bytes | None:
        """The bytes of regular chunk ``coords`` of an irregular array, as ``retiled_zarray``
        serves it: assembled from the decoded chunks it overlaps; None when none exists."""
        region = _retiled_region(node, coords)
        if region is None:
            return None
        codec = codec_for(node.zarray, array=node.path)
        data = await read_region(node, region, self._chunk_fetch(node),
                                 self.decoded, codec)
        if data is None:
            return None
        chunk = codec.filled(tuple(node.zarray["chunks"]))
        chunk[tuple(slice(0, n) for n in data.shape)] = data
        encoder = _object_codec(node.zarray) if codec.dtype == object else None
        return bytes(encoder.encode(chunk)) if encoder else chunk.tobytes(order="C")

    def read_region_sync(self, path: str, region: tuple[slice, ...]) -> np.ndarray:
        """Elements ``region`` (slices of step 1) of array ``path``, read chunk by chunk
        through the engine: the chunks it overlaps fetched in one batch, then decoded (in
        parallel when many bytes) straight into the result. Irregular arrays go through the
        decoded-chunk cache (regions re-tiled for zarr share chunks); regular arrays do not
        (each chunk is read once per region, as zarr would) and each chunk must decode to
        exactly its chunk's bytes, as the store's guards check for zarr."""
        from refindex.io.loop import run_sync

        node = self.index.arrays[path]
        shape = node.zarray["shape"]
        if len(region) != len(shape) or not all(
                0 <= s.start <= s.stop <= n for s, n in zip(region, shape, strict=False)):
            raise IndexError(f"{self.name or 'sidecar'}: {path}: region {region} is not "
                             f"within the array's shape {tuple(shape)}")
        codec = codec_for(node.zarray, sized=not node.irregular, array=path)
        cache = self.decoded if node.irregular else None
        out = np.empty(tuple(s.stop - s.start for s in region), codec.dtype)
        return run_sync(read_region(node, region, self._chunk_fetch(node), cache, codec, out,
                                    ahead=self._runs_ahead))

    @functools.cached_property
    def _runs_ahead(self) -> int:
        """Runs of a bulk region read fetched ahead of the one decoding: one for local files
        (a read is a syscall), more when a source is remote (the link must not idle)."""
        remote = not all(is_local(source.url) for source in self.index.sources)
        return REMOTE_RUNS_AHEAD if remote else 1

    def _chunk_fetch(self, node: ArrayNode):
        """A ``refindex.assemble.Fetch`` of ``node``'s stored chunks through this store's
        batcher, a failure named by the chunk's key."""
        async def fetch(refs: list[ChunkRef], flats: list[int], keep: bool = True
                        ) -> list[bytes]:
            requests = [self._range_request(ref, None, keep) for ref in refs]
            return await self._fetch(requests, node.chunk_keys(np.asarray(flats, np.int64)))

        return fetch

    async def _fetch(self, requests: list[RangeRequest], keys: list[str]) -> list[bytes]:
        try:
            return await self.batcher.read(requests)
        except _WRAPPED_ERRORS as exc:
            raise type(exc)(f"{self.name or 'sidecar'}: {_failed_key(exc, requests, keys)}: "
                            f"{exc}") from exc

    def _range_request(self, ref: ChunkRef, byte_range: ByteRequest | None,
                       keep: bool = True) -> RangeRequest:
        source = self.index.sources[ref.source]
        offset, length = ref.offset, ref.length
        if byte_range is not None and length != WHOLE:
            start, stop = _bounds(byte_range, length)
            offset, length = offset + start, stop - start
        elif byte_range is not None:
            raise FetchError(f"{source.url}: byte ranges of whole-object references are not "
                             "supported")
        return chunk_request(source, ChunkRef(ref.source, offset, length), keep)

    def _read_ahead(self, node: ArrayNode, flat: int) -> None:
        """Fetch the chunks ahead of an in-order walk into the engine's cache, in the batch
        of the read that continued the walk (so the planner merges them into its request)."""
        ahead = self._readahead.after(node, flat)
        if not ahead:
            return
        requests = [self._range_request(node.chunks.get(position), None) for position in ahead]
        task = asyncio.ensure_future(self._prefetch(requests))
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)

    async def _prefetch(self, requests: list[RangeRequest]) -> None:
        # A failed read-ahead costs nothing: a get of those chunks reads them and reports.
        with contextlib.suppress(RefindexError):
            await self.batcher.read(requests)

    def _check_not_left_out(self, key: str) -> None:
        """Opening an array the scan left out is an error naming it, not "no such array"."""
        path, _, document = key.rpartition("/")
        if document in _METADATA_DOCUMENTS and path in self.index.left_out:
            raise ArrayLeftOutError(self.name or "sidecar", path, self.index.left_out[path])

    def _chunk_ref(self, key: str) -> ChunkRef | None:
        return self._locate(key)[2]

    def _locate(self, key: str) -> tuple[ArrayNode | None, int, ChunkRef | None]:
        """The array, chunk position and reference of chunk ``key`` (None, 0, extra reference
        for keys outside the arrays)."""
        found = self.index.find_chunk(key)
        if found is None:
            return None, 0, self.index.extra.get(key)
        node, coords = found
        try:
            flat = node.chunks.flat_index(coords)
        except IndexError:
            return node, 0, None
        return node, flat, node.chunks.get(flat)


_METADATA_DOCUMENTS = frozenset({".zarray", ".zattrs", ".zgroup", "zarr.json"})

# Closings that close() scheduled on a running loop, referenced until done.
_closing: set[asyncio.Task[None]] = set()


def open_store(sidecar: str | os.PathLike | dict | Index | ReferenceStore,
               read_options: ReadOptions | None = None, **options) -> ReferenceStore:
    """A read-only zarr store over ``sidecar`` (a path, URL, decoded document, Index or a
    store, which is returned as it is unless options change it).

    ``read_options`` defaults to ``ReadOptions.from_env()``; keyword arguments change its
    fields (``endpoint_url``, ...). Only an explicit ``local_sources=True`` keyword lets a
    sidecar that is not a local file name local files, and unless ``source_hosts`` is set
    (here or in the environment), a remote sidecar may name sources only on hosts no more
    internal than its own (see ``ReadOptions.source_hosts``).
    """
    if isinstance(sidecar, ReferenceStore) and read_options is None and not options:
        return sidecar
    read_options = read_options or ReadOptions.from_env()
    if options:
        read_options = read_options.replace(**options)
    if "local_sources" not in options and not _sidecar_is_local(sidecar):
        # A sidecar from elsewhere must not make us read this machine's files.
        read_options = read_options.replace(local_sources=False)
    # The sidecar itself is read as the caller asked; its sources as the source policy says.
    source_options = read_options
    if read_options.source_hosts is None and not _sidecar_is_local(sidecar):
        # ... nor services on networks more internal than the host it came from.
        source_options = read_options.replace(source_hosts=_sidecar_hosts(sidecar,
                                                                          read_options))
    if isinstance(sidecar, ReferenceStore):
        return ReferenceStore(sidecar.index, source_options, sidecar.name)
    if isinstance(sidecar, Index):
        return ReferenceStore(sidecar, source_options)
    name = "<document>" if isinstance(sidecar, dict) else os.fspath(sidecar)
    return ReferenceStore(load_index(sidecar, read_options), source_options, name)


def _sidecar_is_local(sidecar: str | os.PathLike | dict | Index | ReferenceStore) -> bool:
    """Whether ``sidecar`` came from this machine: a local path, or a document, Index or store
    the caller built (a store keeps what it was opened with)."""
    if isinstance(sidecar, ReferenceStore):
        return sidecar.options.local_sources
    if isinstance(sidecar, dict | Index):
        return True
    return is_local(sidecar)


def _failed_key(error: Exception, requests: list[RangeRequest], keys: list[str]) -> str:
    """The key of the request ``error`` is about (its message names the request's range),
    else the first key and how many more were read with it."""
    if len(keys) > 1:
        text = str(error)
        for key, request in zip(keys, requests, strict=True):
            if request.where in text:
                return key
    return keys[0] if len(keys) == 1 else f"{keys[0]} (and {len(keys) - 1} more)"


def _sidecar_hosts(sidecar: str | os.PathLike | ReferenceStore, options: ReadOptions) -> str:
    if isinstance(sidecar, ReferenceStore):
        return sidecar.options.source_hosts or "any"
    return sidecar_host_class(os.fspath(sidecar), options)


def retiled_zarray(zarray: dict) -> dict:
    """The ``.zarray`` a store serves for an irregular array: its regular ``chunks``, stored
    raw (each chunk assembled from the decoded chunks it overlaps), except that object
    arrays keep the codec that turns their objects into bytes."""
    object_codec = _object_codec_config(zarray)
    return {**zarray, "compressor": None, "order": "C",
            "filters": [object_codec] if object_codec else None}


def _object_codec_config(zarray: dict) -> dict | None:
    filters = zarray.get("filters") or []
    return dict(filters[0]) if zarray.get("dtype") == "|O" and filters else None


def _object_codec(zarray: dict):
    import numcodecs

    return numcodecs.get_codec(_object_codec_config(zarray))


def _retiled_region(node: ArrayNode, coords: tuple[int, ...]) -> tuple[slice, ...] | None:
    """The elements regular chunk ``coords`` of an irregular array's served view covers;
    None when outside the array."""
    shape, chunks = node.zarray["shape"], node.zarray["chunks"]
    if len(coords) != len(shape):
        return None
    region = tuple(slice(c * n, min((c + 1) * n, s))
                   for c, n, s in zip(coords, chunks, shape, strict=True))
    return None if any(r.start >= r.stop for r in region) else region


def metadata_documents(index: Index,
                       array_view: Callable[[dict, str], dict] | None = None
                       ) -> dict[str, bytes]:
    """Every Zarr v2 metadata key of ``index`` and its JSON bytes, plus consolidated
    ``.zmetadata`` so that readers need one request for the whole hierarchy. ``array_view``
    changes the ``.zarray`` documents as served (not the index; it is given the document and
    the array's path); irregular arrays are served
    re-tiled (``retiled_zarray``)."""
    documents: dict[str, dict] = {}
    for path, kind in index.iter_nodes():
        prefix = f"{path}/" if path else ""
        if kind == "group":
            documents[prefix + ".zgroup"] = {"zarr_format": 2}
            attrs = index.groups[path]
        else:
            node = index.arrays[path]
            zarray = retiled_zarray(node.zarray) if node.irregular else node.zarray
            documents[prefix + ".zarray"] = array_view(zarray, path) if array_view else zarray
            attrs = node.attrs
        if attrs:
            documents[prefix + ".zattrs"] = attrs
    encoded = {k: _json_bytes(v) for k, v in documents.items()}
    if ".zmetadata" not in index.extra:
        encoded[".zmetadata"] = _json_bytes(
            {"zarr_consolidated_format": 1, "metadata": documents})
    return encoded


def _json_bytes(value: dict) -> bytes:
    return ujson.dumps(value, escape_forward_slashes=False, ensure_ascii=False).encode()


def _bounds(byte_range: ByteRequest, size: int) -> tuple[int, int]:
    if isinstance(byte_range, RangeByteRequest):
        return byte_range.start, min(byte_range.end, size)
    if isinstance(byte_range, OffsetByteRequest):
        return byte_range.offset, size
    if isinstance(byte_range, SuffixByteRequest):
        return max(size - byte_range.suffix, 0), size
    raise TypeError(f"unexpected byte range {byte_range!r}")


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    start, stop = _bounds(byte_range, len(data))
    return data[start:stop]
