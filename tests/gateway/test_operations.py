"""Operations: the response cache, the spend log, ``/metrics``, the health endpoints, the store's key rows
(SQLite and PostgreSQL), budgets reserved and settled by reservation id, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from gateway_harness import redis_or_skip, spend_rows
from rawhttp import request

from arun.gateway.auth import KeyRing, from_e7, hash_key, to_e7
from arun.gateway.budgets import MemoryBudgets, RedisBudgets
from arun.manager.store import SpendRecord

HELLO = [{"role": "user", "content": "Hello there friend"}]


async def test_cache_hits_are_marked_and_logged_and_cost_nothing(make_gateway):
    gateway = await make_gateway(cache={"enabled": True})
    client = gateway.openai()
    first = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=20)
    again = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=20)
    assert first.headers["x-arun-cache"] == "miss" and again.headers["x-arun-cache"] == "hit"
    assert json.loads(first.text)["choices"] == json.loads(again.text)["choices"]
    other = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=21)
    assert other.headers["x-arun-cache"] == "miss"
    bypass = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=20,
                                                                    extra_headers={"Cache-Control": "no-cache"})  # fmt: skip
    assert "x-arun-cache" in bypass.headers and bypass.headers["x-arun-cache"] == "miss"
    emb = [await client.embeddings.with_raw_response.create(model="text-embedding-3-small", input=["a b"]) for _ in range(2)]
    assert [r.headers["x-arun-cache"] for r in emb] == ["miss", "hit"]
    assert gateway.sim.stats.by_path["/v1/chat/completions"] == 3 and gateway.sim.stats.by_path["/v1/embeddings"] == 1
    rows = sorted(await spend_rows(gateway), key=lambda r: r.cache_hit)
    hits = [r for r in rows if r.cache_hit]
    assert len(hits) == 2 and all(r.price_e7 == 0 for r in hits)
    assert all(r.price_e7 > 0 for r in rows if not r.cache_hit and r.route == "/v1/chat/completions")
    # a cached answer belongs to the tenant: another tenant's key with the same request misses
    await gateway.gw.manager.create_tenant("other", tenant_id="other")
    await gateway.gw.manager.save_provider_credentials("other", "openai", {"openai_api_key": "sk-o-0000000000000000", "openai_api_base": gateway.sim.url}, validate=False)
    key, _ = await KeyRing(gateway.gw.manager.store).create("other")
    theirs = await gateway.openai(key=key).chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO, max_tokens=20)
    assert theirs.headers["x-arun-cache"] == "miss"


async def test_spend_log_rows_and_key_spend(gateway):
    client = gateway.openai()
    result = await client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=20)
    rows = await spend_rows(gateway)
    (row,) = rows
    rec = await gateway.gw.manager.store.get_virtual_key_by_hash(hash_key(gateway.key))
    assert row.key_id == rec.id and row.tenant_id == "demo" and row.provider == "openai" and row.model == "gpt-4o"
    assert (row.prompt_tokens, row.completion_tokens) == (result.usage.prompt_tokens, result.usage.completion_tokens)
    # gpt-4o: 2.50 / 10.00 per million tokens
    expected = Decimal(row.prompt_tokens) * Decimal("0.0000025") + Decimal(row.completion_tokens) * Decimal("0.00001")
    assert from_e7(row.price_e7) == expected.quantize(Decimal("0.0000001"))
    assert row.outcome == "ok" and row.status == 200 and not row.stream and row.latency_ms > 0
    assert rec.spent_e7 == row.price_e7  # the key's spend, in the same transaction as the row


async def test_metrics_and_health(gateway):
    client = gateway.openai()
    await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    stream = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    async for _ in stream:
        pass
    metrics = (await request("GET", gateway.url + "/metrics")).text
    live = await request("GET", gateway.url + "/health/live")
    ready = await request("GET", gateway.url + "/health/ready")
    assert 'arun_gateway_requests_total{route="/v1/chat/completions",status="200"} 2' in metrics
    assert 'arun_gateway_tokens_total{provider="openai",model="gpt-4o",kind="completion"}' in metrics
    assert "arun_gateway_time_to_first_token_seconds_bucket" in metrics and "arun_gateway_request_duration_seconds_count" in metrics
    assert "arun_gateway_streams_in_flight 0" in metrics and "arun_gateway_upstream_connections_acquired 0" in metrics
    assert 'arun_gateway_spend_total{currency="USD"}' in metrics
    assert live.status_code == 200 and ready.status_code == 200 and ready.json()["store"] == "ok"
    assert gateway.key not in metrics


async def test_store_keys_and_idempotent_spend(store):
    tenant = await store.create_tenant("t", encrypt_public_key="pk", encrypted_private_key="sk")
    rec = await store.create_virtual_key(tenant.id, "h" * 64, "sk-…abcd", name="ci", models=["gpt-4o"], rpm=5,
                                         budget_e7=to_e7("1.5"), currency="EUR")  # fmt: skip
    assert (await store.get_virtual_key_by_hash("h" * 64)).models == ["gpt-4o"]
    assert [k.id for k in await store.list_virtual_keys(tenant.id)] == [rec.id]
    rows = [SpendRecord(f"r{i}", rec.id, tenant.id, "/v1/chat/completions", "openai", "gpt-4o", 10, 5, 15, 1000 + i,
                        "EUR", 12.5, None, "ok", 200) for i in range(3)]  # fmt: skip
    assert await store.add_spend(rows) == 3
    assert await store.add_spend(rows[1:]) == 0  # a batch retried after a lost reply: nothing twice
    assert (await store.get_virtual_key(rec.id)).spent_e7 == 3003
    got = await store.list_spend(key_id=rec.id)
    assert sorted(r.id for r in got) == ["r0", "r1", "r2"] and got[0].currency == "EUR"
    from datetime import datetime, timedelta, timezone

    assert len(await store.list_spend(tenant_id=tenant.id, since=datetime.now(timezone.utc) - timedelta(hours=1))) == 3
    assert await store.list_spend(tenant_id=tenant.id, since=datetime.now(timezone.utc) + timedelta(hours=1)) == []
    (summary,) = await store.spend_summary(tenant_id=tenant.id)
    assert summary["requests"] == 3 and summary["price_e7"] == 3003 and summary["total_tokens"] == 45
    assert await store.revoke_virtual_key(rec.id) and not await store.revoke_virtual_key(rec.id)
    assert (await store.get_virtual_key(rec.id)).revoked_at is not None


async def _check_budgets(b) -> None:  # type: ignore[no-untyped-def]
    seeded = []

    async def seed() -> int:
        seeded.append(1)
        return 100

    assert await b.reserve("k", "r1", 500, 1000, seed) == (True, 100, 500)
    assert await b.reserve("k", "r1", 500, 1000, seed) == (True, 100, 500)  # the same id: no second charge
    assert (await b.reserve("k", "r2", 401, 1000, seed))[0] is False  # 100 + 500 + 401 > 1000
    assert await b.settle("k", "r1", 300)
    assert not await b.settle("k", "r1", 300)  # settled once
    assert await b.usage("k") == (400, 0)
    assert (await b.reserve("k", "r3", 600, 1000, seed))[0] is True
    assert len(seeded) == 1


async def test_memory_budget_reservations_expire_after_the_lease():
    now = [0.0]
    b = MemoryBudgets(lease=10.0, clock=lambda: now[0])

    async def seed() -> int:
        return 0

    assert await b.reserve("k", "a", 400, 1000, seed) == (True, 0, 400)
    now[0] = 4.0
    assert await b.reserve("k", "b", 400, 1000, seed) == (True, 0, 800)
    now[0] = 6.0
    assert await b.reserve("k", "c", 300, 1000, seed) == (False, 0, 800)  # a and b still held
    assert await b.settle("k", "b", 100)  # the younger one settles first; a stays held
    assert await b.reserve("k", "c", 600, 1000, seed) == (False, 100, 400)  # 100 + 400 + 600 > 1000
    now[0] = 10.0  # a's lease is over
    assert await b.reserve("k", "c", 600, 1000, seed) == (True, 100, 600)
    assert not await b.settle("k", "a", 400)  # an expired reservation is not open any more
    assert await b.usage("k") == (100, 600)
    now[0] = 25.0  # c's too: nothing held
    assert await b.reserve("k", "d", 900, 1000, seed) == (True, 100, 900)


async def test_budgets_memory_and_redis():
    await _check_budgets(MemoryBudgets())
    import uuid

    client = await redis_or_skip()
    prefix = f"arun-test-{uuid.uuid4().hex[:8]}:"
    try:
        await _check_budgets(RedisBudgets(client, prefix))
    finally:
        keys = [k async for k in client.scan_iter(prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def test_cli_keys_and_spend(tmp_path):
    import asyncio

    from arun.manager.store import open_store

    url = f"sqlite:///{tmp_path}/cli.db"

    async def setup() -> None:
        s = await open_store(url)
        await s.create_tenant("demo", encrypt_public_key="pk", encrypted_private_key="sk", tenant_id="demo")
        await s.close()

    asyncio.run(setup())
    arun = [sys.executable, "-m", "arun.cli"]
    out = subprocess.run([*arun, "keys", "create", "--tenant", "demo", "--name", "ci", "--rpm", "10", "--budget", "2.50",
                          "--store", url, "--json"], capture_output=True, text=True, check=True)  # fmt: skip
    created = json.loads(out.stdout)
    assert created["key"].startswith("sk-arun-")
    listed = subprocess.run([*arun, "keys", "list", "--store", url], capture_output=True, text=True, check=True).stdout
    assert created["id"] in listed and "budget=2.5000000" in listed and created["key"] not in listed
    revoked = subprocess.run([*arun, "keys", "revoke", created["id"], "--store", url], capture_output=True, text=True)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    spend = subprocess.run([*arun, "spend", "--store", url, "--summary"], capture_output=True, text=True, check=True)
    assert "(no spend)" in spend.stdout


def test_the_example_config_loads_and_env_errors_name_the_variable(monkeypatch, tmp_path):
    from pathlib import Path

    from arun.gateway.config import GatewayConfigError, load_config

    example = Path(__file__).resolve().parents[2] / "docs" / "gateway.example.yaml"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-openai-secret-value")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example-secret-value")
    cfg = load_config(example)
    assert cfg.providers["openai"].credentials == {"openai_api_key": "sk-example-openai-secret-value"}
    assert cfg.aliases["smart"].fallbacks == ["openai/gpt-4o"] and cfg.keys[0].budget == Decimal("5.00")
    assert "sk-example-openai-secret-value" not in repr(cfg.keys) and cfg.keys[0].key not in repr(cfg.keys)
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(GatewayConfigError) as info:
        load_config(example)
    assert "OPENAI_API_KEY is not set" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("aliases: {x: not-a-provider-model}\nkeys: [{name: a, key: short}]\n")
    with pytest.raises(GatewayConfigError) as info:
        load_config(bad)
    assert "aliases.x" in str(info.value) and "keys.0.key" in str(info.value)


async def test_opentelemetry_spans_through_the_policy_tracing(gateway, otel_spans):
    client = gateway.openai()
    await client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=20)
    stream = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    async for _ in stream:
        pass
    spans = otel_spans.get_finished_spans()
    assert [s.name for s in spans] == ["chat gpt-4o", "chat gpt-4o"]
    assert all(s.attributes["gen_ai.system"] == "openai" and s.attributes["gen_ai.usage.output_tokens"] > 0 for s in spans)
    assert spans[0].attributes["gen_ai.request.max_tokens"] == 20
