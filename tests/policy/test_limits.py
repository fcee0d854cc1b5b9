"""Per-credential limits (arun.policy.limits) on the memory and the Redis backends.

Waiting is measured on the limiter's injected clock, never on the wall clock.
On a :class:`FakeClock` every wait of the memory backend is exact, and a Redis
limiter's deadlines and sleeps stand still: a call that returns without the
clock moving returned without waiting, and a sleeper wakes only when poked.
The Redis window itself runs on Redis ``TIME``, so Redis waits are checked by
their outcome and by relations on that clock (``Permit.granted_at``,
``retry_after``), which noise on the machine cannot break.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from fake_clock import FakeClock, run_ready
from redis_fixtures import REDIS_URL, delete_prefix

from arun.errors import InvokeRateLimitError
from arun.policy.limits import (
    LimitExceededError,
    LimitSpec,
    MemoryLimiter,
    Permit,
    RateLimitHeaders,
    limiter_for_state,
    open_limiter,
    parse_duration,
    parse_rate_limit_headers,
)
from arun.state import StateUnavailableError
from arun.testing.services import require_service


class Factory:
    """Builds limiters of one backend; Redis ones share a per-test prefix."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.prefix = f"arun-test-lim-{uuid.uuid4().hex[:12]}:"
        self.made: list = []

    def __call__(self, window: float = 60.0, *, clock: FakeClock | None = None, **kw):
        """``clock`` drives deadlines and sleeps; ``kw`` (lease, poll, ...) only reaches Redis."""
        timing = {} if clock is None else {"clock": clock, "call_later": clock.call_later}
        if self.backend == "memory":
            lim = open_limiter("memory://", window=window, **timing)
        else:
            lim = open_limiter(f"{REDIS_URL}?prefix={self.prefix}", window=window, **timing, **kw)
        self.made.append(lim)
        return lim

    async def flush(self, lim) -> None:
        """Redis writes what observe() learned in the background: wait until it is there."""
        if self.backend == "redis":
            await lim.flush()

    async def close(self) -> None:
        for lim in self.made:
            if self.backend == "redis":
                with contextlib.suppress(Exception):
                    await delete_prefix(lim.client, self.prefix)
            await lim.aclose()


@pytest.fixture(params=["memory", "redis"])
async def make(request):
    if request.param == "redis":
        require_service(REDIS_URL, "Redis")
    f = Factory(request.param)
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
async def make_redis():
    require_service(REDIS_URL, "Redis")
    f = Factory("redis")
    try:
        yield f
    finally:
        await f.close()


def memory(window: float = 60.0, **kw) -> tuple[MemoryLimiter, FakeClock]:
    clock = FakeClock()
    return MemoryLimiter(window=window, clock=clock, call_later=clock.call_later, **kw), clock


async def redis_now(lim) -> float:
    """Redis ``TIME``: the clock a Redis limiter's window runs on."""
    sec, usec = await lim.client.time()
    return sec + usec / 1e6


def ms(t: float) -> int:
    return round(t * 1000)


def assert_counts_down_to(retry_after: float, ends_at: float, before: float, after: float) -> None:
    """``retry_after`` was measured to ``ends_at`` from a decision made between ``before`` and ``after``.

    All on Redis's clock; the script rounds grant times down and waits up to the millisecond.
    """
    decided = ends_at - retry_after
    assert before - 0.002 - 1e-6 <= decided <= after + 1e-6, (before, decided, after)


K = "tenant:openai:gpt-4o:cfg-1"


# --------------------------------------------------------------------------------------
# LimitSpec and header parsing (no backend)
# --------------------------------------------------------------------------------------
def test_spec_from_mapping_reads_ints_and_numeric_strings():
    assert LimitSpec.from_mapping({"rpm": 60, "tpm": "90000", "max_in_flight": "4", "api_key": "x"}) == LimitSpec(60, 90000, 4)
    assert LimitSpec.from_mapping({"rpm": "60.0", "tpm": " "}) == LimitSpec(rpm=60)
    assert LimitSpec.from_mapping(None) == LimitSpec()
    assert LimitSpec.from_mapping({}).unlimited
    for bad in ({"rpm": 0}, {"tpm": -5}, {"rpm": "abc"}, {"max_in_flight": 1.5}, {"rpm": True}):
        with pytest.raises(ValueError):
            LimitSpec.from_mapping(bad)
    with pytest.raises(ValueError):
        LimitSpec(rpm=0)


def test_spec_tighten_takes_the_stricter_limit():
    a = LimitSpec(rpm=100, tpm=None, max_in_flight=8)
    b = LimitSpec(rpm=50, tpm=1000)
    assert a.tighten(b) == LimitSpec(50, 1000, 8)
    assert a.tighten(None) is a


def test_parse_duration_openai_forms():
    assert parse_duration("12ms") == pytest.approx(0.012)
    assert parse_duration("6m0s") == pytest.approx(360.0)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("1s") == 1.0
    assert parse_duration("0.5") == 0.5
    assert parse_duration("soon") is None
    assert parse_duration("") is None


def test_parse_openai_headers():
    h = {
        "X-RateLimit-Limit-Requests": "500",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "29000",
        "x-ratelimit-reset-requests": "1m30s",
        "x-ratelimit-reset-tokens": "2s",
    }
    info = parse_rate_limit_headers(h)
    assert info.limit_requests == 500 and info.limit_tokens == 30000
    assert info.block_for == pytest.approx(90.0) and info.reason == "x-ratelimit-remaining-requests=0"
    # remaining > 0: nothing to block
    h["x-ratelimit-remaining-requests"] = "3"
    assert parse_rate_limit_headers(h).block_for == 0


def test_parse_anthropic_headers_and_retry_after():
    now = time.time()
    reset = datetime.fromtimestamp(now + 20, timezone.utc).isoformat().replace("+00:00", "Z")
    h = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "10",
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": reset,
        "anthropic-ratelimit-input-tokens-remaining": "100",
    }
    info = parse_rate_limit_headers(h, now_wall=now)
    assert (info.limit_requests, info.limit_tokens) == (50, 40000)
    assert info.block_for == pytest.approx(20.0, abs=0.01)
    assert info.reason == "anthropic-ratelimit-tokens-remaining=0"
    assert parse_rate_limit_headers({"retry-after": "7"}).block_for == 7.0
    assert parse_rate_limit_headers({"retry-after-ms": "250"}).block_for == 0.25
    # retry-after is longer than the reset: the longest wins
    assert parse_rate_limit_headers({**h, "retry-after": "45"}, now_wall=now).block_for == 45.0
    assert parse_rate_limit_headers({"content-type": "application/json"}).block_for == 0


def test_header_parsing_lives_with_retry_after_in_the_protocol_layer():
    from arun.protocols import errors

    assert parse_rate_limit_headers is errors.parse_rate_limit_headers
    assert parse_duration is errors.parse_duration and RateLimitHeaders is errors.RateLimitHeaders
    # one retry-after parser: an HTTP date is measured from the caller's now, as the resets are
    now = 1_700_000_000.0
    date = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert errors.parse_retry_after({"retry-after": date}, now_wall=now) == 20.0
    assert parse_rate_limit_headers({"Retry-After": date}, now_wall=now) == RateLimitHeaders(None, None, 20.0, "retry-after")
    assert parse_rate_limit_headers({"retry-after": "0"}).empty
    # an absurd count is ignored, not an OverflowError
    assert parse_rate_limit_headers({"x-ratelimit-limit-requests": "inf"}).empty


def test_limit_exceeded_is_a_rate_limit_error():
    err = LimitExceededError("k", "rpm", 1.5)
    assert isinstance(err, InvokeRateLimitError)
    assert err.retry_after == 1.5 and err.reason == "rpm" and err.key == "k"


# --------------------------------------------------------------------------------------
# Both backends
# --------------------------------------------------------------------------------------
async def test_unlimited_grants_immediately(make):
    lim = make()
    spec = LimitSpec()
    for _ in range(20):
        async with await lim.acquire(K, spec, 1000) as permit:
            assert isinstance(permit, Permit) and permit.waited == 0.0
            await permit.settle(10)
    snap = await lim.snapshot(K, spec)
    assert snap.requests_remaining is None and snap.tokens_remaining is None and snap.in_flight == 0


async def test_rpm_waits_for_the_oldest_request_to_leave_the_window():
    lim, clock = memory(window=0.5)
    spec = LimitSpec(rpm=3)
    for _ in range(3):  # granted at 0, 0.125, 0.25 without waiting
        p = await lim.acquire(K, spec, 1)
        await p.release()
        assert p.waited == 0.0
        await clock.advance(0.125)
    assert (await lim.snapshot(K, spec)).requests_remaining == 0
    task = asyncio.create_task(lim.acquire(K, spec, 1))  # waits instead of failing
    await run_ready()
    assert clock.timers == [0.125]  # exactly until the grant at 0 leaves the window at 0.5
    await clock.advance(0.0625)
    assert not task.done()
    await clock.advance(0.0625)
    p = task.result()
    await p.release()
    assert p.waited == 0.125


async def test_redis_rpm_waits_for_the_oldest_request_to_leave_the_window(make_redis):
    lim = make_redis(window=1.0)
    spec = LimitSpec(rpm=3)
    first = []
    for _ in range(3):
        p = await lim.acquire(K, spec, 1)
        await p.release()
        assert p.waited == 0.0  # granted on the fast path
        first.append(p)
    assert (await lim.snapshot(K, spec)).requests_remaining == 0
    p = await lim.acquire(K, spec, 1, deadline=30)  # waits instead of failing ...
    await p.release()
    # ... on Redis's clock, until the oldest grant left the window
    assert ms(p.granted_at) - ms(first[0].granted_at) >= 1000


async def test_many_concurrent_callers_never_exceed_rpm_in_any_window():
    lim, clock = memory(window=0.5)
    spec = LimitSpec(rpm=5)
    grants: list[float] = []

    async def one():
        async with await lim.acquire(K, spec, 1):
            grants.append(clock())

    tasks = [asyncio.create_task(one()) for _ in range(15)]
    await run_ready()
    while not all(t.done() for t in tasks):
        assert clock.timers, "callers wait with nothing to wake them"
        await clock.advance(clock.timers[0])
    assert len(grants) == 15
    # any 5 + 1 consecutive grants span a full window ...
    for i in range(len(grants) - 5):
        assert grants[i + 5] - grants[i] >= 0.5
    # ... and each waiter got in the moment capacity returned
    assert grants == [0.0] * 5 + [0.5] * 5 + [1.0] * 5


async def test_redis_many_concurrent_callers_never_exceed_rpm_in_any_window(make_redis):
    lim = make_redis(window=0.5)
    spec = LimitSpec(rpm=5)
    grants: list[int] = []

    async def one():
        async with await lim.acquire(K, spec, 1, deadline=30) as p:
            grants.append(ms(p.granted_at))

    await asyncio.gather(*(one() for _ in range(15)))
    grants.sort()
    assert len(grants) == 15
    # any 5 + 1 consecutive grants span a full window of Redis's clock
    for i in range(len(grants) - 5):
        assert grants[i + 5] - grants[i] >= 500


async def test_tpm_reserves_and_a_refund_wakes_the_waiter_early(make):
    clock = FakeClock()
    lim = make(window=5.0, clock=clock, poll=1000.0)
    spec = LimitSpec(tpm=100)
    first = await lim.acquire(K, spec, 60)
    assert (await lim.snapshot(K, spec)).tokens_remaining == 40

    waiter = asyncio.create_task(lim.acquire(K, spec, 60))
    await clock.sleepers(1)  # 60 + 60 > 100: it waits ...
    assert clock.timers[0] > 4.0  # ... for the first reservation to leave the 5 s window
    await clock.advance(1.0)
    assert not waiter.done()
    await first.settle(10)  # used only 10: refund 50
    second = await asyncio.wait_for(waiter, 10)  # the clock stands still: only the refund can wake it
    assert second.waited == 1.0
    assert (await lim.snapshot(K, spec)).tokens_remaining == 30
    await first.release()
    await second.release()


async def test_settle_charges_more_than_reserved(make):
    clock = FakeClock()
    lim = make(window=5.0, clock=clock, poll=1000.0)
    spec = LimitSpec(tpm=100)
    p = await lim.acquire(K, spec, 10)
    await p.settle(90)
    assert p.tokens == 90
    assert (await lim.snapshot(K, spec)).tokens_remaining == 10
    before = await redis_now(lim) if make.backend == "redis" else 0.0
    task = asyncio.create_task(lim.acquire(K, spec, 20, deadline=0.25))
    await clock.sleepers(1)
    assert clock.timers == [0.25]  # a refund could still come: a token wait lasts to the deadline
    await clock.advance(0.25)
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(task, 10)
    assert ei.value.reason == "tpm"
    # retry_after: until the 90-token reservation leaves the window
    if make.backend == "memory":
        assert ei.value.retry_after == 4.75
    else:
        assert_counts_down_to(ei.value.retry_after, p.granted_at + 5.0, before, await redis_now(lim))
    await p.settle(None)  # unknown usage keeps the reservation
    assert (await lim.snapshot(K, spec)).tokens_remaining == 10
    await p.release()


async def test_exit_without_settle_keeps_the_reservation(make):
    lim = make(window=5.0)
    spec = LimitSpec(rpm=10, tpm=1000)
    async with await lim.acquire(K, spec, 300):
        pass
    snap = await lim.snapshot(K, spec)
    assert (snap.requests_remaining, snap.tokens_remaining, snap.in_flight) == (9, 700, 0)


async def test_request_larger_than_tpm_fails_at_once(make):
    clock = FakeClock()
    lim = make(clock=clock)
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(lim.acquire(K, LimitSpec(tpm=1000), 1001, deadline=5), 10)
    assert ei.value.reason == "too_large" and ei.value.retry_after is None
    assert clock.timers == []  # never slept


async def test_in_flight_cap_with_fifo_waiting(make):
    clock = FakeClock()
    lim = make(clock=clock, poll=1000.0)
    spec = LimitSpec(max_in_flight=2)
    a = await lim.acquire(K, spec, 1)
    b = await lim.acquire(K, spec, 1)
    order: list[int] = []
    out = [2, 2]  # permits out now, most ever

    async def waiter(i: int) -> Permit:
        p = await lim.acquire(K, spec, 1, deadline=1000)
        order.append(i)
        out[0] += 1
        out[1] = max(out)
        return p

    async def release(p: Permit) -> None:
        out[0] -= 1
        await p.release()

    tasks = []
    for i in range(3):
        tasks.append(asyncio.create_task(waiter(i)))
        await clock.sleepers(i + 1)  # queued before the next one comes
    assert order == []
    assert (await lim.snapshot(K, spec)).in_flight == 2
    await release(a)
    await a.release()  # idempotent
    p0 = await asyncio.wait_for(tasks[0], 10)
    await release(b)
    p1 = await asyncio.wait_for(tasks[1], 10)
    assert not tasks[2].done()
    await release(p0)
    p2 = await asyncio.wait_for(tasks[2], 10)
    assert order == [0, 1, 2]
    assert out[1] == 2  # never more than max_in_flight at once
    assert clock.now == 0.0  # every waiter was let in by a release, none by a timer
    await p1.release()
    await p2.release()
    assert (await lim.snapshot(K, spec)).in_flight == 0


async def test_in_flight_deadline_raises_after_waiting(make):
    clock = FakeClock()
    lim = make(clock=clock, poll=1000.0)
    spec = LimitSpec(max_in_flight=1)
    held = await lim.acquire(K, spec, 1)
    task = asyncio.create_task(lim.acquire(K, spec, 1, deadline=0.25))
    await clock.sleepers(1)
    assert clock.timers == [0.25]  # no release comes: to the deadline
    await clock.advance(0.125)
    assert not task.done()
    await clock.advance(0.125)
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(task, 10)
    assert ei.value.reason == "in_flight"
    assert ei.value.retry_after == 1.0  # no permit released yet to learn the holding time from
    await held.release()
    async with await lim.acquire(K, spec, 1, deadline=0.25):
        pass


async def test_in_flight_retry_after_is_the_average_holding_time():
    lim, clock = memory()
    spec = LimitSpec(max_in_flight=1)
    for held in (0.5, 1.0):
        p = await lim.acquire(K, spec, 1)
        await clock.advance(held)
        await p.release()
    held = await lim.acquire(K, spec, 1)
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 1, deadline=0)
    assert ei.value.reason == "in_flight" and ei.value.retry_after == pytest.approx(0.5 * 0.8 + 1.0 * 0.2)
    await held.release()


async def test_rpm_wait_beyond_the_deadline_fails_fast_with_retry_after(make):
    clock = FakeClock()
    lim = make(window=3.0, clock=clock)
    spec = LimitSpec(rpm=1)
    first = await lim.acquire(K, spec, 1)
    await first.release()
    before = await redis_now(lim) if make.backend == "redis" else 0.0
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(lim.acquire(K, spec, 1, deadline=0.5), 10)
    assert clock.timers == []  # no point burning the deadline: failed without sleeping
    assert ei.value.reason == "rpm"
    if make.backend == "memory":
        assert ei.value.retry_after == 3.0
    else:
        assert_counts_down_to(ei.value.retry_after, first.granted_at + 3.0, before, await redis_now(lim))


async def test_cancelled_waiter_does_not_wedge_the_queue(make):
    clock = FakeClock()
    lim = make(clock=clock, poll=1000.0)
    spec = LimitSpec(max_in_flight=1)
    held = await lim.acquire(K, spec, 1)
    w1 = asyncio.create_task(lim.acquire(K, spec, 1, deadline=1000))
    await clock.sleepers(1)  # the head, asleep
    w2 = asyncio.create_task(lim.acquire(K, spec, 1))
    await run_ready()  # queued behind it (no round trip: the queue is not empty)
    w1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w1
    await held.release()
    p = await asyncio.wait_for(w2, 10)
    await p.release()
    assert (await lim.snapshot(K, spec)).in_flight == 0


async def test_a_small_request_does_not_overtake_a_waiting_large_one():
    lim, _clock = memory(window=5.0)
    spec = LimitSpec(tpm=100)
    first = await lim.acquire(K, spec, 60)
    large = asyncio.create_task(lim.acquire(K, spec, 60))
    await run_ready()
    small = asyncio.create_task(lim.acquire(K, spec, 10))  # would fit now, but comes second
    await run_ready()
    assert not large.done() and not small.done()
    await first.settle(30)  # 30 + 60 fits: the large one goes first, then the small one fits too
    await run_ready()
    assert large.done() and small.done()
    assert (await lim.snapshot(K, spec)).tokens_remaining == 0


async def test_deadline_passed_in_the_queue_reports_what_the_head_waits_for():
    lim, clock = memory(window=2.0)
    spec = LimitSpec(rpm=1)
    await (await lim.acquire(K, spec, 1)).release()
    head = asyncio.create_task(lim.acquire(K, spec, 1, deadline=10))
    await run_ready()
    behind = asyncio.create_task(lim.acquire(K, spec, 1, deadline=0.5))
    await run_ready()
    assert sorted(clock.timers) == [0.5, 2.0]
    await clock.advance(0.5)
    with pytest.raises(LimitExceededError) as ei:
        behind.result()
    assert ei.value.reason == "rpm" and ei.value.retry_after == 1.5
    assert "queue" in str(ei.value)
    await clock.advance(1.5)
    p = head.result()
    assert p.waited == 2.0


async def test_a_too_large_request_fails_at_once_even_behind_others():
    lim, _clock = memory()
    spec = LimitSpec(tpm=100, max_in_flight=1)
    held = await lim.acquire(K, spec, 10)
    queued = asyncio.create_task(lim.acquire(K, spec, 10))
    await run_ready()
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 101, deadline=30)
    assert ei.value.reason == "too_large"
    await held.release()
    await run_ready()
    await (queued.result()).release()


async def test_closing_fails_every_waiter():
    lim, _clock = memory()
    spec = LimitSpec(max_in_flight=1)
    await lim.acquire(K, spec, 1)
    waiters = [asyncio.create_task(lim.acquire(K, spec, 1)) for _ in range(3)]
    await run_ready()
    await lim.aclose()
    await run_ready()
    for w in waiters:
        with pytest.raises(LimitExceededError) as ei:
            w.result()
        assert ei.value.reason == "closed" and ei.value.retry_after is None
    with pytest.raises(RuntimeError):
        await lim.acquire(K, spec, 1)


async def test_openai_headers_block_until_reset():
    lim, clock = memory()
    spec = LimitSpec(rpm=1000)
    lim.observe(K, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "500ms",
                    "x-ratelimit-limit-requests": "5000"})
    snap = await lim.snapshot(K, spec)
    assert snap.blocked_until is not None and snap.blocked_until > time.time()
    assert snap.block_reason == "x-ratelimit-remaining-requests=0"
    assert snap.rpm == 1000  # learned 5000 is larger than configured: no change
    task = asyncio.create_task(lim.acquire(K, spec, 1))
    await run_ready()
    assert clock.timers == [0.5]  # exactly until the reset
    await clock.advance(0.25)
    assert not task.done()
    await clock.advance(0.25)
    async with task.result() as p:
        assert p.waited == 0.5
    assert (await lim.snapshot(K, spec)).blocked_until is None


async def test_redis_openai_headers_block_until_reset(make_redis):
    a, b = make_redis(), make_redis()  # b stands for another process: it knows the block from Redis only
    spec = LimitSpec(rpm=1000)
    before = await redis_now(a)
    a.observe(K, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "400ms",
                  "x-ratelimit-limit-requests": "5000"})
    await a.flush()
    assert (await b.snapshot(K, spec)).rpm == 1000  # learned 5000 is larger than configured: no change
    for lim in (a, b):
        async with await lim.acquire(K, spec, 1, deadline=30) as p:
            # on Redis's clock: not before the block, written after `before`, ran out
            assert ms(p.granted_at) >= ms(before) + 400 - 1
    assert (await b.snapshot(K, spec)).blocked_until is None


async def test_retry_after_blocks_and_fails_fast_past_the_deadline(make):
    clock = FakeClock()
    lim = make(clock=clock)
    lim.observe(K, {"retry-after": "30"})
    await make.flush(lim)
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(lim.acquire(K, LimitSpec(), 1, deadline=0.25), 10)
    assert ei.value.reason == "blocked" and ei.value.retry_after == 30.0
    assert clock.timers == []  # failed without sleeping
    lim.observe(K, {"retry-after-ms": "100"})  # a shorter block never shortens the current one
    await make.flush(lim)
    snap = await lim.snapshot(K, LimitSpec())
    assert snap.block_reason == "retry-after" and snap.blocked_until - time.time() > 20.0
    await clock.advance(1.0)
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(lim.acquire(K, LimitSpec(), 1, deadline=0.25), 10)
    assert ei.value.retry_after == 29.0


async def test_anthropic_headers_teach_limits_and_block(make):
    clock = FakeClock()
    lim = make(clock=clock)  # 60 s window: learned per-minute limits apply as they are
    spec = LimitSpec(rpm=100)
    reset = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()
    lim.observe(K, {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-tokens-limit": "8000",
        "anthropic-ratelimit-tokens-remaining": "7000",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": reset,
    })
    await make.flush(lim)
    snap = await lim.snapshot(K, spec)
    assert (snap.rpm, snap.tpm) == (50, 8000)  # learned limits tighten the configured ones
    assert snap.block_reason == "anthropic-ratelimit-output-tokens-remaining=0"
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 9000, deadline=1)  # the learned tpm is enforced
    assert ei.value.reason == "too_large"
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(lim.acquire(K, spec, 100, deadline=1), 10)  # blocked until the reset
    assert ei.value.reason == "blocked" and 20.0 < ei.value.retry_after <= 30.0
    if make.backend == "memory":
        task = asyncio.create_task(lim.acquire(K, spec, 100, deadline=60))
        await run_ready()
        await clock.advance(20.0)
        assert not task.done()
        await clock.advance(11.0)
        p = task.result()
        assert 20.0 < p.waited <= 30.0
        await p.release()


async def test_learned_limit_is_scaled_to_a_short_window(make):
    lim = make(window=6.0)
    lim.observe(K, {"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "60000"})
    await make.flush(lim)
    snap = await lim.snapshot(K, LimitSpec())
    assert (snap.rpm, snap.tpm) == (60, 6000)


async def test_snapshot_reports_remaining_and_in_flight(make):
    lim = make(window=5.0)
    spec = LimitSpec(rpm=10, tpm=1000, max_in_flight=3)
    p1 = await lim.acquire(K, spec, 100)
    p2 = await lim.acquire(K, spec, 200)
    await p2.settle(50)
    snap = await lim.snapshot(K, spec)
    assert snap.key == K and snap.window == 5.0
    assert (snap.rpm, snap.tpm, snap.max_in_flight) == (10, 1000, 3)
    assert (snap.requests_remaining, snap.tokens_remaining, snap.in_flight) == (8, 850, 2)
    assert snap.blocked_until is None and snap.block_reason is None
    await p1.release()
    await p2.release()
    assert (await lim.snapshot("other-key", spec)).requests_remaining == 10


async def test_keys_are_independent(make):
    lim = make(window=5.0)
    spec = LimitSpec(rpm=1)
    await (await lim.acquire("a", spec, 1)).release()
    async with await lim.acquire("b", spec, 1, deadline=0.1) as p:
        assert p.waited == 0.0


# --------------------------------------------------------------------------------------
# Redis only: sharing across limiters (= processes), leases, outages
# --------------------------------------------------------------------------------------
async def test_redis_two_limiters_share_one_limit(make_redis):
    a, b = make_redis(window=5.0), make_redis(window=5.0)
    spec = LimitSpec(rpm=4, tpm=1000)
    for lim in (a, b, a, b):
        await (await lim.acquire(K, spec, 100)).release()
    with pytest.raises(LimitExceededError) as ei:
        await b.acquire(K, spec, 1, deadline=0.2)
    assert ei.value.reason == "rpm"
    snap = await a.snapshot(K, spec)
    assert (snap.requests_remaining, snap.tokens_remaining) == (0, 600)


async def test_redis_blocks_are_shared(make_redis):
    clock = FakeClock()
    a, b = make_redis(), make_redis(clock=clock)
    a.observe(K, {"retry-after": "60"})
    await a.flush()
    with pytest.raises(LimitExceededError) as ei:
        await asyncio.wait_for(b.acquire(K, LimitSpec(), 1, deadline=0.5), 10)
    assert ei.value.reason == "blocked" and 30.0 < ei.value.retry_after <= 60.0
    assert clock.timers == []  # b failed at once on the block it read from Redis


async def test_redis_learned_limits_are_shared(make_redis):
    a, b = make_redis(), make_redis()
    a.observe(K, {"x-ratelimit-limit-tokens": "8000"})
    await a.flush()
    with pytest.raises(LimitExceededError) as ei:
        await b.acquire(K, LimitSpec(), 9000, deadline=1)  # b learned nothing itself
    assert ei.value.reason == "too_large" and ei.value.retry_after is None
    async with await b.acquire(K, LimitSpec(), 8000, deadline=1):
        pass


async def test_redis_in_flight_release_in_another_process_is_seen(make_redis):
    clock = FakeClock()
    a, b = make_redis(), make_redis(poll=0.125, clock=clock)
    spec = LimitSpec(max_in_flight=1)
    held = await a.acquire(K, spec, 1)
    waiter = asyncio.create_task(b.acquire(K, spec, 1))
    await clock.sleepers(1)
    assert clock.timers == [0.125]  # a release elsewhere pokes nobody here: b polls
    await held.release()
    await run_ready()
    assert not waiter.done()
    await clock.advance(0.125)
    p = await asyncio.wait_for(waiter, 10)
    assert p.waited == 0.125  # seen at the first poll after the release
    await p.release()


async def test_redis_leaked_in_flight_slot_expires_with_its_lease(make_redis):
    crashed = make_redis(lease=0.3)
    spec = LimitSpec(max_in_flight=1)
    leaked = await crashed.acquire(K, spec, 1)  # never released: the process "died"
    other = make_redis(lease=0.3)
    async with await other.acquire(K, spec, 1, deadline=30) as p:
        # on Redis's clock: not before the lease ran out
        assert ms(p.granted_at) - ms(leaked.granted_at) >= 300 - 1


async def test_redis_unavailable_is_typed():
    lim = open_limiter("redis://127.0.0.1:1/0?prefix=x:", socket_connect_timeout=0.2)
    try:
        with pytest.raises(StateUnavailableError):
            await lim.acquire(K, LimitSpec(rpm=1), 1)
    finally:
        await lim.aclose()


def test_open_limiter_urls():
    lim = open_limiter("memory://?window=5")
    assert isinstance(lim, MemoryLimiter) and lim.window == 5.0
    with pytest.raises(ValueError):
        open_limiter("etcd://x")


async def test_redis_limiter_url_options_and_keywords():
    require_service(REDIS_URL, "Redis")
    lim = open_limiter(f"{REDIS_URL}?prefix=from-url:&window=5&lease=7&poll=0.5&margin=0.25", poll=0.1)
    try:
        assert (lim.prefix, lim.window, lim.lease, lim.poll, lim.margin) == ("from-url:", 5.0, 7.0, 0.1, 0.25)
        assert await lim.client.ping()  # the URL's own options never reach redis-py
    finally:
        await lim.aclose()


async def test_a_limiter_lives_where_the_state_does():
    from arun.state import MemoryStateStore, open_state

    assert isinstance(limiter_for_state(MemoryStateStore()), MemoryLimiter)
    require_service(REDIS_URL, "Redis")
    prefix = f"arun-test-lim-{uuid.uuid4().hex[:12]}:"
    state = open_state(f"{REDIS_URL}?prefix={prefix}")
    lim = limiter_for_state(state)
    try:
        assert lim.prefix == f"{prefix}limits:" and lim.client.connection_pool is state.client.connection_pool
        async with await lim.acquire(K, LimitSpec(rpm=5), 1):
            pass
        assert [k async for k in state.client.scan_iter(match=f"{prefix}limits:*")]
        await lim.aclose()
        assert await state.client.ping()  # closing the limiter leaves the pool to the state
    finally:
        await delete_prefix(state.client, prefix)
        await state.aclose()
