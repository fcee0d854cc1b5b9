"""StateStore semantics, against both the memory store and the real Redis."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter

import pytest
from redis_fixtures import REDIS_URL, redis_state_store

from arun.state import MemoryStateStore, StateUnavailableError, open_state
from arun.state.base import LB_INDEX_TTL, StateStore, lb_cooldown_key, lb_index_key, lb_scope

SCOPE = lb_scope("tenant-1", "openai", "llm", "gpt-4o")
IDS = ["a", "b", "c"]






class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def redis_store():
    async with redis_state_store() as s:
        yield s


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        s = MemoryStateStore()
        yield s
        await s.aclose()
    else:
        async with redis_state_store() as s:
            yield s


async def _set_counter(store, value: int) -> None:
    if isinstance(store, MemoryStateStore):
        store._index[SCOPE] = [value, store._clock() + LB_INDEX_TTL]
    else:
        await store.client.set(lb_index_key(SCOPE, store.prefix), value)


async def _get_counter(store) -> int:
    if isinstance(store, MemoryStateStore):
        return int(store._index[SCOPE][0])
    return int(await store.client.get(lb_index_key(SCOPE, store.prefix)))


# --- protocol / factory -----------------------------------------------------


async def test_implements_protocol(store):
    assert isinstance(store, StateStore)


async def test_open_state_urls():
    mem = open_state("memory://")
    assert isinstance(mem, MemoryStateStore)
    await mem.aclose()
    from arun.state.redis import RedisStateStore

    r = open_state("redis://127.0.0.1:6379/0?prefix=arun-test-x:&socket_timeout=1")
    assert isinstance(r, RedisStateStore) and r.prefix == "arun-test-x:"
    await r.aclose()
    with pytest.raises(ValueError):
        open_state("postgres://x")


# --- round robin (Dify fetch_next) -----------------------------------------


async def test_dify_item_10_inherit_in_cooldown(store):
    """Configs [__inherit__ (cooling), first, second]; INCR 1, 2, 3 -> first, then second."""
    ids = ["__inherit__", "first", "second"]
    await store.lb_cooldown(SCOPE, "__inherit__", 60, "test")
    cid, hits = await store.lb_pick(SCOPE, ids)
    assert cid == "first"
    assert [h[0] for h in hits] == ["__inherit__"] and 0 < hits[0][1] <= 60
    assert await _get_counter(store) == 2
    cid, hits = await store.lb_pick(SCOPE, ids)
    assert (cid, hits) == ("second", [])
    assert await _get_counter(store) == 3


async def test_round_robin_order_and_zero_maps_to_last(store):
    picks = [(await store.lb_pick(SCOPE, IDS))[0] for _ in range(7)]
    assert picks == ["a", "b", "c", "a", "b", "c", "a"]
    assert await _get_counter(store) == 7


async def test_index_wraps_at_ten_million(store):
    await _set_counter(store, 9_999_998)
    # INCR -> 9,999,999; 9,999,999 % 3 == 0 -> the last config.
    assert (await store.lb_pick(SCOPE, IDS))[0] == "c"
    # INCR -> 10,000,000 -> reset to 1 -> the first config.
    assert (await store.lb_pick(SCOPE, IDS))[0] == "a"
    assert await _get_counter(store) == 1
    assert (await store.lb_pick(SCOPE, IDS))[0] == "b"


async def test_all_cooling_returns_none_with_hits(store):
    for cid in IDS:
        await store.lb_cooldown(SCOPE, cid, 30, "x")
    cid, hits = await store.lb_pick(SCOPE, IDS)
    assert cid is None
    assert len(hits) == len(IDS) and sorted(h[0] for h in hits) == IDS
    assert all(0 < ttl <= 30 for _, ttl in hits)


async def test_empty_config_list(store):
    assert await store.lb_pick(SCOPE, []) == (None, [])
    assert await store.lb_state(SCOPE, []) == []


async def test_concurrent_picks_are_atomic(store):
    results = await asyncio.gather(*(store.lb_pick(SCOPE, IDS) for _ in range(999)))
    counts = Counter(cid for cid, _ in results)
    assert counts == {"a": 333, "b": 333, "c": 333}
    assert await _get_counter(store) == 999


async def test_concurrent_picks_skip_cooling_evenly(store):
    await store.lb_cooldown(SCOPE, "b", 60, "429")
    results = await asyncio.gather(*(store.lb_pick(SCOPE, IDS) for _ in range(1000)))
    counts = Counter(cid for cid, _ in results)
    assert counts == {"a": 500, "c": 500}


# --- cooldown ----------------------------------------------------------------


async def test_cooldown_state_reason_until(store):
    before = time.time()
    await store.lb_cooldown(SCOPE, "b", 60, "InvokeRateLimitError: Rate Limit Error")
    states = await store.lb_state(SCOPE, IDS)
    assert [s.config_id for s in states] == IDS
    a, b, c = states
    assert not a.in_cooldown and a.ttl == 0 and a.until is None and a.reason is None
    assert b.in_cooldown and 59 < b.ttl <= 60
    assert before + 59 < b.until <= time.time() + 60.01
    assert b.reason == "InvokeRateLimitError: Rate Limit Error"
    assert not c.in_cooldown


async def test_cooldown_never_shortened_but_extended(store):
    await store.lb_cooldown(SCOPE, "a", 60, "long")
    await store.lb_cooldown(SCOPE, "a", 10, "short")
    s = (await store.lb_state(SCOPE, ["a"]))[0]
    assert s.ttl > 50 and s.reason == "long"
    await store.lb_cooldown(SCOPE, "a", 120, "longer")
    s = (await store.lb_state(SCOPE, ["a"]))[0]
    assert s.ttl > 110 and s.reason == "longer"


async def test_default_reason_is_dify_true(store):
    await store.lb_cooldown(SCOPE, "a", 5)
    assert (await store.lb_state(SCOPE, ["a"]))[0].reason == "true"


async def test_scopes_are_isolated(store):
    other = lb_scope("tenant-2", "openai", "llm", "gpt-4o")
    await store.lb_cooldown(SCOPE, "a", 60)
    assert (await store.lb_pick(other, IDS))[0] == "a"
    assert (await store.lb_pick(other, IDS))[0] == "b"
    assert (await store.lb_pick(SCOPE, IDS))[0] == "b"


# --- expiry: memory with a fake clock ------------------------------------------


async def test_memory_expiry_with_fake_clock():
    clock = FakeClock()
    store = MemoryStateStore(clock=clock)
    await store.lb_cooldown(SCOPE, "a", 10, "x")
    assert (await store.lb_pick(SCOPE, IDS))[0] == "b"  # INCR 1 -> a cooling, INCR 2 -> b
    clock.t += 10.0
    assert not (await store.lb_state(SCOPE, ["a"]))[0].in_cooldown
    assert (await store.lb_pick(SCOPE, IDS))[0] == "c"
    assert (await store.lb_pick(SCOPE, IDS))[0] == "a"  # counter 4 -> a, no longer cooling
    # The counter's 3600 s TTL is refreshed by every pick...
    clock.t += 3599
    assert (await store.lb_pick(SCOPE, IDS))[0] == "b"  # counter 5
    clock.t += 3599
    assert await _get_counter(store) == 5
    # ...and honoured once it lapses: the counter starts again at 1.
    clock.t += 2
    assert (await store.lb_pick(SCOPE, IDS))[0] == "a"
    assert await _get_counter(store) == 1


async def test_memory_sweeps_expired_entries():
    clock = FakeClock()
    store = MemoryStateStore(clock=clock)
    for i in range(2000):
        await store.lb_cooldown(f"s{i}", "a", 1)
        await store.lb_pick(f"s{i}", IDS)
    clock.t += 4000
    for i in range(2000):
        await store.lb_cooldown(f"t{i}", "a", 1)
        await store.lb_pick(f"t{i}", IDS)
    assert len(store._cool) < 3000 and len(store._index) < 3000


# --- Redis specifics -------------------------------------------------------------


async def test_redis_dify_key_layout_and_expire(redis_store):
    r, p = redis_store.client, redis_store.prefix
    await redis_store.lb_pick(SCOPE, IDS)
    index_key = f"{p}model_lb_index:tenant-1:openai:llm:gpt-4o"
    assert index_key == lb_index_key(SCOPE, p)
    assert await r.get(index_key) == "1"
    assert 3595 <= await r.ttl(index_key) <= 3600
    await r.expire(index_key, 5)
    await redis_store.lb_pick(SCOPE, IDS)
    assert 3595 <= await r.ttl(index_key) <= 3600  # EXPIRE 3600 on every call
    await redis_store.lb_cooldown(SCOPE, "b", 60, "why")
    cool_key = f"{p}model_lb_index:cooldown:tenant-1:openai:llm:gpt-4o:b"
    assert cool_key == lb_cooldown_key(SCOPE, "b", p)
    assert await r.exists(cool_key) == 1
    assert 58 <= await r.ttl(cool_key) <= 60
    assert await r.get(cool_key) == "why"


async def test_redis_wrap_keeps_expire(redis_store):
    r, key = redis_store.client, lb_index_key(SCOPE, redis_store.prefix)
    await r.set(key, 9_999_999)
    await redis_store.lb_pick(SCOPE, IDS)
    assert await r.get(key) == "1"
    assert 3595 <= await r.ttl(key) <= 3600


async def test_redis_cooldown_expires(redis_store):
    await redis_store.lb_cooldown(SCOPE, "a", 0.15, "x")
    assert (await redis_store.lb_state(SCOPE, ["a"]))[0].in_cooldown
    await asyncio.sleep(0.25)
    assert not (await redis_store.lb_state(SCOPE, ["a"]))[0].in_cooldown
    assert (await redis_store.lb_pick(SCOPE, IDS))[0] == "a"


async def test_redis_foreign_cooldown_key_without_ttl_counts(redis_store):
    """A Dify-written ``SET key true`` without TTL still means "cooling" (EXISTS semantics)."""
    await redis_store.client.set(lb_cooldown_key(SCOPE, "a", redis_store.prefix), "true")
    cid, hits = await redis_store.lb_pick(SCOPE, IDS)
    assert cid == "b" and hits[0][0] == "a" and hits[0][1] == float("inf")
    s = (await redis_store.lb_state(SCOPE, ["a"]))[0]
    assert s.in_cooldown and s.until is None


async def test_redis_noscript_fallback(redis_store, monkeypatch):
    import arun.state.redis as mod

    fresh = mod.LuaScript(mod._PICK_LUA + f"\n-- {uuid.uuid4().hex}\n")
    monkeypatch.setattr(mod, "_PICK", fresh)
    assert (await redis_store.client.script_exists(fresh.sha)) == [False]
    assert (await redis_store.lb_pick(SCOPE, IDS))[0] == "a"  # NOSCRIPT -> EVAL
    assert (await redis_store.client.script_exists(fresh.sha)) == [True]
    assert (await redis_store.lb_pick(SCOPE, IDS))[0] == "b"  # EVALSHA


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_redis_down_raises_typed_error():
    from arun.state.redis import RedisStateStore

    store = RedisStateStore.from_url(f"redis://127.0.0.1:{_free_port()}/0?prefix=arun-test-down:")
    try:
        with pytest.raises(StateUnavailableError):
            await store.lb_pick(SCOPE, IDS)
        with pytest.raises(StateUnavailableError):
            await store.lb_cooldown(SCOPE, "a", 10)
        with pytest.raises(StateUnavailableError):
            await store.lb_state(SCOPE, IDS)
    finally:
        await store.aclose()


class _Proxy:
    """A TCP proxy to Redis that the test can take down and bring back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.close()
        await self.server.wait_closed()
        self.writers.clear()

    async def _handle(self, reader, writer) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers.update((writer, uw))

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        await asyncio.gather(pipe(reader, uw), pipe(ur, writer))


async def test_redis_goes_away_and_recovers(redis_store):
    """Redis goes away mid-life: typed errors while it is gone, automatic recovery after."""
    from urllib.parse import urlsplit

    from arun.state.redis import RedisStateStore

    u = urlsplit(REDIS_URL)
    proxy = _Proxy((u.hostname or "127.0.0.1", u.port or 6379))
    await proxy.start()
    store = RedisStateStore.from_url(
        f"redis://127.0.0.1:{proxy.port}{u.path or '/0'}?prefix={redis_store.prefix}",
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )
    try:
        assert (await store.lb_pick(SCOPE, IDS))[0] == "a"
        await proxy.stop()
        for _ in range(3):
            with pytest.raises(StateUnavailableError):
                await store.lb_pick(SCOPE, IDS)
        with pytest.raises(StateUnavailableError):
            await store.lb_state(SCOPE, IDS)
        await proxy.start()
        assert (await store.lb_pick(SCOPE, IDS))[0] == "b"
        await store.lb_cooldown(SCOPE, "c", 30, "back")
        assert (await store.lb_state(SCOPE, ["c"]))[0].reason == "back"
    finally:
        await store.aclose()
        await proxy.stop()


async def test_redis_killed_connection_reconnects(redis_store):
    """CLIENT KILL (our own connection only) -> the next call reconnects transparently."""
    r = redis_store.client
    name = (await r.client_getname())
    assert (await redis_store.lb_pick(SCOPE, IDS))[0] == "a"
    import redis.asyncio as aioredis

    admin = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        mine = [c for c in await admin.client_list() if c.get("name") == name]
        assert mine
        for c in mine:
            await admin.execute_command("CLIENT", "KILL", "ID", c["id"])
    finally:
        await admin.aclose()
    assert (await redis_store.lb_pick(SCOPE, IDS))[0] == "b"
    assert (await redis_store.lb_state(SCOPE, IDS))[0].in_cooldown is False
