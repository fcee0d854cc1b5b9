"""Per-credential limits (arun.policy.limits) on the memory and the Redis backends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from arun.errors import InvokeRateLimitError
from arun.policy.limits import (
    LimitExceededError,
    LimitSpec,
    MemoryLimiter,
    Permit,
    parse_duration,
    parse_rate_limit_headers,
    open_limiter,
)
from arun.state import StateUnavailableError
from arun.testing.services import require_service

REDIS_URL = os.environ.get("ARUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")






async def _cleanup(client, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


class Factory:
    """Builds limiters of one backend; Redis ones share a per-test prefix."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.prefix = f"arun-test-lim-{uuid.uuid4().hex[:12]}:"
        self.made: list = []

    def __call__(self, window: float = 60.0, **kw):
        if self.backend == "memory":
            lim = open_limiter("memory://", window=window)
        else:
            lim = open_limiter(f"{REDIS_URL}?prefix={self.prefix}", window=window, **kw)
        self.made.append(lim)
        return lim

    async def close(self) -> None:
        for lim in self.made:
            if self.backend == "redis":
                with contextlib.suppress(Exception):
                    await _cleanup(lim.client, self.prefix)
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


async def test_rpm_waits_for_the_oldest_request_to_leave_the_window(make):
    lim = make(window=0.6)
    spec = LimitSpec(rpm=3)
    t0 = time.monotonic()
    for _ in range(3):
        await (await lim.acquire(K, spec, 1)).release()
    assert time.monotonic() - t0 < 0.3
    snap = await lim.snapshot(K, spec)
    assert snap.requests_remaining == 0
    p = await lim.acquire(K, spec, 1)  # waits instead of failing
    await p.release()
    assert 0.45 < time.monotonic() - t0 < 1.2
    assert p.waited > 0.3


async def test_many_concurrent_callers_never_exceed_rpm_in_any_window(make):
    lim = make(window=0.5)
    spec = LimitSpec(rpm=5)
    grants: list[float] = []

    async def one():
        async with await lim.acquire(K, spec, 1):
            grants.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(15)))
    grants.sort()
    assert len(grants) == 15
    # any 5 + 1 consecutive grants span at least (almost) a full window
    for i in range(len(grants) - 5):
        assert grants[i + 5] - grants[i] >= 0.5 - 0.03
    assert grants[-1] - grants[0] < 2.0


async def test_tpm_reserves_and_a_refund_wakes_the_waiter_early(make):
    lim = make(window=5.0)
    spec = LimitSpec(tpm=100)
    first = await lim.acquire(K, spec, 60)
    assert (await lim.snapshot(K, spec)).tokens_remaining == 40

    waiter = asyncio.create_task(lim.acquire(K, spec, 60))
    await asyncio.sleep(0.15)
    assert not waiter.done()  # 60 + 60 > 100
    await first.settle(10)  # used only 10: refund 50
    t = time.monotonic()
    second = await asyncio.wait_for(waiter, 2.0)
    assert time.monotonic() - t < 1.0  # well before the 5 s window ends
    assert second.waited > 0.1
    assert (await lim.snapshot(K, spec)).tokens_remaining == 30
    await first.release()
    await second.release()


async def test_settle_charges_more_than_reserved(make):
    lim = make(window=5.0)
    spec = LimitSpec(tpm=100)
    p = await lim.acquire(K, spec, 10)
    await p.settle(90)
    assert p.tokens == 90
    assert (await lim.snapshot(K, spec)).tokens_remaining == 10
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 20, deadline=0.2)
    assert ei.value.reason == "tpm" and ei.value.retry_after is not None
    assert 3.5 < ei.value.retry_after <= 5.0
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
    lim = make()
    t = time.monotonic()
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, LimitSpec(tpm=1000), 1001, deadline=5)
    assert ei.value.reason == "too_large" and ei.value.retry_after is None
    assert time.monotonic() - t < 0.5


async def test_in_flight_cap_with_fifo_waiting(make):
    lim = make()
    spec = LimitSpec(max_in_flight=2)
    a = await lim.acquire(K, spec, 1)
    b = await lim.acquire(K, spec, 1)
    order: list[int] = []

    async def waiter(i: int) -> Permit:
        p = await lim.acquire(K, spec, 1)
        order.append(i)
        return p

    tasks = []
    for i in range(3):
        tasks.append(asyncio.create_task(waiter(i)))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert order == []
    assert (await lim.snapshot(K, spec)).in_flight == 2
    await a.release()
    await a.release()  # idempotent
    p0 = await asyncio.wait_for(tasks[0], 1.0)
    await b.release()
    p1 = await asyncio.wait_for(tasks[1], 1.0)
    assert not tasks[2].done()
    await p0.release()
    p2 = await asyncio.wait_for(tasks[2], 1.0)
    assert order == [0, 1, 2]
    await p1.release()
    await p2.release()
    assert (await lim.snapshot(K, spec)).in_flight == 0


async def test_in_flight_deadline_raises_after_waiting(make):
    lim = make()
    spec = LimitSpec(max_in_flight=1)
    held = await lim.acquire(K, spec, 1)
    t = time.monotonic()
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 1, deadline=0.3)
    assert 0.25 < time.monotonic() - t < 1.0
    assert ei.value.reason == "in_flight" and ei.value.retry_after is not None
    await held.release()
    async with await lim.acquire(K, spec, 1, deadline=0.3):
        pass


async def test_rpm_wait_beyond_the_deadline_fails_fast_with_retry_after(make):
    lim = make(window=3.0)
    spec = LimitSpec(rpm=1)
    await (await lim.acquire(K, spec, 1)).release()
    t = time.monotonic()
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 1, deadline=0.5)
    assert time.monotonic() - t < 0.3  # no point burning the deadline
    assert ei.value.reason == "rpm"
    assert 2.5 < ei.value.retry_after <= 3.0


async def test_cancelled_waiter_does_not_wedge_the_queue(make):
    lim = make()
    spec = LimitSpec(max_in_flight=1)
    held = await lim.acquire(K, spec, 1)
    w1 = asyncio.create_task(lim.acquire(K, spec, 1))
    await asyncio.sleep(0.05)
    w2 = asyncio.create_task(lim.acquire(K, spec, 1))
    await asyncio.sleep(0.05)
    w1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w1
    await held.release()
    p = await asyncio.wait_for(w2, 1.0)
    await p.release()
    assert (await lim.snapshot(K, spec)).in_flight == 0


async def test_openai_headers_block_until_reset(make):
    lim = make()
    spec = LimitSpec(rpm=1000)
    lim.observe(K, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "400ms",
                    "x-ratelimit-limit-requests": "5000"})
    await asyncio.sleep(0.05)  # Redis: the shared block is written in the background
    snap = await lim.snapshot(K, spec)
    assert snap.blocked_until is not None and snap.blocked_until > time.time()
    assert snap.block_reason == "x-ratelimit-remaining-requests=0"
    assert snap.rpm == 1000  # learned 5000 is larger than configured: no change
    t = time.monotonic()
    async with await lim.acquire(K, spec, 1) as p:
        assert p.waited > 0.2
    assert 0.25 < time.monotonic() - t < 1.2
    assert (await lim.snapshot(K, spec)).blocked_until is None


async def test_retry_after_blocks_and_fails_fast_past_the_deadline(make):
    lim = make()
    lim.observe(K, {"retry-after": "3"})
    await asyncio.sleep(0.05)
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, LimitSpec(), 1, deadline=0.2)
    assert ei.value.reason == "blocked" and 2.5 < ei.value.retry_after <= 3.0
    lim.observe(K, {"retry-after-ms": "100"})  # a shorter block never shortens the current one
    await asyncio.sleep(0.05)
    snap = await lim.snapshot(K, LimitSpec())
    assert snap.block_reason == "retry-after" and snap.blocked_until - time.time() > 2.0


async def test_anthropic_headers_teach_limits_and_block(make):
    lim = make()  # 60 s window: learned per-minute limits apply as they are
    spec = LimitSpec(rpm=100)
    reset = (datetime.now(timezone.utc) + timedelta(milliseconds=400)).isoformat()
    lim.observe(K, {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-tokens-limit": "8000",
        "anthropic-ratelimit-tokens-remaining": "7000",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": reset,
    })
    await asyncio.sleep(0.05)
    snap = await lim.snapshot(K, spec)
    assert (snap.rpm, snap.tpm) == (50, 8000)  # learned limits tighten the configured ones
    assert snap.block_reason == "anthropic-ratelimit-output-tokens-remaining=0"
    with pytest.raises(LimitExceededError) as ei:
        await lim.acquire(K, spec, 9000, deadline=1)  # the learned tpm is enforced
    assert ei.value.reason == "too_large"
    p = await lim.acquire(K, spec, 100, deadline=2)
    assert p.waited > 0.15
    await p.release()


async def test_learned_limit_is_scaled_to_a_short_window(make):
    lim = make(window=6.0)
    lim.observe(K, {"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "60000"})
    await asyncio.sleep(0.05)
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
    async with await lim.acquire("b", spec, 1, deadline=0.1):
        pass


# --------------------------------------------------------------------------------------
# Redis only: sharing across limiters (= processes), leases, outages
# --------------------------------------------------------------------------------------
async def test_redis_two_limiters_share_one_limit(make_redis):
    a, b = make_redis(window=5.0), make_redis(window=5.0)
    spec = LimitSpec(rpm=4, tpm=1000)
    for lim in (a, b, a, b):
        await (await lim.acquire(K, spec, 100)).release()
    with pytest.raises(LimitExceededError):
        await b.acquire(K, spec, 1, deadline=0.2)
    snap = await a.snapshot(K, spec)
    assert (snap.requests_remaining, snap.tokens_remaining) == (0, 600)


async def test_redis_blocks_are_shared(make_redis):
    a, b = make_redis(), make_redis()
    a.observe(K, {"retry-after": "5"})
    await asyncio.sleep(0.05)
    with pytest.raises(LimitExceededError) as ei:
        await b.acquire(K, LimitSpec(), 1, deadline=0.5)
    assert ei.value.reason == "blocked" and ei.value.retry_after > 4


async def test_redis_in_flight_release_in_another_process_is_seen(make_redis):
    a, b = make_redis(poll=0.02), make_redis(poll=0.02)
    spec = LimitSpec(max_in_flight=1)
    held = await a.acquire(K, spec, 1)
    waiter = asyncio.create_task(b.acquire(K, spec, 1))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await held.release()
    p = await asyncio.wait_for(waiter, 1.0)
    await p.release()


async def test_redis_leaked_in_flight_slot_expires_with_its_lease(make_redis):
    crashed = make_redis(lease=0.3)
    spec = LimitSpec(max_in_flight=1)
    await crashed.acquire(K, spec, 1)  # never released: the process "died"
    other = make_redis(lease=0.3)
    t = time.monotonic()
    async with await other.acquire(K, spec, 1, deadline=2.0):
        pass
    assert 0.2 < time.monotonic() - t < 1.5


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
