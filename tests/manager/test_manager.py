"""ModelManager end to end against the upstream simulator, on SQLite and PostgreSQL, memory and Redis state."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from typing import Any

import pytest
from redis_fixtures import REDIS_URL

from arun import LLMStream
from arun.entities.messages import UserPromptMessage
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelNotFoundError,
    ProviderNotFoundError,
)
from arun.manager import (
    HIDDEN_VALUE,
    CredentialDecryptError,
    ModelDisabledError,
    ModelManager,
    ModelTypeMismatchError,
    NoPermissionError,
    ProviderTokenNotInitError,
    QuotaExceededError,
    TenantNotFoundError,
)
from arun.manager.store import open_store
from arun.testing import Fault
from arun.testing.services import require_service

KEY = "sk-test-0123456789abcdef"
MSG = [UserPromptMessage(content="hello there")]




async def _state(kind: str) -> Any:
    from arun.state import open_state

    if kind == "memory":
        return open_state("memory://")
    require_service("redis://127.0.0.1:6379/0", "Redis")
    return open_state(REDIS_URL, prefix=f"arun-test-mgr-{uuid.uuid4().hex[:8]}:")


class CountingStore:
    """A thin pass-through that counts the store calls made through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("__"):
            return attr

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return wrapped


@pytest.fixture
async def manager(store_url):
    store = await open_store(store_url)
    m = ModelManager(store=store, state="memory://", master_key=os.urandom(32))
    async with m:
        yield m
    await store.close()


def creds(sim: Any, key: str = KEY) -> dict[str, str]:
    return {"openai_api_key": key, "openai_api_base": sim.url}


async def _raw(store: Any, sql: str, *args: Any) -> list[Any]:
    return await store._fetch(sql, args)


# ----------------------------------------------------------------------------- end to end


async def test_end_to_end_default_model_stream_and_non_stream(manager, upstream):
    t = await manager.create_tenant("acme")
    shown = await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    assert shown["openai_api_key"] == KEY[:6] + "*" * 12 + KEY[-2:]
    assert await manager.get_default_model(t.id, "llm") is not None  # first active model, persisted
    rows = await _raw(manager.store, "SELECT model_type, provider_name FROM tenant_default_models WHERE tenant_id = $1", t.id)
    assert [r["model_type"] for r in rows] == ["text-generation"]  # Dify's origin spelling

    inst = await manager.get_model_instance(t.id, None, "llm")
    assert inst.provider == "openai" and KEY not in repr(inst) and KEY not in repr(inst.credentials)
    result = await inst.invoke_llm(MSG, stream=False)
    assert result.message.content and result.usage.total_tokens > 0

    stream = await inst.invoke_llm(MSG, stream=True)
    assert isinstance(stream, LLMStream)
    parts = []
    async with stream:
        async for chunk in stream:
            parts.append(chunk.delta.message.content)
    assert "".join(parts) == stream.result().message.content == result.message.content
    assert stream.usage is not None and stream.usage.total_tokens > 0
    assert await inst.get_llm_num_tokens(MSG) > 0

    # set the default explicitly, read it back
    await manager.set_default_model(t.id, "llm", "openai", "gpt-4o-mini")
    assert (await manager.get_model_instance(t.id, "", "llm")).model == "gpt-4o-mini"


async def test_secrets_encrypted_at_rest_hidden_placeholder_and_obfuscation(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    raw = (await manager.store.get_providers(t.id, "openai"))[0].encrypted_config
    assert KEY not in raw and json.loads(raw)["openai_api_base"] == upstream.url  # only secret-input encrypted
    # the UI sends the placeholder back: the stored secret is kept
    await manager.save_provider_credentials(t.id, "openai", {"openai_api_key": HIDDEN_VALUE, "openai_api_base": upstream.url, "openai_organization": "org-1"})
    plain = await manager.get_provider_credentials(t.id, "openai", obfuscated=False)
    assert plain["openai_api_key"] == KEY and plain["openai_organization"] == "org-1"
    assert (await manager.get_provider_credentials(t.id, "openai"))["openai_api_key"] == "sk-tes************ef"
    # short secret → 20 stars
    await manager.save_provider_credentials(t.id, "openai", creds(upstream, "sk-short"))
    assert (await manager.get_provider_credentials(t.id, "openai"))["openai_api_key"] == "*" * 20
    assert await manager.delete_provider_credentials(t.id, "openai")
    assert await manager.get_provider_credentials(t.id, "openai") is None
    with pytest.raises(ProviderTokenNotInitError, match="Model gpt-4o-mini credentials is not initialized."):
        await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")


async def test_model_level_credentials_take_precedence(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream, "sk-provider-key-000"))
    await manager.save_model_credentials(t.id, "openai", "llm", "gpt-4o-mini", creds(upstream, "sk-model-key-000000"))
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    await inst.invoke_llm(MSG, stream=False)
    assert upstream.stats.by_key["sk-model-key-000000"] >= 1
    other = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o")
    before = upstream.stats.by_key["sk-provider-key-000"]
    await other.invoke_llm(MSG, stream=False)
    assert upstream.stats.by_key["sk-provider-key-000"] == before + 1
    # a custom (customizable) model name with its own credentials
    await manager.save_model_credentials(t.id, "openai", "llm", "gpt-4o-mini-ft", creds(upstream, "sk-model-key-000000"), validate=False)
    statuses = {(s.model, s.status) for s in await manager.list_models(t.id, "openai", "llm")}
    assert ("gpt-4o-mini-ft", "active") in statuses


# ----------------------------------------------------------------------------- cache


async def test_second_get_model_instance_makes_no_store_query(store_url, upstream):
    inner = await open_store(store_url)
    store = CountingStore(inner)
    async with ModelManager(store=store, state="memory://", master_key=os.urandom(32)) as m:  # type: ignore[arg-type]
        t = await m.create_tenant("acme")
        await m.save_provider_credentials(t.id, "openai", creds(upstream))
        await m.set_default_model(t.id, "llm", "openai", "gpt-4o-mini")
        first = await m.get_model_instance(t.id, None, "llm")
        store.calls.clear()
        second = await m.get_model_instance(t.id, None, "llm")
        again = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
        await second.invoke_llm(MSG, stream=False)
        assert sum(store.calls.values()) == 0, store.calls
        assert second is first and again is first
        # a change through the manager invalidates the cache
        await m.disable_model(t.id, "openai", "llm", "gpt-4o-mini")
        store.calls.clear()
        with pytest.raises(ModelDisabledError, match="Model gpt-4o-mini is disabled."):
            await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
        assert sum(store.calls.values()) > 0
        await m.enable_model(t.id, "openai", "llm", "gpt-4o-mini")
        await (await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")).invoke_llm(MSG, stream=False)
    await inner.close()


# ----------------------------------------------------------------------------- load balancing


@pytest.mark.parametrize("state_kind", ["memory", "redis"])
async def test_lb_three_configs_one_rate_limited(store_url, state_kind, upstream):
    state = await _state(state_kind)
    store = await open_store(store_url)
    try:
        async with ModelManager(store=store, state=state, master_key=os.urandom(32)) as m:
            t = await m.create_tenant("acme")
            await m.save_provider_credentials(t.id, "openai", creds(upstream, "sk-inherit-key-0"))
            keys = [f"sk-lb-key-{i}-abcdef" for i in range(3)]
            ids = [(await m.add_lb_config(t.id, "openai", "llm", "gpt-4o-mini", f"key{i}", creds(upstream, k))).id for i, k in enumerate(keys)]
            # not yet enabled on the model: no balancing
            assert not (await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")).load_balancing
            await m.enable_load_balancing(t.id, "openai", "llm", "gpt-4o-mini")
            inst = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
            assert inst.load_balancing and len(inst.policy.route.target.configs) == 3
            upstream.stats.reset()
            upstream.faults.push(Fault(status=429), key=keys[0], times=None)
            n = 90
            for i in range(n):
                if i % 3 == 0:
                    s = await inst.invoke_llm(MSG, stream=True)
                    await s.collect()
                else:
                    await inst.invoke_llm(MSG, stream=False)
            by_key = upstream.stats.by_key
            assert by_key[keys[0]] == 1  # one 429, then cooling for 60 s: no more requests
            served = [by_key[keys[1]], by_key[keys[2]]]
            assert sum(served) == n
            assert abs(served[0] - served[1]) <= max(2, n * 0.05), served
            views = {v.id: v for v in await m.lb_states(t.id, "openai", "llm", "gpt-4o-mini")}
            assert views[ids[0]].in_cooldown and 50 < views[ids[0]].ttl <= 60
            assert "RateLimit" in (views[ids[0]].reason or "")
            assert not views[ids[1]].in_cooldown and not views[ids[2]].in_cooldown
            assert keys[1] not in json.dumps([v.__dict__ for v in views.values()], default=str)
            # disable one healthy config → 2 left (one cooling) → all traffic to the other
            await m.disable_lb_config(t.id, ids[1])
            inst = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
            assert len(inst.policy.route.target.configs) == 2
            before = by_key[keys[2]]
            for _ in range(5):
                await inst.invoke_llm(MSG, stream=False)
            assert by_key[keys[2]] == before + 5
            # delete another → one enabled config → balancing off, provider credentials used
            assert await m.delete_lb_config(t.id, ids[0])
            inst = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
            assert not inst.load_balancing and len(inst.policy.route.target.configs) == 1
    finally:
        await store.close()
        await state.aclose()


async def test_lb_inherit_all_cooling_and_stream_failover(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream, "sk-inherit-key-0"))
    views = await manager.list_lb_configs(t.id, "openai", "llm", "gpt-4o-mini", create_inherit=True)
    assert [v.name for v in views] == ["__inherit__"]
    await manager.add_lb_config(t.id, "openai", "llm", "gpt-4o-mini", "second", creds(upstream, "sk-second-key-0"))
    await manager.enable_load_balancing(t.id, "openai", "llm", "gpt-4o-mini")
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    assert {c.name for c in inst.policy.route.target.configs} == {"__inherit__", "second"}
    # an error before the first chunk rotates to the other config
    upstream.stats.reset()
    upstream.faults.push(Fault(status=429), key="sk-second-key-0", times=None)
    for _ in range(4):
        s = await inst.invoke_llm(MSG, stream=True)
        assert (await s.collect()).message.content
    assert upstream.stats.by_key["sk-second-key-0"] == 1
    # both cooling → the last error
    upstream.faults.push(Fault(status=429), key="sk-inherit-key-0", times=None)
    with pytest.raises(InvokeRateLimitError):
        await inst.invoke_llm(MSG, stream=False)


async def test_lb_validation_failure_stores_nothing(manager, upstream):
    t = await manager.create_tenant("acme")
    with pytest.raises(CredentialsValidateFailedError):
        await manager.add_lb_config(t.id, "openai", "llm", "gpt-4o-mini", "bad", creds(upstream, "invalid-key"))
    assert await manager.store.get_lb_configs(t.id, "openai") == []


# ----------------------------------------------------------------------------- quota


async def test_quota_100_concurrent_against_50(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.set_system_quota(t.id, "openai", quota_limit=50, quota_type="trial", quota_unit="times", credentials=creds(upstream))
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    assert inst.provider_type == "system" and inst.quota is not None
    upstream.stats.reset()

    async def one(i: int) -> Any:
        if i % 2:
            return await (await inst.invoke_llm(MSG, stream=True)).collect()
        return await inst.invoke_llm(MSG, stream=False)

    results = await asyncio.gather(*(one(i) for i in range(100)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceededError)]
    assert len(ok) == 50 and len(refused) == 50, [type(r) for r in results if isinstance(r, BaseException) and not isinstance(r, QuotaExceededError)]
    (q,) = await manager.get_quotas(t.id, "openai")
    assert q.used == 50 and not q.valid  # no overshoot
    assert upstream.stats.total == 50  # refused before calling
    status = {s.provider: s.status for s in await manager.list_providers(t.id)}
    assert status["openai"] == "quota-exceeded"
    with pytest.raises(QuotaExceededError):
        await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")  # cache dropped by list_providers


async def test_quota_failed_call_is_not_charged_and_tokens_unit(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.set_system_quota(t.id, "openai", quota_limit=10, quota_unit="times", credentials=creds(upstream, "sk-hosted-key-00"))
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    upstream.faults.push(Fault(status=500), key="sk-hosted-key-00")
    with pytest.raises(InvokeServerUnavailableError):
        await inst.invoke_llm(MSG, stream=False)
    assert (await manager.get_quotas(t.id, "openai"))[0].used == 0
    await inst.invoke_llm(MSG, stream=False)
    assert (await manager.get_quotas(t.id, "openai"))[0].used == 1

    # tokens: each call reserves its estimate (prompt tokens + max_tokens) and is charged its real use
    t2 = await manager.create_tenant("tokens")
    await manager.set_system_quota(t2.id, "openai", quota_limit=200, quota_unit="tokens", credentials=creds(upstream))
    inst2 = await manager.get_model_instance(t2.id, "openai", "llm", "gpt-4o-mini")
    params = {"max_tokens": 16}
    r = await inst2.invoke_llm(MSG, params, stream=False)
    used = (await manager.get_quotas(t2.id, "openai"))[0].used
    assert used == r.usage.total_tokens
    estimate = await inst2.get_llm_num_tokens(MSG) + 16
    calls = 1
    while True:
        try:
            r = await inst2.invoke_llm(MSG, params, stream=False)
            calls += 1
            used += r.usage.total_tokens
        except QuotaExceededError:
            break
        assert calls < 50
    final = (await manager.get_quotas(t2.id, "openai"))[0].used
    assert final == used <= 200 and 200 - final < estimate  # refused only when the next estimate does not fit


async def test_quota_restrict_models_no_permission(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.set_system_quota(t.id, "openai", quota_limit=-1, credentials=creds(upstream), restrict_models=["gpt-4o-mini"])
    status = {s.model: s.status for s in await manager.list_models(t.id, "openai", "llm")}
    assert status["gpt-4o-mini"] == "active" and status["gpt-4o"] == "no-permission"
    with pytest.raises(NoPermissionError):
        await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o")
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    assert inst.quota is None  # unlimited: nothing to charge
    await inst.invoke_llm(MSG, stream=False)


# ----------------------------------------------------------------------------- isolation and bad input


async def test_tenant_isolation(manager, upstream):
    a = await manager.create_tenant("a")
    b = await manager.create_tenant("b")
    await manager.save_provider_credentials(a.id, "openai", creds(upstream))
    assert await manager.get_provider_credentials(b.id, "openai") is None
    with pytest.raises(ProviderTokenNotInitError):
        await manager.get_model_instance(b.id, "openai", "llm", "gpt-4o-mini")
    # even with A's ciphertext copied into B's row, B cannot decrypt it
    raw = (await manager.store.get_providers(a.id, "openai"))[0].encrypted_config
    await manager.store.upsert_provider(b.id, "openai", encrypted_config=raw)
    manager.invalidate(b.id)
    with pytest.raises(CredentialDecryptError):
        await manager.get_provider_credentials(b.id, "openai")
    with pytest.raises(CredentialDecryptError):
        await manager.get_model_instance(b.id, "openai", "llm", "gpt-4o-mini")


async def test_corrupt_ciphertext_is_a_typed_error(manager, upstream):
    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    await manager.store.upsert_provider(t.id, "openai", encrypted_config={"openai_api_key": "QVJVTjE6Z2FyYmFnZQ==", "openai_api_base": upstream.url})
    manager.invalidate(t.id)
    with pytest.raises(CredentialDecryptError) as info:
        await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    assert "QVJVTjE6" not in str(info.value)


async def test_unknown_tenant_provider_model_and_type(manager, upstream):
    with pytest.raises(TenantNotFoundError):
        await manager.get_model_instance("no-such-tenant", "openai", "llm", "gpt-4o-mini")
    with pytest.raises(TenantNotFoundError):
        await manager.save_provider_credentials("no-such-tenant", "openai", creds(upstream))
    t = await manager.create_tenant("acme")
    with pytest.raises(ProviderTokenNotInitError, match="Default model not found for"):
        await manager.get_model_instance(t.id, None, "llm")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    with pytest.raises(ProviderNotFoundError):
        await manager.get_model_instance(t.id, "no-such-provider", "llm", "x")
    with pytest.raises(ModelNotFoundError):
        await manager.get_model_instance(t.id, "openai", "llm", "no-such-model")
    with pytest.raises(ModelNotFoundError):
        await manager.set_default_model(t.id, "llm", "openai", "no-such-model")
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    with pytest.raises(ModelTypeMismatchError):
        await inst.invoke_text_embedding(["x"])
    with pytest.raises(ModelTypeMismatchError):
        await inst.invoke_tts("hello")


async def test_credentials_failing_validation_store_nothing(manager, upstream):
    t = await manager.create_tenant("acme")
    with pytest.raises(CredentialsValidateFailedError):
        await manager.save_provider_credentials(t.id, "openai", creds(upstream, "invalid-key-123"))
    assert await manager.store.get_providers(t.id) == []
    with pytest.raises(CredentialsValidateFailedError):
        await manager.save_model_credentials(t.id, "openai", "llm", "gpt-4o-mini", creds(upstream, "invalid-key-123"))
    assert await manager.store.get_provider_models(t.id) == []
    # hidden placeholder with nothing stored is refused
    with pytest.raises(CredentialsValidateFailedError):
        await manager.save_provider_credentials(t.id, "openai", {"openai_api_key": HIDDEN_VALUE, "openai_api_base": upstream.url})


async def test_provider_listing_statuses(manager, upstream):
    t = await manager.create_tenant("acme")
    status = {s.provider: s.status for s in await manager.list_providers(t.id)}
    assert status["openai"] == "no-configure"
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    listed = {s.provider: s for s in await manager.list_providers(t.id)}
    assert listed["openai"].status == "active" and listed["openai"].custom_configured
    await manager.disable_model(t.id, "openai", "llm", "gpt-4o")
    models = {m.model: m.status for m in await manager.list_models(t.id, "openai", "llm")}
    assert models["gpt-4o"] == "disabled" and models["gpt-4o-mini"] == "active"


async def test_stream_error_after_first_chunk_is_typed_and_not_rotated(manager, upstream):
    from arun.errors import InvokeConnectionError

    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream, "sk-inherit-key-0"))
    await manager.add_lb_config(t.id, "openai", "llm", "gpt-4o-mini", "__inherit__")
    await manager.add_lb_config(t.id, "openai", "llm", "gpt-4o-mini", "second", creds(upstream, "sk-second-key-0"))
    await manager.enable_load_balancing(t.id, "openai", "llm", "gpt-4o-mini")
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    upstream.stats.reset()
    upstream.faults.push(Fault(disconnect_after=2), path="/v1/chat/completions", times=1)
    stream = await inst.invoke_llm([UserPromptMessage(content="a long enough message to stream several chunks")], stream=True)
    got = 0
    with pytest.raises(InvokeConnectionError):
        async for _ in stream:
            got += 1
    assert got >= 1 and upstream.stats.total == 1  # no mid-stream failover
    states = await manager.lb_states(t.id, "openai", "llm", "gpt-4o-mini")
    assert not any(s.in_cooldown for s in states)
