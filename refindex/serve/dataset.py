"""One served dataset: a sidecar's store, the documents and plans it is served with, and the
answers to its keys — metadata from memory, chunks through the store (and its shared engine),
re-encoded where the plan says — each with a strong ETag known before any byte is fetched."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import ujson

from refindex.assemble import pieces_of
from refindex.index import ABSENT, INLINE, ArrayNode, ChunkRef, Index
from refindex.io import ReadOptions
from refindex.io.policy import check_sources
from refindex.serve.config import DatasetConfig, ServeConfig
from refindex.serve.documents import served_documents
from refindex.serve.keys import V2_METADATA, V3_METADATA
from refindex.serve.transcode import Transcoder
from refindex.store import ReferenceStore, open_store
from refindex.store.sharing import share_engine


class ServedDataset:
    """``config``'s sidecar as the server answers it."""

    def __init__(self, config: DatasetConfig, store: ReferenceStore,
                 transcoder: Transcoder) -> None:
        self.config, self.store, self.transcoder = config, store, transcoder
        self.index: Index = store.index
        self.documents, self.plans = served_documents(self.index, config)
        self._served = {path: ujson.dumps(plan.served, sort_keys=True)
                        for path, plan in self.plans.items()}  # in every chunk's ETag
        self._identity = _digest([config.name, *_source_identities(self.index)])
        self._document_etags = {
            key: _etag(self._identity, key, hashlib.blake2b(data, digest_size=16).hexdigest())
            for key, data in self.documents.items()}

    @property
    def name(self) -> str:
        return self.config.name

    def etag(self, key: str) -> str | None:
        """The strong ETag of ``key``'s answer, None when there is none (404). For chunks it
        comes from the source's identity (URL, size, ETag, last modification), the chunk's
        place in it and the codec it is served with: no fetch is needed to answer a
        conditional request, and a changed source or plan changes it."""
        if key in self._document_etags:
            return self._document_etags[key]
        if _is_metadata(key):
            return None
        found = _find_chunk(self.index, key)
        if found is None:
            ref = self.index.extra.get(key)
            return None if ref is None else _etag(self._identity, key, *self._ref_parts(ref))
        node, coords = found
        refs = self._chunk_refs(node, coords)
        if not refs:
            return None
        parts = [part for ref in refs for part in self._ref_parts(ref)]
        return _etag(self._identity, key, self._served[node.path], *parts)

    def served_size(self, key: str) -> int | None:
        """Bytes of ``key``'s answer when they are known without fetching or decoding: a
        stored chunk's length from the index, a re-encoded chunk's when it is cached; None
        otherwise (a re-encoded chunk not cached, a re-tiled chunk of an uneven array), and
        for keys that name nothing (``etag`` tells those)."""
        document = self.documents.get(key)
        if document is not None:
            return len(document)
        found = _find_chunk(self.index, key)
        if found is None:
            ref = self.index.extra.get(key)
            return None if ref is None else _stored_length(ref)
        node, coords = found
        plan = self.plans.get(node.path)
        if plan is not None and plan.transcode:
            return self.transcoder.cache.size_of((self.name, key))
        if node.irregular:
            return None
        refs = self._chunk_refs(node, coords)
        return _stored_length(refs[0]) if len(refs) == 1 else None

    def check_policy(self, key: str) -> None:
        """Raise SourcePolicyError, as a read of ``key`` would, when the engine's source
        policy refuses a source of its chunk; nothing is read (for HEAD). A host name that
        resolves to a refused address is found only by connecting: GET tells that."""
        found = _find_chunk(self.index, key)
        if found is None:
            ref = self.index.extra.get(key)
            refs = [] if ref is None else [ref]
        else:
            refs = self._chunk_refs(*found)
        urls = {self.index.sources[ref.source].url for ref in refs if ref.source != INLINE}
        check_sources(self.store.engine.options, urls)

    async def read(self, key: str) -> bytes | None:
        """The bytes served for ``key``, None when it names nothing (a metadata document the
        dataset does not serve, an absent chunk, a key outside the sidecar). Raises the
        store's RefindexError when a source cannot be read."""
        document = self.documents.get(key)
        if document is not None:
            return document
        if _is_metadata(key):
            return None
        found = _find_chunk(self.index, key)
        if found is None and key not in self.index.extra:
            return None
        buffer = await self.store.get(key)
        if buffer is None:
            return None
        data = buffer.to_bytes()
        plan = self.plans.get(found[0].path) if found else None
        if plan is not None and plan.transcode:
            data = await self.transcoder.encoded((self.name, key), plan, data)
        return data

    def _chunk_refs(self, node: ArrayNode, coords: tuple[int, ...]) -> list[ChunkRef]:
        """The stored chunks chunk ``coords`` (of the served, regular grid) is made of."""
        if node.irregular:
            shape, chunks = node.zarray["shape"], node.zarray["chunks"]
            region = tuple(slice(c * n, min((c + 1) * n, s))
                           for c, n, s in zip(coords, chunks, shape, strict=True))
            if len(coords) != len(shape) or any(r.start >= r.stop for r in region):
                return []
            refs = [node.chunks.get(piece.flat) for piece in pieces_of(node.chunk_grid, region)]
            refs = [ref for ref in refs if ref.source != ABSENT]
            return refs
        try:
            ref = node.chunks.get(node.chunks.flat_index(coords))
        except IndexError:
            return []
        return [] if ref.source == ABSENT else [ref]

    def _ref_parts(self, ref: ChunkRef) -> tuple:
        if ref.source == INLINE:
            return ("inline", hashlib.blake2b(ref.data or b"", digest_size=16).hexdigest())
        source = self.index.sources[ref.source]
        return (source.url, source.size, source.etag, source.last_modified, ref.offset,
                ref.length)


def open_datasets(config: ServeConfig, read_options: ReadOptions | None,
                  transcoder: Transcoder) -> dict[str, ServedDataset]:
    """Every dataset of ``config``, its sidecar loaded (raises the sidecar's RefindexError
    naming it), all reading through as few engines as their options allow (one, unless
    local and remote sidecars are served together: see ``refindex.store.sharing``). The
    engine reads no further ahead than asked unless ``config.readahead``."""
    read_options = read_options or ReadOptions.from_env()
    if not config.readahead:
        read_options = read_options.replace(readahead_size=0)
    datasets, stores = {}, {}
    for dataset in config.datasets:
        # One sidecar served under two names (raw and re-encoded, say) is loaded once.
        store = stores.get(dataset.sidecar)
        if store is None:
            store = stores[dataset.sidecar] = open_store(dataset.sidecar, read_options)
        datasets[dataset.name] = ServedDataset(dataset, store, transcoder)
    share_engine([d.store for d in datasets.values()])
    return datasets


def _stored_length(ref: ChunkRef) -> int:
    return len(ref.data or b"") if ref.source == INLINE else int(ref.length)


def _find_chunk(index: Index, key: str) -> tuple[ArrayNode, tuple[int, ...]] | None:
    try:
        return index.find_chunk(key)
    except ValueError:  # digits int() does not take ("²"): no chunk of ours
        return None


def _is_metadata(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name in V2_METADATA or name == V3_METADATA


def _source_identities(index: Index) -> Iterable[str]:
    for source in index.sources:
        yield f"{source.url}|{source.size}|{source.etag}|{source.last_modified}"


def _digest(parts: Iterable) -> str:
    text = "\x00".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _etag(identity: str, key: str, *parts) -> str:
    return '"' + _digest([identity, key, *parts]) + '"'
