"""The aiohttp application of ``refindex serve``: one route that answers every request —
``/healthz``, ``/metrics``, and ``/NAME/KEY`` of each dataset (GET, HEAD, and OPTIONS for CORS
preflights; anything else is 405) — behind middlewares that count and time each request and
refuse work beyond the in-flight limit with 503 + Retry-After."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field

from aiohttp import hdrs, web

from refindex.errors import RefindexError, SourcePolicyError
from refindex.io import ReadOptions
from refindex.serve.conditional import (
    GZIP_MIN_SIZE,
    ByteRange,
    RangeNotSatisfiable,
    accepts_gzip,
    byte_range,
    cors_headers,
    gzipped,
    none_match,
    preflight_headers,
)
from refindex.serve.config import DatasetConfig, ServeConfig
from refindex.serve.dataset import ServedDataset, open_datasets
from refindex.serve.keys import BadKeyError, StoreKey, parse_target
from refindex.serve.metrics import ServerMetrics
from refindex.serve.transcode import Transcoder

log = logging.getLogger("refindex.serve")
_ALLOWED = "GET, HEAD, OPTIONS"
_RETRY_AFTER = "1"


@dataclass
class ServerState:
    """What the handlers share: the configuration, datasets, transcoder and counters."""

    config: ServeConfig
    datasets: dict[str, ServedDataset]
    transcoder: Transcoder
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    gzipped: dict[tuple[str, str], bytes] = field(default_factory=dict)
    engines: list | None = None
    """The datasets' distinct engines (found on first use)."""


STATE = web.AppKey("refindex_serve_state", ServerState)


def build_app(config: ServeConfig, read_options: ReadOptions | None = None,
              metrics: ServerMetrics | None = None) -> web.Application:
    """The application serving ``config``'s datasets; loads every sidecar now (raising its
    RefindexError), so that a bad one stops the server before it listens. ``metrics``: the
    counters it keeps (a worker's row of a shared board; by default its own)."""
    transcoder = Transcoder(config.transcode_threads, config.transcode_cache_size)
    try:
        datasets = open_datasets(config, read_options, transcoder)
    except BaseException:
        transcoder.close()
        raise
    app = web.Application(
        middlewares=[_observe, _limit_in_flight],
        handler_args={"max_line_size": config.max_line_size,
                      "max_field_size": config.max_field_size})
    app[STATE] = ServerState(config, datasets, transcoder, metrics or ServerMetrics())
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    app.on_cleanup.append(_close)
    return app


async def _close(app: web.Application) -> None:
    state = app[STATE]
    state.transcoder.close()
    engines = {id(d.store.engine): d.store.engine for d in state.datasets.values()}
    for engine in engines.values():
        await engine.close()


@web.middleware
async def _observe(request: web.Request, handler) -> web.StreamResponse:
    """Time and count each request, and give every answer its CORS headers."""
    state = request.app[STATE]
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except Exception:  # a bug of ours: logged with its traceback, answered without
        log.exception("%s %s", request.method, request.raw_path[:200])
        response = _error(500, "internal error (see the server's log)")
    for name, value in cors_headers(request.headers.get(hdrs.ORIGIN),
                                    state.config.cors_origins).items():
        if name == "Vary" and "Vary" in response.headers:
            value = f"{response.headers['Vary']}, {value}"
        response.headers[name] = value
    sent = (response.content_length or 0) if request.method != "HEAD" else 0
    state.metrics.observe(response.status, time.perf_counter() - started, sent)
    if state.metrics.shared:
        _publish(state)  # other workers' scrapes read this worker's row: keep it current
    return response


@web.middleware
async def _limit_in_flight(request: web.Request, handler) -> web.StreamResponse:
    """503 + Retry-After beyond ``max_in_flight`` requests (health and metrics excepted),
    so that load beyond capacity costs no memory."""
    state = request.app[STATE]
    metrics = state.metrics
    if request.raw_path.split("?", 1)[0] in ("/healthz", "/metrics"):
        return await handler(request)
    if metrics.in_flight >= state.config.max_in_flight:
        metrics.refused += 1
        return _error(503, "too many requests in flight; retry shortly",
                      {"Retry-After": _RETRY_AFTER})
    metrics.in_flight += 1
    try:
        return await handler(request)
    finally:
        metrics.in_flight -= 1


async def _dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if request.method == "OPTIONS":
        private_network = request.headers.get(
            "Access-Control-Request-Private-Network", "").strip().lower() == "true"
        return web.Response(status=204, headers={
            "Allow": _ALLOWED, **preflight_headers(request.headers.get(hdrs.ORIGIN),
                                                   state.config.cors_origins,
                                                   private_network)})
    if request.method not in ("GET", "HEAD"):
        return _error(405, f"{request.method} is not allowed: this server is read-only",
                      {"Allow": _ALLOWED})
    path = request.raw_path.split("?", 1)[0]
    if path == "/healthz":
        return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})
    if path == "/metrics":
        if not _authorised(request, state.config, None):
            return _unauthorised()
        return web.Response(text=_metrics_text(state), content_type="text/plain",
                            charset="utf-8", headers={"Cache-Control": "no-store"})
    try:
        target = parse_target(request.raw_path)
    except BadKeyError as exc:
        return _error(400, str(exc))
    dataset = state.datasets.get(target.dataset)
    if dataset is None:
        return _error(404, f"no dataset {target.dataset!r} is served here")
    if not _authorised(request, state.config, dataset.config):
        return _unauthorised()
    try:
        return await _answer(request, state, dataset, target)
    except SourcePolicyError as exc:
        log.warning("%s/%s: %s", target.dataset, target.key, exc)
        return _error(403, f"{target.dataset}/{target.key}: the sidecar names a source this "
                           "server may not read")
    except RefindexError as exc:
        # The message names sources and ranges: for the log, not for clients.
        log.warning("%s/%s: %s", target.dataset, target.key, exc)
        return _error(502, f"{target.dataset}/{target.key}: the source could not be read")


async def _answer(request: web.Request, state: ServerState, dataset: ServedDataset,
                  target: StoreKey) -> web.StreamResponse:
    """A key's answer: 404, 304, 200 or 206 (416 for a bad range)."""
    key = target.key
    etag = dataset.etag(key) if key else None
    if etag is None:
        return _error(404, f"{target.dataset}/{key}: no such key (absent chunks read as the "
                           "fill value)")
    document = dataset.documents.get(key)
    compress = (document is not None and len(document) >= GZIP_MIN_SIZE
                and accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING)))
    if compress:
        etag = etag[:-1] + '-gzip"'
    private = state.config.token or dataset.config.token
    headers = {
        "ETag": etag,
        "Cache-Control": f"{'private' if private else 'public'}, "
                         f"max-age={state.config.cache_max_age}",
        "Content-Type": "application/json" if document is not None
                        else "application/octet-stream",
    }
    if document is not None:
        headers["Vary"] = "Accept-Encoding"
    if none_match(request.headers.get(hdrs.IF_NONE_MATCH), etag):
        return web.Response(status=304, headers=headers)
    if request.method == "HEAD" and document is None:
        dataset.check_policy(key)  # GET's 403, without GET's read
        return _head(request, dataset.served_size(key), etag, headers)
    data = document if document is not None else await dataset.read(key)
    if data is None:
        return _error(404, f"{target.dataset}/{key}: no such key")
    if compress:
        cached = state.gzipped.get((dataset.name, key))
        if cached is None:
            cached = state.gzipped[(dataset.name, key)] = gzipped(data)
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=cached, headers=headers)
    headers["Accept-Ranges"] = "bytes"
    try:
        part = _wanted_range(request, etag, len(data))
    except RangeNotSatisfiable as exc:
        return _error(416, f"{target.dataset}/{key}: {exc}",
                      {"Content-Range": f"bytes */{len(data)}"})
    if part is None:
        return web.Response(body=data, headers=headers)
    headers["Content-Range"] = part.content_range
    return web.Response(status=206, body=data[part.start:part.stop], headers=headers)


def _head(request: web.Request, size: int | None, etag: str,
          headers: dict[str, str]) -> web.Response:
    """HEAD of a chunk, answered from the index: nothing is fetched or decoded. Its
    Content-Length is the stored length, or a re-encoded chunk's when it is cached; where
    that is unknown without re-encoding (a re-encoded chunk not cached, a re-tiled chunk of
    an uneven array) there is none, as RFC 9110 (9.3.2, 8.6) allows a HEAD answer, and a
    Range is then ignored (200)."""
    headers = {**headers, "Accept-Ranges": "bytes"}
    if size is None:
        return web.Response(headers=headers)  # aiohttp sends no Content-Length for it
    headers["Content-Length"] = str(size)
    try:
        part = _wanted_range(request, etag, size)
    except RangeNotSatisfiable as exc:
        return _error(416, str(exc), {"Content-Range": f"bytes */{size}"})
    if part is None:
        return web.Response(headers=headers)
    headers.update({"Content-Range": part.content_range,
                    "Content-Length": str(part.stop - part.start)})
    return web.Response(status=206, headers=headers)


def _wanted_range(request: web.Request, etag: str, size: int) -> ByteRange | None:
    """The byte range the request asks of a body of ``size`` bytes (None: all of it); raises
    RangeNotSatisfiable."""
    wanted = request.headers.get(hdrs.RANGE)
    if_range = request.headers.get(hdrs.IF_RANGE)
    if wanted is not None and if_range is not None and if_range.strip() != etag:
        wanted = None  # the client's copy is stale: it gets the whole body
    return byte_range(wanted, size)


def _authorised(request: web.Request, config: ServeConfig,
                dataset: DatasetConfig | None) -> bool:
    """Whether the request may read: no token is configured, or it sends the server's or
    the dataset's (compared in constant time)."""
    tokens = [t for t in (config.token, dataset.token if dataset else None) if t]
    if not tokens:
        return True
    scheme, _, sent = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not sent:
        return False
    return any(hmac.compare_digest(sent.strip().encode(), t.encode()) for t in tokens)


def _unauthorised() -> web.Response:
    return _error(401, "a bearer token is needed (Authorization: Bearer ...)",
                  {"WWW-Authenticate": 'Bearer realm="refindex"'})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers=headers,
                        content_type="text/plain")


def _publish(state: ServerState) -> None:
    """Copy the engines' and the transcoding cache's counters into this worker's row."""
    if state.engines is None:  # made lazily by the stores, in the event loop
        state.engines = list({id(d.store.engine): d.store.engine
                              for d in state.datasets.values()}.values())
    cache = state.transcoder.cache
    state.metrics.publish((e.stats for e in state.engines), cache.hits, cache.misses,
                          cache.size)


def _metrics_text(state: ServerState) -> str:
    _publish(state)
    return state.metrics.render()
