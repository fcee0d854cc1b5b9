"""LoadBalancer: Dify §7 semantics plus arun's extensions, on memory and real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import time
import uuid
from collections import Counter

import pytest

from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)
from arun.manager.balancer import LBConfig, LoadBalancer, NoAvailableCredentialsError
from arun.state import MemoryStateStore, StateUnavailableError
from arun.testing.services import require_service

REDIS_URL = os.environ.get("ARUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SCOPE_KW = dict(tenant_id="t1", provider="openai", model_type="llm", model="gpt-4o")






async def _cleanup(client, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@contextlib.asynccontextmanager
async def _redis_store_cm():
    require_service(REDIS_URL, "Redis")
    from arun.state.redis import RedisStateStore

    prefix = f"arun-test-{uuid.uuid4().hex[:12]}:"
    store = RedisStateStore.from_url(f"{REDIS_URL}?prefix={prefix}")
    try:
        yield store
    finally:
        await _cleanup(store.client, prefix)
        await store.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        s = MemoryStateStore()
        yield s
        await s.aclose()
    else:
        async with _redis_store_cm() as s:
            yield s


def cfgs(*names: str) -> list[LBConfig]:
    return [LBConfig(id=f"id-{n}", name=n, credentials={"api_key": f"sk-{n}"}) for n in names]


def make(store, configs, **kw) -> LoadBalancer:
    return LoadBalancer(store, configs, **SCOPE_KW, **kw)


class Upstream:
    """A fake model call: per-key scripted errors, records every call."""

    def __init__(self, errors: dict[str, list[BaseException]] | None = None) -> None:
        self.errors = errors or {}
        self.calls: list[str] = []

    async def __call__(self, prompt: str = "", *, credentials) -> str:
        key = credentials["api_key"]
        self.calls.append(key)
        queue = self.errors.get(key)
        if queue:
            raise queue.pop(0)
        return f"{key}:{prompt}"


async def cooling(lb: LoadBalancer) -> dict[str, tuple[float, str | None]]:
    return {s.name: (s.ttl, s.reason) for s in await lb.states() if s.in_cooldown}


# --- activation and round robin ------------------------------------------------


async def test_inactive_with_one_enabled_config(store):
    configs = cfgs("a", "b")
    configs[1] = LBConfig("id-b", "b", {"api_key": "sk-b"}, enabled=False)
    lb = make(store, configs)
    assert not lb.active
    up = Upstream({"sk-a": [InvokeRateLimitError("429")]})
    with pytest.raises(InvokeRateLimitError):
        await lb.invoke(up, "hi")
    assert await lb.invoke(up, "hi") == "sk-a:hi"
    assert await lb.invoke(up, "hi", credentials={"api_key": "own"}) == "own:hi"
    assert up.calls == ["sk-a", "sk-a", "own"]


async def test_dify_item_10_fetch_next(store):
    """[__inherit__ (cooling), first, second], INCR 1, 2, 3 -> first, then second."""
    configs = [LBConfig("__inherit__", "__inherit__", {"api_key": "sk-inherit"})] + [
        LBConfig(n, n, {"api_key": n}) for n in ("first", "second")
    ]
    lb = make(store, configs)
    await lb.cooldown(configs[0], 60, "test")
    assert (await lb.fetch_next()).name == "first"
    assert (await lb.fetch_next()).name == "second"


async def test_round_robin_invoke(store):
    lb = make(store, cfgs("a", "b", "c"))
    up = Upstream()
    out = [await lb.invoke(up, "x") for _ in range(6)]
    assert out == ["sk-a:x", "sk-b:x", "sk-c:x", "sk-a:x", "sk-b:x", "sk-c:x"]


async def test_credentials_not_in_repr():
    c = cfgs("a")[0]
    assert "sk-a" not in repr(c)


# --- error classes -------------------------------------------------------------------


async def test_rate_limit_cools_60s_and_fails_over(store):
    lb = make(store, cfgs("a", "b", "c"))
    up = Upstream({"sk-a": [InvokeRateLimitError("too many")]})
    assert await lb.invoke(up, "x") == "sk-b:x"
    assert up.calls == ["sk-a", "sk-b"]
    cool = await cooling(lb)
    assert list(cool) == ["a"] and 59 < cool["a"][0] <= 60
    assert cool["a"][1].startswith("InvokeRateLimitError")


@pytest.mark.parametrize(
    "exc",
    [InvokeAuthorizationError("401"), InvokeConnectionError("reset"), InvokeTimeoutError("read timeout")],
    ids=["auth", "connection", "timeout"],
)
async def test_auth_and_connection_cool_10s(store, exc):
    lb = make(store, cfgs("a", "b"))
    up = Upstream({"sk-a": [exc]})
    assert await lb.invoke(up, "x") == "sk-b:x"
    cool = await cooling(lb)
    assert list(cool) == ["a"] and 9 < cool["a"][0] <= 10


@pytest.mark.parametrize(
    "exc",
    [InvokeServerUnavailableError("503"), InvokeBadRequestError("400"), InvokeError("base"), ValueError("v"), KeyError("k")],
    ids=["unavailable", "bad_request", "base", "value", "key"],
)
async def test_other_errors_raise_at_once_without_cooldown(store, exc):
    lb = make(store, cfgs("a", "b", "c"))
    up = Upstream({"sk-a": [exc]})
    with pytest.raises(type(exc)) as info:
        await lb.invoke(up, "x")
    assert info.value is exc
    assert up.calls == ["sk-a"]
    assert await cooling(lb) == {}


async def test_all_cooling_raises_last_error(store):
    lb = make(store, cfgs("a", "b", "c"))
    errs = [InvokeRateLimitError("a"), InvokeAuthorizationError("b"), InvokeConnectionError("c")]
    up = Upstream({"sk-a": [errs[0]], "sk-b": [errs[1]], "sk-c": [errs[2]]})
    with pytest.raises(InvokeConnectionError) as info:
        await lb.invoke(up, "x")
    assert info.value is errs[2]
    assert up.calls == ["sk-a", "sk-b", "sk-c"]
    assert set(await cooling(lb)) == {"a", "b", "c"}


async def test_all_cooling_before_any_call_raises_not_initialized(store):
    configs = cfgs("a", "b")
    lb = make(store, configs)
    for c in configs:
        await lb.cooldown(c, 30, "ops")
    up = Upstream()
    with pytest.raises(NoAvailableCredentialsError, match="^Model credentials is not initialized.$"):
        await lb.invoke(up, "x")
    assert up.calls == []


async def test_retry_after_extends_cooldown(store):
    lb = make(store, cfgs("a", "b", "c"))
    up = Upstream(
        {
            "sk-a": [InvokeRateLimitError("slow down", retry_after=120)],
            "sk-b": [InvokeRateLimitError("soon", retry_after=5)],  # shorter: the 60 s default wins
            "sk-c": [InvokeAuthorizationError("401", retry_after=30)],
        }
    )
    with pytest.raises(InvokeAuthorizationError):
        await lb.invoke(up, "x")
    cool = await cooling(lb)
    assert 119 < cool["a"][0] <= 120
    assert 59 < cool["b"][0] <= 60
    assert 29 < cool["c"][0] <= 30


async def test_wait_deadline_waits_for_recovery(store):
    lb = make(store, cfgs("a", "b"), rate_limit_cooldown=0.3, wait_deadline=3.0)
    up = Upstream({"sk-a": [InvokeRateLimitError("a")], "sk-b": [InvokeRateLimitError("b")]})
    t0 = time.monotonic()
    result = await lb.invoke(up, "x")
    waited = time.monotonic() - t0
    assert result in ("sk-a:x", "sk-b:x")
    assert 0.25 <= waited < 2.0
    assert up.calls[:2] == ["sk-a", "sk-b"] and len(up.calls) == 3


async def test_wait_deadline_too_short_raises_last_error(store):
    lb = make(store, cfgs("a", "b"), rate_limit_cooldown=5, wait_deadline=0.2)
    up = Upstream({"sk-a": [InvokeRateLimitError("a")], "sk-b": [InvokeRateLimitError("b")]})
    t0 = time.monotonic()
    with pytest.raises(InvokeRateLimitError, match="^b$"):
        await lb.invoke(up, "x")
    assert time.monotonic() - t0 < 1.0


async def test_states_for_operators(store):
    lb = make(store, cfgs("a", "b"))
    up = Upstream({"sk-a": [InvokeRateLimitError("429 from upstream", retry_after=90)]})
    await lb.invoke(up)
    states = await lb.states()
    assert [(s.name, s.in_cooldown) for s in states] == [("a", True), ("b", False)]
    a = states[0]
    assert a.config_id == "id-a" and 89 < a.ttl <= 90
    assert time.time() + 88 < a.until <= time.time() + 90.01
    assert a.reason == "InvokeRateLimitError: 429 from upstream"


# --- streaming -----------------------------------------------------------------------


class StreamUpstream:
    """open_stream(credentials): per key, fail on open, fail before first item, or yield."""

    def __init__(self, plan: dict[str, str]) -> None:
        self.plan = plan
        self.opened: list[str] = []
        self.closed: list[str] = []

    async def __call__(self, credentials):
        key = credentials["api_key"]
        self.opened.append(key)
        mode = self.plan.get(key, "ok")
        if mode == "open-429":
            raise InvokeRateLimitError("429 on open")
        if mode == "open-400":
            raise InvokeBadRequestError("400 on open")
        return self._gen(key, mode)

    async def _gen(self, key, mode):
        try:
            if mode == "first-conn":
                raise InvokeConnectionError("cut before first chunk")
            if mode == "empty":
                return
            for i in range(3):
                yield f"{key}-{i}"
                if mode == "mid-cut" and i == 0:
                    raise InvokeConnectionError("cut mid-stream")
        finally:
            self.closed.append(key)


async def test_stream_rotates_before_first_item(store):
    lb = make(store, cfgs("a", "b", "c"))
    up = StreamUpstream({"sk-a": "open-429", "sk-b": "first-conn"})
    items = [x async for x in lb.invoke_stream(up)]
    assert items == ["sk-c-0", "sk-c-1", "sk-c-2"]
    assert up.opened == ["sk-a", "sk-b", "sk-c"]
    assert up.closed == ["sk-b", "sk-c"]
    cool = await cooling(lb)
    assert 59 < cool["a"][0] <= 60 and 9 < cool["b"][0] <= 10 and "c" not in cool


async def test_stream_no_rotation_after_first_item(store):
    lb = make(store, cfgs("a", "b"))
    up = StreamUpstream({"sk-a": "mid-cut"})
    got = []
    with pytest.raises(InvokeConnectionError, match="cut mid-stream"):
        async for x in lb.invoke_stream(up):
            got.append(x)
    assert got == ["sk-a-0"]
    assert up.opened == ["sk-a"]
    assert await cooling(lb) == {}


async def test_stream_other_error_on_open_raises_at_once(store):
    lb = make(store, cfgs("a", "b"))
    up = StreamUpstream({"sk-a": "open-400"})
    with pytest.raises(InvokeBadRequestError):
        async for _ in lb.invoke_stream(up):
            pass
    assert up.opened == ["sk-a"] and await cooling(lb) == {}


async def test_stream_all_cooling_raises_last_error(store):
    lb = make(store, cfgs("a", "b"))
    up = StreamUpstream({"sk-a": "first-conn", "sk-b": "open-429"})
    with pytest.raises(InvokeRateLimitError):
        async for _ in lb.invoke_stream(up):
            pass
    assert up.closed == ["sk-a"]


async def test_stream_abandoned_closes_upstream(store):
    lb = make(store, cfgs("a", "b"))
    up = StreamUpstream({})
    agen = lb.invoke_stream(up)
    assert await agen.__anext__() == "sk-a-0"
    await agen.aclose()
    assert up.closed == ["sk-a"]


async def test_stream_empty_is_not_an_error(store):
    lb = make(store, cfgs("a", "b"))
    up = StreamUpstream({"sk-a": "empty"})
    assert [x async for x in lb.invoke_stream(up)] == []
    assert up.closed == ["sk-a"]


async def test_stream_inactive_uses_single_config(store):
    lb = make(store, cfgs("a"))
    up = StreamUpstream({})
    assert [x async for x in lb.invoke_stream(up)] == ["sk-a-0", "sk-a-1", "sk-a-2"]


async def test_state_unavailable_propagates_typed():
    from arun.state.redis import RedisStateStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RedisStateStore.from_url(f"redis://127.0.0.1:{port}/0?prefix=arun-test-down:")
    try:
        lb = make(store, cfgs("a", "b"))
        with pytest.raises(StateUnavailableError):
            await lb.invoke(Upstream(), "x")
    finally:
        await store.aclose()


# --- many processes sharing one Redis ------------------------------------------------

MP_WORKERS = 4
MP_TOTAL = 3000
MP_COOLDOWN = 60.0


class _RecordingStore:
    """Wraps a store; timestamps every pick of the bad config and every cooldown."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.bad_pick_starts: list[float] = []
        self.cooldowns_done: list[float] = []

    async def lb_pick(self, scope, ids):
        t0 = time.time()
        cid, hits = await self.inner.lb_pick(scope, ids)
        if cid == "id-bad":
            self.bad_pick_starts.append(t0)
        return cid, hits

    async def lb_cooldown(self, scope, cid, seconds, reason=""):
        await self.inner.lb_cooldown(scope, cid, seconds, reason)
        self.cooldowns_done.append(time.time())

    async def lb_state(self, scope, ids):
        return await self.inner.lb_state(scope, ids)

    async def aclose(self):
        await self.inner.aclose()


def _mp_worker(url: str, n: int, start, results) -> None:
    asyncio.run(_mp_worker_main(url, n, start, results))


async def _mp_worker_main(url: str, n: int, start, results) -> None:
    from arun.state.redis import RedisStateStore

    store = _RecordingStore(RedisStateStore.from_url(url))
    await store.inner.client.ping()  # connect before the start gun
    lb = LoadBalancer(
        store,
        [LBConfig(f"id-{k}", k, {"api_key": k}) for k in ("good1", "good2", "bad")],
        **SCOPE_KW,
        rate_limit_cooldown=MP_COOLDOWN,
    )

    async def call(*, credentials):
        if credentials["api_key"] == "bad":
            raise InvokeRateLimitError("429 Too Many Requests", status=429)
        return credentials["api_key"]

    served: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    await asyncio.get_running_loop().run_in_executor(None, start.wait)
    for _ in range(n):
        try:
            served[await lb.invoke(call)] += 1
        except (InvokeError, StateUnavailableError, NoAvailableCredentialsError) as exc:
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
async def test_multiprocess_shared_balancing():
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
        await _cleanup(admin, prefix)
        await admin.aclose()

    served: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    bad_picks, cools = [], []
    for r in reports:
        served.update(r["served"])
        errors.update(r["errors"])
        bad_picks += r["bad_pick_starts"]
        cools += r["cooldowns_done"]
    g1, g2 = served["good1"], served["good2"]
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
    assert "bad" not in served
    assert spread <= 0.05
    assert cools and bad_picks
    # Once the first 429 cooled the bad config, no pick that started afterwards chose it.
    assert max(bad_picks) < min(cools)
    assert len(bad_picks) <= MP_WORKERS
    assert cool_ttl > 0  # still cooling at the end of the run
