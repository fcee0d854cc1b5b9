"""Dify's load balancing (DIFY_RUNTIME.md §7) as the router's Dify rules, on memory and real Redis.

The one balancer: ``PolicyRouter.dify`` with the round-robin strategy (Dify's Redis keys),
60 s cooldown on rate limits, 10 s on auth and connection errors, no retries, anything else
raised at once, a lone credential never cooled.  The upstream here is a scripted model object
(per key: errors to raise), so every rule is checked exactly; the manager suites run the same
router against the simulator.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from redis_fixtures import REDIS_URL, delete_prefix, redis_state_store

from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)
from arun.policy.router import PolicyRouter
from arun.policy.routes import ConfigsCoolingError, ConfigsRateLimitedError, CredentialConfig, Route, Target
from arun.policy.strategies import make_strategy
from arun.state import MemoryStateStore, StateUnavailableError
from arun.state.base import lb_scope
from arun.testing.services import require_service

TENANT, PROVIDER, MODEL = "t1", "openai", "gpt-4o"
SCOPE = lb_scope(TENANT, PROVIDER, "llm", MODEL)


@pytest.fixture(params=["memory", "redis"])
async def store(request: Any) -> AsyncIterator[Any]:
    if request.param == "memory":
        s = MemoryStateStore()
        yield s
        await s.aclose()
    else:
        async with redis_state_store() as s:
            yield s


class Upstream:
    """A scripted model object: per key, errors to raise in order; records every call."""

    def __init__(self, errors: dict[str, list[BaseException]] | None = None) -> None:
        self.errors = errors or {}
        self.calls: list[str] = []

    async def __call__(self, model: str, credentials: Mapping[str, Any], prompt: str = "") -> str:
        key = credentials["api_key"]
        self.calls.append(key)
        queue = self.errors.get(key)
        if queue:
            raise queue.pop(0)
        return f"{key}:{prompt}"


class Runtime:
    """What the router asks of a runtime: the model object of a provider and type."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def get_model_instance(self, provider: str, model_type: str) -> Any:
        return self.model


def target(*names: str) -> Target:
    return Target(PROVIDER, MODEL, [CredentialConfig(f"id-{n}", {"api_key": f"sk-{n}"}, name=n) for n in names])


def dify(store: Any, up: Any, **kw: Any) -> PolicyRouter:
    return PolicyRouter.dify(Runtime(up), state=store, tenant_id=TENANT, **kw)


async def call(router: PolicyRouter, tgt: Target, prompt: str = "x") -> str:
    return await router.call(Route(tgt), "llm", lambda m, model, creds: m(model, creds, prompt))


async def cooling(store: Any, tgt: Target) -> dict[str, tuple[float, str | None]]:
    ids = [c.id for c in tgt.configs]
    return {s.config_id.removeprefix("id-"): (s.ttl, s.reason) for s in await store.lb_state(SCOPE, ids) if s.in_cooldown}


# --- one config and round robin ------------------------------------------------


async def test_a_lone_credential_is_never_cooled(store: Any) -> None:
    """Dify: balancing is off with one enabled config: errors reach the caller, nothing cools."""
    up = Upstream({"sk-a": [InvokeRateLimitError("429")]})
    router, tgt = dify(store, up), target("a")
    with pytest.raises(InvokeRateLimitError):
        await call(router, tgt, "hi")
    assert await call(router, tgt, "hi") == "sk-a:hi"
    assert up.calls == ["sk-a", "sk-a"] and await cooling(store, tgt) == {}


async def test_dify_item_10_fetch_next(store: Any) -> None:
    """[__inherit__ (cooling), first, second], INCR 1, 2, 3 -> first, then second (Dify's keys)."""
    from arun.policy.strategies import ConfigStats, PickContext

    ids = ["__inherit__", "first", "second"]
    await store.lb_cooldown(SCOPE, "__inherit__", 60, "test")
    ctx = PickContext(store, SCOPE, {i: ConfigStats() for i in ids})
    rr = make_strategy("round_robin")
    assert (await rr.pick(ctx, ids))[0] == "first"
    assert (await rr.pick(ctx, ids))[0] == "second"


async def test_round_robin(store: Any) -> None:
    up = Upstream()
    router, tgt = dify(store, up), target("a", "b", "c")
    out = [await call(router, tgt) for _ in range(6)]
    assert out == ["sk-a:x", "sk-b:x", "sk-c:x", "sk-a:x", "sk-b:x", "sk-c:x"]


def test_credentials_not_in_repr() -> None:
    assert "sk-a" not in repr(target("a"))


# --- error classes -------------------------------------------------------------------


async def test_rate_limit_cools_60s_and_fails_over(store: Any) -> None:
    up = Upstream({"sk-a": [InvokeRateLimitError("too many")]})
    router, tgt = dify(store, up), target("a", "b", "c")
    assert await call(router, tgt) == "sk-b:x"
    assert up.calls == ["sk-a", "sk-b"]
    cool = await cooling(store, tgt)
    assert list(cool) == ["a"] and 59 < cool["a"][0] <= 60
    assert (cool["a"][1] or "").startswith("InvokeRateLimitError")


@pytest.mark.parametrize(
    "exc",
    [InvokeAuthorizationError("401"), InvokeConnectionError("reset"), InvokeTimeoutError("read timeout")],
    ids=["auth", "connection", "timeout"],
)
async def test_auth_and_connection_cool_10s(store: Any, exc: InvokeError) -> None:
    up = Upstream({"sk-a": [exc]})
    router, tgt = dify(store, up), target("a", "b")
    assert await call(router, tgt) == "sk-b:x"
    cool = await cooling(store, tgt)
    assert list(cool) == ["a"] and 9 < cool["a"][0] <= 10


@pytest.mark.parametrize(
    "exc",
    [InvokeServerUnavailableError("503"), InvokeBadRequestError("400"), InvokeError("base")],
    ids=["unavailable", "bad_request", "base"],
)
async def test_other_errors_raise_at_once_without_cooldown(store: Any, exc: InvokeError) -> None:
    up = Upstream({"sk-a": [exc]})
    router, tgt = dify(store, up), target("a", "b", "c")
    with pytest.raises(type(exc)) as info:
        await call(router, tgt)
    assert info.value is exc
    assert up.calls == ["sk-a"]
    assert await cooling(store, tgt) == {}


async def test_all_cooling_raises_last_error(store: Any) -> None:
    errs = [InvokeRateLimitError("a"), InvokeAuthorizationError("b"), InvokeConnectionError("c")]
    up = Upstream({"sk-a": [errs[0]], "sk-b": [errs[1]], "sk-c": [errs[2]]})
    router, tgt = dify(store, up), target("a", "b", "c")
    with pytest.raises(InvokeConnectionError) as info:
        await call(router, tgt)
    assert info.value is errs[2]
    assert up.calls == ["sk-a", "sk-b", "sk-c"]
    assert set(await cooling(store, tgt)) == {"a", "b", "c"}


@pytest.mark.parametrize(("reason", "cls"), [("ops", ConfigsCoolingError), ("InvokeRateLimitError: 429", ConfigsRateLimitedError)])
async def test_all_cooling_before_any_call_is_a_typed_error(store: Any, reason: str, cls: type) -> None:
    """Dify raises a bare ProviderTokenNotInitError here; arun says which kind of cooling it is."""
    up = Upstream()
    router, tgt = dify(store, up), target("a", "b")
    for c in tgt.configs:
        await store.lb_cooldown(SCOPE, c.id, 30, reason)
    with pytest.raises(cls) as info:
        await call(router, tgt)
    assert up.calls == [] and info.value.retry_after is not None and 0 < info.value.retry_after <= 30


async def test_retry_after_extends_cooldown(store: Any) -> None:
    up = Upstream(
        {
            "sk-a": [InvokeRateLimitError("slow down", retry_after=120)],
            "sk-b": [InvokeRateLimitError("soon", retry_after=5)],  # shorter: the 60 s default wins
            "sk-c": [InvokeAuthorizationError("401", retry_after=30)],
        }
    )
    router, tgt = dify(store, up), target("a", "b", "c")
    with pytest.raises(InvokeAuthorizationError):
        await call(router, tgt)
    cool = await cooling(store, tgt)
    assert 119 < cool["a"][0] <= 120
    assert 59 < cool["b"][0] <= 60
    assert 29 < cool["c"][0] <= 30


class Clock:
    """Monotonic seconds that move only when the router sleeps (injected as clock and sleep)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_wait_deadline_waits_for_the_earliest_recovery() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    up = Upstream({"sk-a": [InvokeRateLimitError("a")], "sk-b": [InvokeRateLimitError("b")]})
    router = dify(store, up, wait_deadline=90.0, clock=clock, sleep=clock.sleep)
    tgt = target("a", "b")
    with pytest.raises(InvokeRateLimitError, match="^b$"):
        await call(router, tgt)  # both cool now (60 s)
    assert await call(router, tgt) in ("sk-a:x", "sk-b:x")  # waited for the first to recover
    assert len(clock.slept) == 1 and 60.0 <= clock.slept[0] <= 60.01
    assert up.calls[:2] == ["sk-a", "sk-b"] and len(up.calls) == 3


async def test_wait_deadline_too_short_raises_without_waiting() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    up = Upstream({"sk-a": [InvokeRateLimitError("a")], "sk-b": [InvokeRateLimitError("b")]})
    router = dify(store, up, wait_deadline=30.0, clock=clock, sleep=clock.sleep)
    tgt = target("a", "b")
    with pytest.raises(InvokeRateLimitError):
        await call(router, tgt)
    with pytest.raises(ConfigsRateLimitedError):
        await call(router, tgt)
    assert clock.slept == []


async def test_states_for_operators(store: Any) -> None:
    up = Upstream({"sk-a": [InvokeRateLimitError("429 from upstream", retry_after=90)]})
    router, tgt = dify(store, up), target("a", "b")
    await call(router, tgt)
    states = await router.states(Route(tgt))
    assert [(s.config_id, s.healthy) for s in states] == [("id-a", False), ("id-b", True)]
    a = states[0]
    assert 89 < a.cooling_remaining <= 90
    assert a.cooling_until is not None and time.time() + 88 < a.cooling_until <= time.time() + 90.01
    assert a.cooling_reason == "InvokeRateLimitError: 429 from upstream"


async def test_state_unavailable_propagates_typed() -> None:
    from arun.state.redis import RedisStateStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisStateStore.from_url(f"redis://127.0.0.1:{port}/0?prefix=arun-test-down:")
    try:
        with pytest.raises(StateUnavailableError):
            await call(dify(store, Upstream()), target("a", "b"))
    finally:
        await store.aclose()


# --- many processes sharing one Redis ------------------------------------------------

MP_WORKERS = 4
MP_TOTAL = 3000


class _RecordingStore:
    """Wraps a store; timestamps every pick of the bad config and every cooldown."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bad_pick_starts: list[float] = []
        self.cooldowns_done: list[float] = []

    async def lb_pick(self, scope: str, ids: list[str]) -> Any:
        t0 = time.time()
        cid, hits = await self.inner.lb_pick(scope, ids)
        if cid == "id-bad":
            self.bad_pick_starts.append(t0)
        return cid, hits

    async def lb_cooldown(self, scope: str, cid: str, seconds: float, reason: str = "") -> None:
        await self.inner.lb_cooldown(scope, cid, seconds, reason)
        self.cooldowns_done.append(time.time())

    async def lb_state(self, scope: str, ids: list[str]) -> Any:
        return await self.inner.lb_state(scope, ids)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _mp_worker(url: str, n: int, start: Any, results: Any) -> None:
    asyncio.run(_mp_worker_main(url, n, start, results))


async def _mp_worker_main(url: str, n: int, start: Any, results: Any) -> None:
    from arun.state.redis import RedisStateStore

    store = _RecordingStore(RedisStateStore.from_url(url))
    await store.inner.client.ping()  # connect before the start gun

    async def model(model_name: str, credentials: Mapping[str, Any], prompt: str) -> str:
        if credentials["api_key"] == "sk-bad":
            raise InvokeRateLimitError("429 Too Many Requests", status=429)
        return str(credentials["api_key"])

    router = dify(store, model)
    tgt = target("good1", "good2", "bad")
    served: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    await asyncio.get_running_loop().run_in_executor(None, start.wait)
    for _ in range(n):
        try:
            served[await call(router, tgt)] += 1
        except (InvokeError, StateUnavailableError) as exc:
            errors[type(exc).__name__] += 1
    await store.aclose()
    results.put(
        {
            "served": dict(served),
            "errors": dict(errors),
            "bad_pick_starts": store.bad_pick_starts,
            "cooldowns_done": store.cooldowns_done,
        }
    )


@pytest.mark.slow
@pytest.mark.redis
async def test_multiprocess_shared_balancing() -> None:
    require_service(REDIS_URL, "Redis")
    import redis.asyncio as aioredis

    prefix = f"arun-test-{uuid.uuid4().hex[:12]}:"
    url = f"{REDIS_URL}?prefix={prefix}"
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    per = MP_TOTAL // MP_WORKERS
    procs = [ctx.Process(target=_mp_worker, args=(url, per, start, results)) for _ in range(MP_WORKERS)]
    admin = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        for p in procs:
            p.start()
        await asyncio.sleep(0.5)
        start.set()
        t0 = time.monotonic()
        reports = []
        loop = asyncio.get_running_loop()
        for _ in procs:
            reports.append(await loop.run_in_executor(None, lambda: results.get(timeout=50)))
        elapsed = time.monotonic() - t0
        for p in procs:
            p.join(timeout=10)
            assert p.exitcode == 0
        cool_ttl = await admin.pttl(f"{prefix}model_lb_index:cooldown:t1:openai:llm:gpt-4o:id-bad")
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        await delete_prefix(admin, prefix)
        await admin.aclose()

    served: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    bad_picks: list[float] = []
    cools: list[float] = []
    for r in reports:
        served.update(r["served"])
        errors.update(r["errors"])
        bad_picks += r["bad_pick_starts"]
        cools += r["cooldowns_done"]
    g1, g2 = served["sk-good1"], served["sk-good2"]
    accounted = g1 + g2 + sum(errors.values())
    lost = MP_TOTAL - accounted
    spread = abs(g1 - g2) / ((g1 + g2) / 2)
    print(
        f"\nmulti-process balancing: {MP_WORKERS} workers, {MP_TOTAL} requests in {elapsed:.2f}s; "
        f"good1={g1} good2={g2} spread={spread:.2%}; bad picks={len(bad_picks)} "
        f"(all before its cooldown: {bool(cools) and max(bad_picks) < min(cools)}); "
        f"typed errors={dict(errors)}; lost={lost}"
    )
    assert lost == 0
    assert "sk-bad" not in served
    assert spread <= 0.05
    assert cools and bad_picks
    # Once the first 429 cooled the bad config, no pick that started afterwards chose it.
    assert max(bad_picks) < min(cools)
    assert len(bad_picks) <= MP_WORKERS
    assert cool_ttl > 0  # still cooling at the end of the run
