"""UrlResolver: one resolution per source and lifetime for the whole process (every task,
thread and event loop), renewed before expiry, refreshed once when refused; its hooks."""

from __future__ import annotations

import asyncio
import threading
from importlib.metadata import EntryPoint

import pytest

from refindex.errors import FetchError, SourcePolicyError
from refindex.io import RangeRequest, ReadEngine, ReadOptions, lifetime
from refindex.io import resolver as resolver_module
from refindex.io.resolver import ResolvedUrl, UrlResolver

SOURCE = "https://archive.example/data/granule.h5"


class CountingHook:
    """A resolver hook that takes ``delay`` seconds and counts its calls."""

    def __init__(self, delay: float = 0.2, lifetime_seconds: float | None = 600) -> None:
        self.delay, self.lifetime_seconds = delay, lifetime_seconds
        self.calls = 0
        self.fail_with: Exception | None = None

    async def __call__(self, url: str, context) -> ResolvedUrl | None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise self.fail_with
        expires = None if self.lifetime_seconds is None else (
            lifetime.now() + self.lifetime_seconds)
        return ResolvedUrl(f"https://storage.example/signed/{self.calls}", {}, expires)


def _resolver(hook, **options) -> UrlResolver:
    return UrlResolver(ReadOptions(resolvers=(hook,), **options))


def test_a_thousand_concurrent_first_reads_make_one_resolution():
    hook = CountingHook()
    resolver = _resolver(hook)

    async def many():
        return await asyncio.gather(*(resolver.resolve(SOURCE) for _ in range(1000)))

    results = asyncio.run(many())
    assert hook.calls == 1
    assert all(result is results[0] for result in results)


def test_resolvers_on_other_threads_and_loops_share_one_resolution():
    hook = CountingHook(delay=0.3)
    results = []

    def resolve_on_own_loop():
        # A separate resolver (engine) with the same options, on its own event loop.
        results.append(asyncio.run(_resolver(hook).resolve(SOURCE)))

    threads = [threading.Thread(target=resolve_on_own_loop) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert hook.calls == 1
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_a_cancelled_first_caller_hands_over_to_a_waiting_one():
    hook = CountingHook(delay=0.2)
    resolver = _resolver(hook)

    async def scenario():
        first = asyncio.ensure_future(resolver.resolve(SOURCE))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(resolver.resolve(SOURCE))
        await asyncio.sleep(0.05)
        first.cancel()
        return await second

    assert asyncio.run(scenario()).url.startswith("https://storage.example/signed/")
    assert hook.calls == 2


def test_a_failed_resolution_is_shared_by_its_waiters_and_not_kept():
    hook = CountingHook()
    hook.fail_with = FetchError(f"{SOURCE}: login refused")
    resolver = _resolver(hook)

    async def many():
        return await asyncio.gather(*(resolver.resolve(SOURCE) for _ in range(50)),
                                    return_exceptions=True)

    outcomes = asyncio.run(many())
    assert hook.calls == 1
    assert all(isinstance(outcome, FetchError) for outcome in outcomes)
    hook.fail_with = None
    assert asyncio.run(resolver.resolve(SOURCE)).url.endswith("/2")


def test_many_refusals_of_the_same_url_cause_one_new_resolution():
    hook = CountingHook(delay=0.05)
    resolver = _resolver(hook)

    async def refused_everywhere():
        stale = await resolver.resolve(SOURCE)

        async def retry():
            resolver.refresh(SOURCE, stale)
            return await resolver.resolve(SOURCE)

        return await asyncio.gather(*(retry() for _ in range(100)))

    fresh = asyncio.run(refused_everywhere())
    assert hook.calls == 2
    assert all(result is fresh[0] for result in fresh)


def test_a_resolved_url_is_renewed_shortly_before_it_expires(clock):
    hook = CountingHook(delay=0, lifetime_seconds=600)
    resolver = _resolver(hook, presign_margin=60)
    first = asyncio.run(resolver.resolve(SOURCE))
    clock.shift = 539
    assert asyncio.run(resolver.resolve(SOURCE)) is first
    clock.shift = 541
    assert asyncio.run(resolver.resolve(SOURCE)) is not first
    assert hook.calls == 2


def test_a_short_lived_url_is_kept_for_half_its_life(clock):
    hook = CountingHook(delay=0, lifetime_seconds=10)
    resolver = _resolver(hook)  # presign_margin 300 s is longer than the whole lifetime
    first = asyncio.run(resolver.resolve(SOURCE))
    clock.shift = 4.9
    assert asyncio.run(resolver.resolve(SOURCE)) is first
    clock.shift = 5.1
    assert asyncio.run(resolver.resolve(SOURCE)) is not first


def test_a_url_without_lifetime_is_kept_until_refreshed(clock):
    hook = CountingHook(delay=0, lifetime_seconds=None)
    resolver = _resolver(hook)
    first = asyncio.run(resolver.resolve(SOURCE))
    clock.shift = 10 * 365 * 86400
    assert asyncio.run(resolver.resolve(SOURCE)) is first
    resolver.refresh(SOURCE)
    assert asyncio.run(resolver.resolve(SOURCE)) is not first


def test_presigned_s3_url_is_made_once_and_reused_until_near_expiry(s3_env, clock):
    resolver = UrlResolver(ReadOptions(presign_expires=600, presign_margin=60))
    first = asyncio.run(resolver.resolve("s3://bucket/key.h5"))
    assert "X-Amz-Signature" in first.url and first.headers == {}
    assert asyncio.run(resolver.resolve("s3://bucket/key.h5")) is first
    assert asyncio.run(resolver.resolve("s3://bucket/key.h5", "HEAD")) is not first
    clock.shift = 541
    assert asyncio.run(resolver.resolve("s3://bucket/key.h5")) is not first


def test_a_direct_http_source_is_probed_once(http_server, payload):
    url = http_server.put("data.bin", payload)
    engine = ReadEngine(ReadOptions(max_gap=0))
    ranges = [(offset, 10) for offset in range(0, 5000, 100)]
    assert engine.read_sync([RangeRequest(url, o, n) for o, n in ranges]) == [
        payload[o : o + n] for o, n in ranges]
    probes = [entry for entry in http_server.log if entry[2] == "bytes=0-0"]
    assert len(probes) == 1 and len(http_server.log) == len(ranges) + 1
    assert engine.stats.total("resolutions") == 1
    engine.close_sync()


def test_hook_may_decline_and_leave_the_url_to_the_built_in_resolution():
    async def not_mine(url, context):
        return None

    resolver = UrlResolver(ReadOptions(resolvers=(not_mine,), anon=True,
                                       endpoint_url="http://127.0.0.1:9"))
    resolved = asyncio.run(resolver.resolve("s3://bucket/key"))
    assert resolved.url == "http://127.0.0.1:9/bucket/key"


MIRRORED_BY = {"base": ""}


async def rewrite_mirror(url, context):
    """A hook named by "module:function": rewrites the URL, then resolves it the standard way."""
    return await context.standard(url.replace("https://mirror.example/", MIRRORED_BY["base"]))


def test_hook_named_as_module_function_can_use_the_standard_resolution(
    http_server, payload, monkeypatch
):
    url = http_server.put("data.bin", payload)
    monkeypatch.setitem(MIRRORED_BY, "base", url.removesuffix("data.bin"))
    engine = ReadEngine(ReadOptions(resolvers=(f"{__name__}:rewrite_mirror",)))
    request = RangeRequest("https://mirror.example/data.bin", 3, 5)
    assert engine.read_sync([request]) == [payload[3:8]]
    assert http_server.log[-1] == ("GET", "/data.bin", "bytes=3-7")
    engine.close_sync()


ENTRY_POINT_HOOK = CountingHook(delay=0)


def test_entry_point_resolvers_are_used(monkeypatch):
    point = EntryPoint("counting", f"{__name__}:ENTRY_POINT_HOOK", "refindex.resolvers")
    monkeypatch.setattr(resolver_module, "entry_points", lambda group: [point])
    resolver_module._entry_point_hooks.cache_clear()
    try:
        resolved = asyncio.run(UrlResolver(ReadOptions()).resolve(SOURCE))
    finally:
        resolver_module._entry_point_hooks.cache_clear()
    assert resolved.url.startswith("https://storage.example/signed/")
    assert ENTRY_POINT_HOOK.calls >= 1


def test_hook_answer_must_pass_the_source_policy():
    async def to_metadata(url, context):
        return ResolvedUrl("http://169.254.169.254/latest/meta-data/")

    resolver = UrlResolver(ReadOptions(resolvers=(to_metadata,)))
    with pytest.raises(SourcePolicyError, match="redirected to http://169.254.169.254"):
        asyncio.run(resolver.resolve(SOURCE))


def test_a_failing_hook_is_named_in_the_error():
    async def broken(url, context):
        raise KeyError("token")

    with pytest.raises(FetchError, match=r"resolver .*broken failed: KeyError"):
        asyncio.run(UrlResolver(ReadOptions(resolvers=(broken,))).resolve(SOURCE))


def test_an_unloadable_hook_name_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot load 'no_such_module:resolve'"):
        asyncio.run(UrlResolver(ReadOptions(resolvers=("no_such_module:resolve",))).resolve(SOURCE))
