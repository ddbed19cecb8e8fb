"""HostThrottle (the AIMD rule) and HostLimiter (the per-host gate), without a network."""

import asyncio

import pytest

from refindex.io.sessions import host_limiter
from refindex.io.throttle import HostLimiter, HostThrottle


def test_a_new_host_may_have_its_ceiling_in_flight():
    assert HostThrottle(32).limit == 32


def test_a_round_trip_of_throttled_answers_halves_the_limit():
    throttle = HostThrottle(32)
    for _ in range(32):
        throttle.throttled()
    assert throttle.limit == 16


def test_sustained_throttling_brings_the_limit_to_one_and_no_lower():
    throttle = HostThrottle(32)
    for _ in range(1000):
        throttle.throttled()
    assert throttle.limit == 1


def test_successes_raise_the_limit_by_one_per_increase_every():
    throttle = HostThrottle(8, increase_every=4)
    for _ in range(8):
        throttle.throttled()
    assert throttle.limit == 4
    for _ in range(4):
        throttle.succeeded()
    assert throttle.limit == 5


def test_successes_never_raise_the_limit_above_the_ceiling():
    throttle = HostThrottle(8)
    throttle.throttled()
    for _ in range(1000):
        throttle.succeeded()
    assert throttle.limit == 8


def test_sporadic_throttling_keeps_the_limit_near_the_ceiling():
    # One answer in twenty throttled (5%), as a busy S3 prefix may do at random.
    throttle = HostThrottle(32)
    lowest = 32
    for answer in range(2000):
        if answer % 20 == 0:
            throttle.throttled()
        else:
            throttle.succeeded()
        lowest = min(lowest, throttle.limit)
    assert lowest >= 31


def test_mostly_throttled_answers_drive_the_limit_down():
    throttle = HostThrottle(32)
    for answer in range(400):
        if answer % 2:
            throttle.throttled()
        else:
            throttle.succeeded()
    assert throttle.limit == 1


def test_a_caller_allowing_more_raises_the_ceiling_keeping_the_reduction():
    throttle = HostThrottle(8)
    for _ in range(4):
        throttle.throttled()
    throttle.raise_ceiling(16)
    assert (throttle.ceiling, throttle.limit) == (16, 14)
    throttle.raise_ceiling(4)
    assert throttle.ceiling == 16


@pytest.mark.parametrize(
    "arguments",
    [{"ceiling": 0}, {"ceiling": 4, "decrease": 1.0}, {"ceiling": 4, "increase_every": 0}],
)
def test_invalid_settings_are_refused(arguments):
    with pytest.raises(ValueError):
        HostThrottle(**arguments)


async def _hold(limiter: HostLimiter, ceiling: int, seen: list[int], release: asyncio.Event):
    async with limiter.slot(ceiling):
        seen.append(limiter.in_flight)
        await release.wait()


async def _settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_limiter_admits_no_more_than_the_limit():
    async def main():
        limiter = HostLimiter("http://h", HostThrottle(3))
        release, seen = asyncio.Event(), []
        tasks = [asyncio.ensure_future(_hold(limiter, 3, seen, release)) for _ in range(10)]
        await _settle()
        assert (limiter.in_flight, len(seen)) == (3, 3)
        release.set()
        await asyncio.gather(*tasks)
        assert max(seen) == 3 and len(seen) == 10 and limiter.in_flight == 0

    asyncio.run(main())


def test_limiter_admits_fewer_after_throttling_and_more_after_successes():
    async def main():
        limiter = HostLimiter("http://h", HostThrottle(4, increase_every=1))
        for _ in range(4):
            limiter.throttled()
        assert limiter.throttle.limit == 2
        release, seen = asyncio.Event(), []
        tasks = [asyncio.ensure_future(_hold(limiter, 4, seen, release)) for _ in range(6)]
        await _settle()
        assert limiter.in_flight == 2
        limiter.succeeded()  # the limit goes to 3: a waiter is admitted at once
        await _settle()
        assert limiter.in_flight == 3
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())


def test_each_caller_keeps_to_its_own_ceiling():
    async def main():
        limiter = HostLimiter("http://h", HostThrottle(8))
        release, seen = asyncio.Event(), []
        small = [asyncio.ensure_future(_hold(limiter, 2, seen, release)) for _ in range(4)]
        await _settle()
        assert limiter.in_flight == 2
        large = [asyncio.ensure_future(_hold(limiter, 8, seen, release)) for _ in range(4)]
        await _settle()
        # First come, first served: the small callers' waiters are ahead in the queue.
        assert limiter.in_flight == 2
        release.set()
        await asyncio.gather(*small, *large)
        assert limiter.in_flight == 0

    asyncio.run(main())


def test_a_cancelled_waiter_gives_its_place_on():
    async def main():
        limiter = HostLimiter("http://h", HostThrottle(1))
        release, seen = asyncio.Event(), []
        holder = asyncio.ensure_future(_hold(limiter, 1, seen, release))
        cancelled = asyncio.ensure_future(_hold(limiter, 1, seen, release))
        waiting = asyncio.ensure_future(_hold(limiter, 1, seen, release))
        await _settle()
        cancelled.cancel()
        release.set()
        await asyncio.gather(holder, waiting)
        assert cancelled.cancelled() and len(seen) == 2 and limiter.in_flight == 0

    asyncio.run(main())


def test_engines_on_one_loop_share_a_hosts_limiter():
    async def limiters():
        return host_limiter("http://127.0.0.1:1", 32), host_limiter("http://127.0.0.1:1", 8)

    async def main():
        first, second = await limiters()
        assert first is second
        other = await asyncio.get_running_loop().run_in_executor(None, asyncio.run, limiters())
        assert other[0] is not first  # another loop has its own

    asyncio.run(main())
