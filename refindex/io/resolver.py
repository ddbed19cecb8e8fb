"""UrlResolver: map a source URL to the URL that fetches its bytes, once per source and
lifetime for the whole process.

``s3://`` objects are presigned locally; ``http(s)://`` sources are followed through their
redirects and login pages (``redirects``, ``login``); archive-specific resolvers from
``ReadOptions.resolvers`` and the ``refindex.resolvers`` entry-point group come first. What
is resolved is shared by every engine with the same credentials and policy, on every thread
and event loop (``SingleFlight``): a thousand concurrent first reads of a source make one
resolution, and a URL is resolved anew only shortly before it expires, or once when the
server refuses it (``refresh``).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import math
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import aiohttp

from refindex.errors import FetchError, RefindexError
from refindex.io import lifetime
from refindex.io.login import Login, netrc_path, origin
from refindex.io.options import ReadOptions
from refindex.io.policy import SourcePolicy, policy_for
from refindex.io.redirects import follow_redirects
from refindex.io.s3 import S3Presigner, endpoint_url, forget_credentials
from refindex.io.sessions import LoopResourcePool
from refindex.io.singleflight import SingleFlight
from refindex.io.stats import ReadStats
from refindex.io.urls import scheme_of

ENTRY_POINT_GROUP = "refindex.resolvers"


@dataclass(frozen=True, eq=False)
class ResolvedUrl:
    """Where to send the requests for a source: ``url``, with ``headers`` (cookies,
    ``Authorization``), until ``expires`` (seconds since the epoch; None: no known end)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    expires: float | None = None


Resolver = Callable[[str, "ResolveContext"], Awaitable[ResolvedUrl | None]]
"""An archive-specific resolver: ``async (url, context) -> ResolvedUrl | None`` (None: not
mine, try the next one)."""


@dataclass(frozen=True)
class ResolveContext:
    """What a resolver hook gets besides the URL: the options, the HTTP method the URL is
    for (``GET`` or ``HEAD``), the running loop's HTTP session (``session``), and the
    built-in resolution (``await context.standard(url)``) for URLs the hook has rewritten."""

    options: ReadOptions
    method: str
    standard: Callable[[str], Awaitable[ResolvedUrl]]
    _session: Callable[[], aiohttp.ClientSession]

    @property
    def session(self) -> aiohttp.ClientSession:
        """The running event loop's aiohttp session (made on first use)."""
        return self._session()


class UrlResolver:
    """Source URL -> ``ResolvedUrl``, from the process-wide cache or resolved once.

    The fetcher asks for a URL per attempt (``await resolve(url, method)``) and reports a
    401/403 with ``refresh(url, stale)``; the next ``resolve`` then resolves anew, once.
    """

    def __init__(
        self,
        options: ReadOptions,
        resources: LoopResourcePool | None = None,
        stats: ReadStats | None = None,
    ) -> None:
        self._options = options
        self._resources = resources
        self._stats = stats if stats is not None else ReadStats()
        self._state: _SharedState | None = None

    async def resolve(self, url: str, method: str = "GET") -> ResolvedUrl:
        """Where to send ``method`` (GET or HEAD) for source ``url``."""
        state = self._shared()
        return await state.resolved.get(
            _key(url, method),
            lambda: self._resolve_anew(state, url, method),
            patience=self._patience,
        )

    def can_refresh(self, url: str) -> bool:
        """True if a 401/403 on ``url`` may go away once it is resolved anew."""
        return scheme_of(url) != "file"

    def refresh(self, url: str, stale: ResolvedUrl | None = None) -> None:
        """Forget what was resolved for ``url`` (only if it is still ``stale``, when given,
        so that many reads refused at once cause one new resolution)."""
        state = self._shared()
        for method in ("GET", "HEAD"):
            state.resolved.invalidate(_key(url, method), stale)

    @property
    def _patience(self) -> float:
        """Seconds to wait for another caller's resolution before making one's own."""
        return self._options.timeout * (self._options.max_redirects + 1)

    def _shared(self) -> _SharedState:
        if self._state is None:
            self._state = _shared_state(self._options)
        return self._state

    async def _resolve_anew(
        self, state: _SharedState, url: str, method: str
    ) -> tuple[ResolvedUrl, float]:
        scheme = scheme_of(url)
        context = ResolveContext(
            self._options, method, functools.partial(self._standard, state, method=method),
            self._session,
        )
        resolved = None
        for hook in state.hooks:
            resolved = await _call_hook(hook, url, context)
            if resolved is not None:
                if resolved.url != url:
                    state.policy.check_redirect(url, resolved.url)
                break
        if resolved is None:
            resolved = await self._standard(state, url, method=method)
        self._stats.add(scheme, resolutions=1)
        at = lifetime.now()
        if resolved.expires is None:
            return resolved, math.inf
        return resolved, lifetime.renewal_time(resolved.expires, at, self._options.presign_margin)

    async def _standard(self, state: _SharedState, url: str, method: str) -> ResolvedUrl:
        """The built-in resolution: presign ``s3://``, follow ``http(s)://``."""
        scheme = scheme_of(url)
        if scheme == "s3":
            # Making the botocore client the first time takes tens of milliseconds: not on
            # the event loop.
            signed = await asyncio.to_thread(state.presigner.sign, method, url)
            return ResolvedUrl(signed, {}, lifetime.url_expiry(signed, lifetime.now()))
        if scheme in ("http", "https"):
            return await self._after_first_contact(state, url, scheme)
        return ResolvedUrl(url)

    async def _after_first_contact(self, state: _SharedState, url: str, scheme: str) -> ResolvedUrl:
        """Follow ``url``; the first resolution for each host goes alone, so that the login
        it makes (a session cookie) serves the other sources there instead of each logging
        in at the same time."""

        async def follow() -> ResolvedUrl:
            found, headers, expires = await follow_redirects(
                url, self._session(), state.login, state.policy, self._options,
                functools.partial(self._stats.add, scheme),
            )
            return ResolvedUrl(found, headers, expires)

        first: list[ResolvedUrl] = []
        led: list[bool] = []

        async def pioneer() -> tuple[ResolvedUrl, float]:
            led.append(True)
            first.append(await follow())
            return first[0], math.inf

        try:
            await state.contacted.get(origin(url), pioneer, patience=self._patience)
        except Exception:
            if led:
                raise
            # Another source's first resolution failed (its own 404, say): go on alone.
        return first[0] if first else await follow()

    def _session(self) -> aiohttp.ClientSession:
        if self._resources is None:
            self._resources = LoopResourcePool(self._options)
        return self._resources.get().session


def forget_resolutions() -> None:
    """Forget every resolved URL, login cookie and AWS credential of the process (the next
    reads resolve and log in anew)."""
    forget_credentials()
    with _states_lock:
        states = list(_states.values())
        _states.clear()
    for state in states:  # engines that hold on to them start afresh too
        state.clear()


class _SharedState:
    """What every engine with the same credentials and policy shares in one process."""

    def __init__(self, options: ReadOptions) -> None:
        self.resolved: SingleFlight[ResolvedUrl] = SingleFlight()
        # Hosts contacted once: the first resolution of each went alone (see
        # UrlResolver._after_first_contact).
        self.contacted: SingleFlight[ResolvedUrl] = SingleFlight()
        self.login = Login(options.bearer_token, netrc_path())
        self.presigner = S3Presigner(options)
        self.policy: SourcePolicy = policy_for(options)
        self.hooks: tuple[Resolver, ...] = (
            *(_load_hook(hook) for hook in options.resolvers),
            *_entry_point_hooks(),
        )


    def clear(self) -> None:
        """Forget resolved URLs, contacted hosts and session cookies."""
        self.resolved.clear()
        self.contacted.clear()
        self.login.clear()


_states: dict[tuple, _SharedState] = {}
_states_lock = threading.Lock()


def _shared_state(options: ReadOptions) -> _SharedState:
    # Everything a resolution depends on: who signs, who logs in, what the policy allows.
    scope = (
        endpoint_url(options), options.region, options.anon, options.presign_expires,
        options.presign_margin, options.bearer_token, netrc_path(), options.resolvers,
        options.resolve_ttl, options.max_redirects, options.allowed_sources,
        options.local_sources, options.source_hosts,
    )
    with _states_lock:
        state = _states.get(scope)
        if state is None:
            state = _states[scope] = _SharedState(options)
        return state


def _key(url: str, method: str) -> tuple[str, str]:
    # A presigned S3 URL is signed for one method; an HTTP redirect serves both.
    return (method if url.startswith("s3://") else "GET", url)


async def _call_hook(hook: Resolver, url: str, context: ResolveContext) -> ResolvedUrl | None:
    try:
        resolved = await hook(url, context)
    except RefindexError:
        raise
    except Exception as error:  # noqa: BLE001 - a plug-in's failure, named and kept as cause
        name = getattr(hook, "__qualname__", repr(hook))
        cause = f"{type(error).__name__}: {error}"
        raise FetchError(f"{url}: resolver {name} failed: {cause}") from error
    if resolved is not None and not isinstance(resolved, ResolvedUrl):
        raise FetchError(f"{url}: resolver {hook!r} returned {resolved!r}, not a ResolvedUrl")
    return resolved


def _load_hook(hook: Resolver | str) -> Resolver:
    """A resolver from ``ReadOptions.resolvers``: a callable, or ``"module:attribute"``."""
    if callable(hook):
        return hook
    module, _, name = str(hook).partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(
            f"ReadOptions.resolvers: cannot load {hook!r} (expected 'module:function'): {error}"
        ) from error


@functools.cache
def _entry_point_hooks() -> tuple[Resolver, ...]:
    """The resolvers installed packages register in the ``refindex.resolvers`` group."""
    return tuple(point.load() for point in entry_points(group=ENTRY_POINT_GROUP))
