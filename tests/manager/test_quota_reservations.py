"""Quota charged through reservation ids (SQLite and PostgreSQL), and QuotaPlan on top of them.

A reservation is checked against the limit and recorded in one transaction; the same id
retried is a no-op returning the same answer, so a retry after a lost reply never charges
twice.  Settling adjusts the charge to the real use (clamped at the limit); releasing
refunds it; both are idempotent.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from arun.manager.errors import QuotaExceededError
from arun.manager.quota import QuotaPlan, QuotaReservation
from arun.manager.store import open_store, schema as schema_mod


async def _tenant(store):
    return await store.create_tenant("acme", encrypt_public_key="PUB", encrypted_private_key="ARUNK1:xx")


async def _quota(store, limit, *, provider="anthropic", quota_type="trial", used=None):
    t = await _tenant(store)
    await store.upsert_provider(t.id, provider, provider_type="system", quota_type=quota_type, quota_limit=limit, quota_used=used)
    return t


async def _used(store, tenant_id, quota_type="trial"):
    return {r.quota_type: r.quota_used for r in await store.get_providers(tenant_id, provider_type="system")}[quota_type]


def _rid() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------- the store API


async def test_reserve_is_idempotent_per_id(store):
    t = await _quota(store, 100)
    rid = _rid()
    first = await store.reserve_quota(t.id, "anthropic", 30, quota_type="trial", reservation_id=rid)
    assert first is not None and (first.reserved, first.charged, first.state, first.quota_type) == (30, 30, "reserved", "trial")
    again = await store.reserve_quota(t.id, "anthropic", 30, quota_type="trial", reservation_id=rid)
    assert again == first
    assert await _used(store, t.id) == 30
    assert await store.get_quota_reservation(rid) == first


async def test_reserve_that_does_not_fit_records_nothing(store):
    t = await _quota(store, 10, used=8)
    rid = _rid()
    assert await store.reserve_quota(t.id, "anthropic", 3, quota_type="trial", reservation_id=rid) is None
    assert await store.get_quota_reservation(rid) is None and await _used(store, t.id) == 8
    fits = await store.reserve_quota(t.id, "anthropic", 2, quota_type="trial", reservation_id=rid)
    assert fits is not None and await _used(store, t.id) == 10
    assert await store.reserve_quota(t.id, "nobody", 1, quota_type="trial", reservation_id=_rid()) is None
    with pytest.raises(ValueError):
        await store.reserve_quota(t.id, "anthropic", -1, quota_type="trial", reservation_id=_rid())


async def test_settle_charges_the_real_use_once(store):
    t = await _quota(store, 100)
    more, less = _rid(), _rid()
    await store.reserve_quota(t.id, "anthropic", 20, quota_type="trial", reservation_id=more)
    await store.reserve_quota(t.id, "anthropic", 20, quota_type="trial", reservation_id=less)
    settled = await store.settle_quota(more, 35)
    assert settled is not None and (settled.charged, settled.actual, settled.state) == (35, 35, "settled")
    assert await store.settle_quota(more, 35) == settled  # idempotent
    assert await store.settle_quota(more, 90) == settled  # a settled reservation never moves again
    assert (await store.settle_quota(less, 5)).charged == 5
    assert await _used(store, t.id) == 40
    assert (await store.release_quota(more)).state == "settled"  # too late to refund
    assert await _used(store, t.id) == 40


async def test_settle_is_clamped_at_the_limit(store):
    t = await _quota(store, 100)
    a, b = _rid(), _rid()
    await store.reserve_quota(t.id, "anthropic", 50, quota_type="trial", reservation_id=a)
    await store.reserve_quota(t.id, "anthropic", 40, quota_type="trial", reservation_id=b)
    clamped = await store.settle_quota(a, 75)  # 25 more wanted, 10 left
    assert (clamped.charged, clamped.actual) == (60, 75)
    assert await _used(store, t.id) == 100


async def test_release_refunds_once(store):
    t = await _quota(store, 100)
    rid = _rid()
    await store.reserve_quota(t.id, "anthropic", 25, quota_type="trial", reservation_id=rid)
    released = await store.release_quota(rid)
    assert released is not None and (released.state, released.charged) == ("released", 0)
    assert await store.release_quota(rid) == released
    assert await store.settle_quota(rid, 25) == released  # a released reservation is not charged again
    assert await _used(store, t.id) == 0
    assert await store.release_quota(_rid()) is None and await store.settle_quota(_rid(), 1) is None


async def test_refund_never_goes_below_zero(store):
    t = await _quota(store, 100)
    rid = _rid()
    await store.reserve_quota(t.id, "anthropic", 25, quota_type="trial", reservation_id=rid)
    await store.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=100, quota_used=10)
    await store.release_quota(rid)
    assert await _used(store, t.id) == 0


async def test_quota_no_overshoot_100_concurrent_against_50(store):
    t = await _quota(store, 50, provider="openai")
    results = await asyncio.gather(*(store.reserve_quota(t.id, "openai", 1, quota_type="trial", reservation_id=_rid()) for _ in range(100)))
    assert sum(r is not None for r in results) == 50 and await _used(store, t.id) == 50


async def test_quota_no_overshoot_with_amounts_above_one(store):
    t = await _quota(store, 50, provider="openai")
    results = await asyncio.gather(*(store.reserve_quota(t.id, "openai", 3, quota_type="trial", reservation_id=_rid()) for _ in range(100)))
    assert sum(r is not None for r in results) == 16 and await _used(store, t.id) == 48
    assert await store.reserve_quota(t.id, "openai", 2, quota_type="trial", reservation_id=_rid())
    assert not await store.reserve_quota(t.id, "openai", 1, quota_type="trial", reservation_id=_rid())


async def test_quota_unlimited(store):
    t = await _quota(store, -1, provider="openai", quota_type="paid")
    results = await asyncio.gather(*(store.reserve_quota(t.id, "openai", 1000, quota_type="paid", reservation_id=_rid()) for _ in range(20)))
    assert all(results) and await _used(store, t.id, "paid") == 20000
    assert (await store.settle_quota(results[0].id, 10**9)).charged == 10**9  # no limit, no clamp


async def test_quota_order_paid_free_trial_when_type_not_given(store):
    t = await _tenant(store)
    for qt, limit in (("trial", 100), ("free", 5), ("paid", 2)):
        await store.upsert_provider(t.id, "zhipuai", provider_type="system", quota_type=qt, quota_limit=limit)
    used = []
    for _ in range(8):
        assert await store.reserve_quota(t.id, "zhipuai", 1, quota_type=None, reservation_id=_rid())
        used.append({r.quota_type: r.quota_used for r in await store.get_providers(t.id)})
    assert used[1] == {"paid": 2, "free": 0, "trial": 0}
    assert used[-1] == {"paid": 2, "free": 5, "trial": 1}
    assert await store.reserve_quota(t.id, "zhipuai", 1, quota_type="paid", reservation_id=_rid()) is None


async def test_sqlite_two_connections_share_the_quota(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    a, b = await open_store(url), await open_store(url)
    try:
        t = await _quota(a, 50, provider="openai")
        results = await asyncio.gather(
            *(s.reserve_quota(t.id, "openai", 1, quota_type="trial", reservation_id=_rid()) for s in (a, b) for _ in range(50))
        )
        assert sum(r is not None for r in results) == 50 and await _used(b, t.id) == 50
    finally:
        await a.close()
        await b.close()


async def test_deleting_the_tenant_deletes_its_reservations(store):
    t = await _quota(store, 100)
    rid = _rid()
    await store.reserve_quota(t.id, "anthropic", 5, quota_type="trial", reservation_id=rid)
    await store.delete_tenant(t.id)
    assert await store.get_quota_reservation(rid) is None


async def test_sweep_releases_stale_reservations_and_prunes_finished_ones(store):
    t = await _quota(store, 100)
    stale, done, fresh = _rid(), _rid(), _rid()
    for rid in (stale, done, fresh):
        await store.reserve_quota(t.id, "anthropic", 10, quota_type="trial", reservation_id=rid)
    await store.settle_quota(done, 4)
    assert await _used(store, t.id) == 24
    cutoff = datetime.now(timezone.utc) + timedelta(seconds=5)  # everything so far is "old"
    assert await store.sweep_quota_reservations(cutoff) == (2, 1)  # released: stale and fresh; deleted: done
    assert await _used(store, t.id) == 4  # the two open reservations were refunded, the settled charge stays
    assert await store.get_quota_reservation(done) is None
    assert (await store.get_quota_reservation(stale)).state == "released"
    assert await store.sweep_quota_reservations(cutoff) == (0, 2)  # the released rows go on the next sweep
    assert await store.get_quota_reservation(stale) is None and await _used(store, t.id) == 4
    assert await store.sweep_quota_reservations(datetime.now(timezone.utc) - timedelta(days=1)) == (0, 0)


async def test_migration_from_version_2_keeps_the_data(store_url, monkeypatch):
    v2 = [m for m in schema_mod.MIGRATIONS if m[0] <= 2]
    for name in ("arun.manager.store.sqlite", "arun.manager.store.postgres"):
        monkeypatch.setattr(f"{name}.MIGRATIONS", v2)
    old = await open_store(store_url)
    try:
        assert await old.schema_version() == 2
        t = await _quota(old, 10)
    finally:
        await old.close()
    monkeypatch.undo()
    new = await open_store(store_url)
    try:
        assert await new.schema_version() == schema_mod.MIGRATIONS[-1][0] >= 3
        assert await new.reserve_quota(t.id, "anthropic", 3, quota_type="trial", reservation_id=_rid())
        assert await _used(new, t.id) == 3
    finally:
        await new.close()


# ---------------------------------------------------------------- QuotaPlan


def _plan(store, tenant_id, unit="tokens", quota_types=("trial",), provider="anthropic"):
    return QuotaPlan(store, tenant_id, provider, unit, list(quota_types))


async def test_plan_reserves_the_estimate_for_tokens_and_one_otherwise(store):
    t = await _quota(store, 100)
    plan = _plan(store, t.id)
    res = await plan.reserve(40)
    assert isinstance(res, QuotaReservation) and (res.amount, res.quota_type) == (40, "trial")
    assert await _used(store, t.id) == 40
    await plan.settle(res, 25)
    assert await _used(store, t.id) == 25
    times = _plan(store, t.id, unit="times")
    r2 = await times.reserve(40)
    assert r2.amount == 1 and await _used(store, t.id) == 26
    await times.settle(r2, 999)  # times: the call costs 1 whatever its tokens
    assert await _used(store, t.id) == 26 and (await store.get_quota_reservation(r2.id)).state == "settled"


async def test_plan_settle_without_usage_keeps_the_reservation_and_release_refunds(store):
    t = await _quota(store, 100)
    plan = _plan(store, t.id)
    kept = await plan.reserve(30)
    await plan.settle(kept, None)
    gone = await plan.reserve(30)
    await plan.release(gone)
    await plan.release(gone)
    assert await _used(store, t.id) == 30


async def test_plan_falls_through_quota_types_then_refuses(store):
    t = await _tenant(store)
    for qt, limit in (("paid", 10), ("trial", 50)):
        await store.upsert_provider(t.id, "anthropic", provider_type="system", quota_type=qt, quota_limit=limit)
    plan = _plan(store, t.id, quota_types=("paid", "trial"))
    assert (await plan.reserve(8)).quota_type == "paid"
    assert (await plan.reserve(8)).quota_type == "trial"  # paid has 2 left: it cannot take 8
    with pytest.raises(QuotaExceededError, match="anthropic"):
        await plan.reserve(60)


@dataclass
class _Call:
    estimate: int  # prompt tokens + max_tokens
    actual: int  # prompt tokens + the completion tokens really produced
    abandoned: bool  # the caller stopped reading: settled with its partial usage


def _calls(rng: random.Random, n: int, *, overrun: float = 0.0) -> list[_Call]:
    out = []
    for _ in range(n):
        prompt, max_tokens = rng.randint(5, 20), rng.randint(5, 40)
        completion = rng.randint(1, max_tokens)
        abandoned = rng.random() < 0.2
        if abandoned:
            completion = rng.randint(1, max(1, completion // 3))  # partial usage after the first chunks
        actual = prompt + completion
        if overrun:
            actual += int(actual * rng.uniform(0, overrun))  # the estimator undercounted
        out.append(_Call(prompt + max_tokens, actual, abandoned))
    return out


async def _run_concurrent(store, tenant_id, calls: list[_Call], *, window: int | None = None) -> tuple[list[tuple[_Call, QuotaReservation]], int]:
    """Every call at once, or (``window``) call ``i`` starting once ``i - window`` calls have finished,
    so that later calls meet the capacity earlier ones gave back."""
    plan = _plan(store, tenant_id)
    admitted: list[tuple[_Call, QuotaReservation]] = []
    refused = 0
    finished = 0
    progress = asyncio.Condition()

    async def one(i: int, call: _Call) -> None:
        nonlocal refused, finished
        if window is not None:
            async with progress:
                await progress.wait_for(lambda: finished >= i - window)
        try:
            res = await plan.reserve(call.estimate)
        except QuotaExceededError:
            refused += 1
        else:
            for _ in range(3):
                await asyncio.sleep(0)  # the upstream call
            admitted.append((call, res))
            await plan.settle(res, call.actual)
        async with progress:
            finished += 1
            progress.notify_all()

    await asyncio.gather(*(one(i, c) for i, c in enumerate(calls)))
    return admitted, refused


LIMIT = 1000


ARRIVALS = {"all-at-once": None, "100-in-flight": 100}


@pytest.mark.parametrize("arrival", ARRIVALS)
@pytest.mark.parametrize("seed", [1, 2])
async def test_500_concurrent_token_calls_stay_within_the_limit(store, store_url, seed, arrival):
    t = await _quota(store, LIMIT)
    calls = _calls(random.Random(seed), 500)
    admitted, refused = await _run_concurrent(store, t.id, calls, window=ARRIVALS[arrival])
    real = sum(c.actual for c, _ in admitted)
    used = await _used(store, t.id)
    assert len(admitted) + refused == 500 and 0 < len(admitted) < 500
    assert real <= LIMIT + max(c.estimate for c in calls)  # the bound asked for
    assert real <= LIMIT  # with estimates that cover the real use, there is no overshoot at all
    assert used == real  # every admitted call charged exactly its real use, abandoned ones included
    states = {(await store.get_quota_reservation(r.id)).state for _, r in admitted}
    assert states == {"settled"}
    print(f"\n[{store_url.split(':')[0]} seed {seed} {arrival}] admitted {len(admitted)}/500, real use {real} of {LIMIT}, charged {used}")


@pytest.mark.parametrize("arrival", ARRIVALS)
@pytest.mark.parametrize("seed", [1, 2])
async def test_500_concurrent_calls_with_underestimates_account_for_every_token(store, store_url, seed, arrival):
    t = await _quota(store, LIMIT)
    calls = _calls(random.Random(seed), 500, overrun=0.3)
    admitted, _ = await _run_concurrent(store, t.id, calls, window=ARRIVALS[arrival])
    real = sum(c.actual for c, _ in admitted)
    used = await _used(store, t.id)
    rows = [await store.get_quota_reservation(r.id) for _, r in admitted]
    assert used <= LIMIT and used == sum(r.charged for r in rows)
    uncharged = sum(r.actual - r.charged for r in rows)
    assert real == used + uncharged  # the overshoot is exactly what the clamp could not charge
    assert real - LIMIT <= sum(max(0, c.actual - c.estimate) for c, _ in admitted)
    print(f"\n[{store_url.split(':')[0]} seed {seed} {arrival}, estimates up to 30% low] admitted {len(admitted)}/500, "
          f"real use {real} of {LIMIT} (overshoot {max(0, real - LIMIT)}), charged {used}")  # fmt: skip
