"""The policy stack through the manager: SQLite + memory and PostgreSQL + Redis.

PostgreSQL or Redis unreachable → those cases skip, unless ``CI=true`` (then they fail).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from redis_fixtures import REDIS_URL
from store_fixtures import fresh_pg_database

from arun.entities.messages import UserPromptMessage
from arun.errors import (
    InvokeBadRequestError,
    InvokeRateLimitError,
    InvokeStreamInterruptedError,
    ModelNotFoundError,
    ParameterValidationError,
)
from arun.manager import FallbackSpec, ModelManager, PolicyConfig, QuotaExceededError
from arun.manager.store import open_store
from arun.policy.retry import RetryPolicy
from arun.policy.router import Cooldowns
from arun.testing import Fault
from arun.testing.services import require_service

MSG = [UserPromptMessage(content="hello there")]
LONG = [UserPromptMessage(content="a long enough message to stream several chunks of text")]
MODEL = "gpt-4o-mini"
CLAUDE = "claude-3-5-haiku-20241022"
FAST = RetryPolicy(base_delay=0.001, max_delay=0.005)




@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def setup(request, tmp_path):
    """(store URL, state URL) for each backend pair."""
    if request.param == "sqlite+memory":
        yield f"sqlite:///{tmp_path}/arun.db", "memory://"
        return
    require_service("redis://127.0.0.1:6379/0", "Redis")
    async with fresh_pg_database() as url:
        yield url, f"{REDIS_URL}?prefix=arun-test-pol-{uuid.uuid4().hex[:8]}:"


def _manager(setup: tuple[str, str], store: Any, **policy: Any) -> ModelManager:
    cfg = PolicyConfig(retry=policy.pop("retry", FAST), **policy)
    return ModelManager(store=store, state=setup[1], master_key=os.urandom(32), policy=cfg)


def oa(sim: Any, key: str, **extra: Any) -> dict[str, Any]:
    return {"openai_api_key": key, "openai_api_base": sim.url, **extra}


async def _lb(m: ModelManager, tenant: str, sim: Any, keys: list[str], **extra: Any) -> list[str]:
    await m.save_provider_credentials(tenant, "openai", oa(sim, "sk-provider-key-000"))
    ids = [(await m.add_lb_config(tenant, "openai", "llm", MODEL, f"cfg{i}", oa(sim, k, **extra))).id for i, k in enumerate(keys)]
    await m.enable_load_balancing(tenant, "openai", "llm", MODEL)
    return ids


async def test_429_before_first_chunk_rotates_invisibly(setup, upstream):
    store = await open_store(setup[0])
    try:
        async with _manager(setup, store) as m:
            t = await m.create_tenant("acme")
            keys = ["sk-pol-a-0000000000", "sk-pol-b-0000000000"]
            ids = await _lb(m, t.id, upstream, keys)
            inst = await m.get_model_instance(t.id, "openai", "llm", MODEL)
            assert inst.policy is not None and sorted(c.id for c in inst.policy.route.target.configs) == sorted(ids)
            upstream.stats.reset()
            upstream.faults.push(Fault(status=429, retry_after=30), key=keys[0], times=None)
            for _ in range(6):
                stream = await inst.invoke_llm(LONG, stream=True)
                result = await stream.collect()
                assert result.message.content.startswith("Echo: a long enough")
                assert stream.trace is not None and stream.trace.outcome == "completed"
            by_key = upstream.stats.by_key
            assert by_key[keys[0]] == 1 and by_key[keys[1]] == 6  # one 429, then cooling: never asked again
            states = {s.config_id: s for s in await inst.policy_states()}
            assert not states[ids[0]].healthy and "RateLimit" in (states[ids[0]].cooling_reason or "")
            assert 30 <= states[ids[0]].cooling_remaining <= 60
            assert states[ids[1]].healthy and states[ids[1]].requests >= 6 and states[ids[1]].in_flight == 0
            assert states[ids[1]].ewma_ttft is not None
            # the balancer's view shares the cooldown (same state keys)
            views = {v.id: v for v in await m.lb_states(t.id, "openai", "llm", MODEL)}
            assert views[ids[0]].in_cooldown and not views[ids[1]].in_cooldown
            # non-stream too
            r = await inst.invoke_llm(MSG, stream=False)
            assert r.message.content == "Echo: hello there" and by_key[keys[0]] == 1
    finally:
        await store.close()


async def test_disconnect_after_first_chunk_ends_in_one_typed_error(setup, upstream):
    store = await open_store(setup[0])
    try:
        async with _manager(setup, store) as m:
            t = await m.create_tenant("acme")
            await _lb(m, t.id, upstream, ["sk-pol-a-0000000000", "sk-pol-b-0000000000"])
            inst = await m.get_model_instance(t.id, "openai", "llm", MODEL)
            upstream.stats.reset()
            upstream.faults.push(Fault(disconnect_after=3), path="/v1/chat/completions", times=1)
            stream = await inst.invoke_llm(LONG, stream=True)
            got, errors = 0, []
            for _ in range(3):  # iterating again after the error yields nothing more
                try:
                    async for _chunk in stream:
                        got += 1
                except InvokeStreamInterruptedError as exc:
                    errors.append(exc)
            assert len(errors) == 1 and got >= 1
            assert errors[0].partial_usage is not None and errors[0].trace.outcome == "interrupted"
            assert upstream.stats.total == 1  # never retried after output reached the caller
            await stream.aclose()
    finally:
        await store.close()


async def test_rpm_in_credentials_is_enforced(setup, upstream):
    store = await open_store(setup[0])
    try:
        async with _manager(setup, store, limit_wait=0.2) as m:
            t = await m.create_tenant("acme")
            keys = ["sk-rpm-a-0000000000", "sk-rpm-b-0000000000"]
            ids = await _lb(m, t.id, upstream, keys, rpm=2)
            # the limit is stored with the config, never sent upstream
            inst = await m.get_model_instance(t.id, "openai", "llm", MODEL)
            for c in inst.policy.route.target.configs:
                assert "rpm" not in c.credentials and c.limits.rpm == 2
            shown = {v.id: v.credentials for v in await m.list_lb_configs(t.id, "openai", "llm", MODEL)}
            assert shown[ids[0]]["rpm"] == 2
            upstream.stats.reset()
            ok = 0
            for i in range(4):
                if i % 2:
                    await (await inst.invoke_llm(MSG, stream=True)).collect()
                else:
                    await inst.invoke_llm(MSG, stream=False)
                ok += 1
            with pytest.raises(InvokeRateLimitError):
                await inst.invoke_llm(MSG, stream=False)
            with pytest.raises(InvokeRateLimitError):
                await inst.invoke_llm(MSG, stream=True)
            by_key = upstream.stats.by_key
            assert ok == 4 and by_key[keys[0]] == 2 and by_key[keys[1]] == 2 and upstream.stats.total == 4
            states = await inst.policy_states()
            assert all(s.healthy for s in states)  # our own limiter said no: no credential cools
            assert all(s.limit is not None for s in states)
            # a single credential (no balancing): its rpm from the provider credentials
            t2 = await m.create_tenant("single")
            await m.save_provider_credentials(t2.id, "openai", oa(upstream, "sk-rpm-single-00000", rpm="3"))
            single = await m.get_model_instance(t2.id, "openai", "llm", MODEL)
            assert not single.load_balancing and "rpm" not in single.credentials
            before = by_key["sk-rpm-single-00000"]  # the validation call
            for _ in range(3):
                await single.invoke_llm(MSG, stream=False)
            with pytest.raises(InvokeRateLimitError):
                await single.invoke_llm(MSG, stream=False)
            assert by_key["sk-rpm-single-00000"] - before == 3
    finally:
        await store.close()


async def test_bad_limit_value_is_a_validation_error(setup, upstream):
    from arun.errors import CredentialsValidateFailedError

    store = await open_store(setup[0])
    try:
        async with _manager(setup, store) as m:
            t = await m.create_tenant("acme")
            with pytest.raises(CredentialsValidateFailedError):
                await m.save_provider_credentials(t.id, "openai", oa(upstream, "sk-x-00000000000000", rpm=0))
            assert await m.get_provider_credentials(t.id, "openai") is None
    finally:
        await store.close()


async def test_fallback_chain_moves_a_rate_limited_model(setup, upstream):
    store = await open_store(setup[0])
    try:
        async with _manager(setup, store, cooldowns=Cooldowns(rate_limit=30)) as m:
            t = await m.create_tenant("acme")
            await m.save_provider_credentials(t.id, "openai", oa(upstream, "sk-primary-0000000"))
            await m.save_provider_credentials(t.id, "anthropic", {"anthropic_api_key": "ant-fallback-000000", "anthropic_api_url": upstream.url})
            chain = await m.set_fallbacks(t.id, "openai", "llm", MODEL, [("anthropic", CLAUDE, [InvokeRateLimitError])])
            assert chain == [FallbackSpec("anthropic", CLAUDE, ("InvokeRateLimitError",))]
            with pytest.raises(ModelNotFoundError):
                await m.set_fallbacks(t.id, "openai", "llm", MODEL, [("anthropic", "no-such-model")])
            with pytest.raises(ParameterValidationError, match="NotAnError"):
                await m.set_fallbacks(t.id, "openai", "llm", MODEL, [("anthropic", CLAUDE, ["NotAnError"])])
            # persisted: a fresh manager on the same store reads it back
            async with ModelManager(store=store, state="memory://", master_key=m._master) as other:
                assert await other.get_fallbacks(t.id, "openai", "llm", MODEL) == chain
            inst = await m.get_model_instance(t.id, "openai", "llm", MODEL)
            assert [fb.target.name for fb in inst.policy.route.chain()] == [f"anthropic/{CLAUDE}"]
            upstream.stats.reset()
            upstream.faults.push(Fault(status=429), key="sk-primary-0000000", times=None)
            r = await inst.invoke_llm(MSG, stream=False)
            assert r.message.content == "Echo: hello there"
            stream = await inst.invoke_llm(MSG, stream=True)
            assert (await stream.collect()).message.content == "Echo: hello there"
            assert stream.trace.fallbacks == 1 and stream.trace.target == f"anthropic/{CLAUDE}"
            assert upstream.stats.by_key["ant-fallback-000000"] == 2
            assert upstream.stats.by_key["sk-primary-0000000"] >= 1
            names = {s.target for s in await inst.policy_states()}
            assert names == {f"openai/{MODEL}", f"anthropic/{CLAUDE}"}
            # cleared: the rate limit reaches the caller
            await m.set_fallbacks(t.id, "openai", "llm", MODEL, [])
            inst = await m.get_model_instance(t.id, "openai", "llm", MODEL)
            assert inst.policy.route.chain() == []
            with pytest.raises(InvokeRateLimitError):
                await inst.invoke_llm(MSG, stream=False)
    finally:
        await store.close()


async def test_quota_never_overshoots_with_the_policy(setup, upstream):
    store = await open_store(setup[0])
    try:
        async with _manager(setup, store) as m:
            t = await m.create_tenant("acme")
            await m.set_system_quota(t.id, "openai", quota_limit=20, quota_unit="times", credentials=oa(upstream, "sk-hosted-00000000"))
            inst = await m.get_model_instance(t.id, "openai", "llm", MODEL)
            assert inst.policy is not None and inst.quota is not None
            upstream.stats.reset()
            # a failure before any output is refunded
            upstream.faults.push(Fault(status=400), key="sk-hosted-00000000", times=1)
            with pytest.raises(InvokeBadRequestError):
                await inst.invoke_llm(MSG, stream=False)
            assert (await m.get_quotas(t.id, "openai"))[0].used == 0

            async def one(i: int) -> Any:
                if i % 2:
                    return await (await inst.invoke_llm(MSG, stream=True)).collect()
                return await inst.invoke_llm(MSG, stream=False)

            results = await asyncio.gather(*(one(i) for i in range(50)), return_exceptions=True)
            ok = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, QuotaExceededError)]
            assert len(ok) == 20 and len(refused) == 30, [r for r in results if isinstance(r, BaseException) and not isinstance(r, QuotaExceededError)]
            (q,) = await m.get_quotas(t.id, "openai")
            assert q.used == 20 and not q.valid
            assert upstream.stats.total == 21  # the 400 plus 20 answered; the refused never called
    finally:
        await store.close()


async def test_embeddings_and_disabled_policy(setup, upstream):
    store = await open_store(setup[0])
    try:
        async with _manager(setup, store) as m:
            t = await m.create_tenant("acme")
            keys = ["sk-emb-a-0000000000", "sk-emb-b-0000000000"]
            await m.save_provider_credentials(t.id, "openai", oa(upstream, "sk-provider-key-000"))
            for i, k in enumerate(keys):
                await m.add_lb_config(t.id, "openai", "text-embedding", "text-embedding-3-small", f"e{i}", oa(upstream, k))
            await m.enable_load_balancing(t.id, "openai", "text-embedding", "text-embedding-3-small")
            emb = await m.get_model_instance(t.id, "openai", "text-embedding", "text-embedding-3-small")
            assert emb.policy is not None
            upstream.stats.reset()
            upstream.faults.push(Fault(status=429), key=keys[0], times=None)
            for _ in range(3):
                r = await emb.invoke_text_embedding(["a", "b"])
                assert len(r.embeddings) == 2
            assert upstream.stats.by_key[keys[0]] == 1 and upstream.stats.by_key[keys[1]] == 3
        # policy off: the same router with Dify's rules (no retries, no limits), balancing the two configs
        async with ModelManager(store=store, state=setup[1], master_key=m._master, policy=PolicyConfig(enabled=False)) as off:
            inst = await off.get_model_instance(t.id, "openai", "text-embedding", "text-embedding-3-small")
            assert inst.load_balancing and len(inst.policy.route.target.configs) == 2
            assert inst.policy.router.retry.max_retries == 0 and inst.policy.router.limiter is None
            assert all(c.limits is None for c in inst.policy.route.target.configs)
    finally:
        await store.close()
