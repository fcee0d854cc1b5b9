"""One suite over both credential stores (SQLite temp file and a fresh PostgreSQL database)."""

from __future__ import annotations

import pytest

from arun.entities import ModelType
from arun.manager.store import (
    ProviderRecord,
    ProviderType,
    StoreConflictError,
    StoreError,
    choose_quota,
    open_store,
    parse_config,
    quota_is_valid,
)
from arun.manager.store.schema import MIGRATIONS


async def _tenant(store, name="acme"):
    return await store.create_tenant(name, encrypt_public_key="PUB", encrypted_private_key="ARUNK1:xx")


async def test_schema_version_and_reopen_is_idempotent(store, store_url):
    assert await store.schema_version() == MIGRATIONS[-1][0]
    again = await open_store(store_url)
    try:
        assert await again.schema_version() == MIGRATIONS[-1][0]
    finally:
        await again.close()


async def test_tenant_crud(store):
    t = await _tenant(store)
    got = await store.get_tenant(t.id)
    assert got == t and got.created_at is not None
    with pytest.raises(StoreConflictError):
        await store.create_tenant("dup", encrypt_public_key="P", encrypted_private_key="K", tenant_id=t.id)
    assert await store.delete_tenant(t.id) is True
    assert await store.get_tenant(t.id) is None
    assert await store.delete_tenant(t.id) is False


async def test_provider_upsert_unique_key(store):
    t = await _tenant(store)
    a = await store.upsert_provider(t.id, "openai", encrypted_config={"openai_api_key": "blob"})
    b = await store.upsert_provider(t.id, "openai", encrypted_config={"openai_api_key": "blob2"}, is_valid=False)
    assert a.id == b.id and b.config() == {"openai_api_key": "blob2"} and b.is_valid is False
    await store.upsert_provider(t.id, "openai", provider_type="system", quota_type="trial", quota_limit=200)
    await store.upsert_provider(t.id, "openai", provider_type=ProviderType.SYSTEM, quota_type="paid", quota_limit=-1)
    rows = await store.get_providers(t.id, "openai")
    assert [(r.provider_type.value, r.quota_type) for r in rows] == [("custom", ""), ("system", "paid"), ("system", "trial")]
    assert len(await store.get_providers(t.id, provider_type="system")) == 2
    assert await store.delete_provider(t.id, "openai") is True
    assert len(await store.get_providers(t.id)) == 2


async def test_provider_upsert_keeps_quota_used_unless_given(store):
    t = await _tenant(store)
    await store.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=10)
    assert await store.reserve_quota(t.id, "anthropic", 4, quota_type="trial", reservation_id="r-keeps-used")
    kept = await store.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=20)
    assert (kept.quota_limit, kept.quota_used) == (20, 4)
    reset = await store.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=20, quota_used=0)
    assert reset.quota_used == 0


async def test_mark_provider_used(store):
    t = await _tenant(store)
    await store.upsert_provider(t.id, "openai")
    await store.mark_provider_used(t.id, "openai")
    (row,) = await store.get_providers(t.id)
    assert row.last_used is not None


async def test_provider_models_origin_spelling(store):
    t = await _tenant(store)
    await store.upsert_provider_model(t.id, "openai", "gpt-x", ModelType.LLM, encrypted_config={"k": "v"})
    await store.upsert_provider_model(t.id, "openai", "emb", "text-embedding")
    await store.upsert_provider_model(t.id, "openai", "gpt-x", "text-generation", encrypted_config={"k": "w"})
    models = await store.get_provider_models(t.id, "openai")
    assert {(m.model_name, m.model_type) for m in models} == {("gpt-x", ModelType.LLM), ("emb", ModelType.TEXT_EMBEDDING)}
    got = await store.get_provider_model(t.id, "openai", "gpt-x", "llm")
    assert got is not None and got.config() == {"k": "w"}
    assert await store.get_provider_model(t.id, "openai", "gpt-x", ModelType.RERANK) is None
    assert await store.delete_provider_model(t.id, "openai", "emb", "embeddings") is True
    assert len(await store.get_provider_models(t.id)) == 1


async def test_origin_spelling_is_what_is_stored(store):
    t = await _tenant(store)
    await store.upsert_provider_model(t.id, "cohere", "rr", ModelType.RERANK)
    rows = await store._fetch("SELECT model_type FROM provider_models WHERE tenant_id = $1", (t.id,))
    assert [r["model_type"] for r in rows] == ["reranking"]


async def test_model_settings_partial_update(store):
    t = await _tenant(store)
    s = await store.upsert_model_setting(t.id, "openai", "gpt", ModelType.LLM)
    assert (s.enabled, s.load_balancing_enabled) == (True, False)
    s2 = await store.upsert_model_setting(t.id, "openai", "gpt", ModelType.LLM, load_balancing_enabled=True)
    s3 = await store.upsert_model_setting(t.id, "openai", "gpt", ModelType.LLM, enabled=False)
    assert s.id == s2.id == s3.id and (s3.enabled, s3.load_balancing_enabled) == (False, True)
    assert await store.get_model_settings(t.id, "openai") == [s3]


async def test_load_balancing_configs(store):
    t = await _tenant(store)
    a = await store.add_lb_config(t.id, "openai", "gpt", ModelType.LLM, "__inherit__")
    b = await store.add_lb_config(t.id, "openai", "gpt", ModelType.LLM, "key-2", encrypted_config={"openai_api_key": "x"})
    await store.add_lb_config(t.id, "openai", "emb", ModelType.TEXT_EMBEDDING, "key-3")
    got = await store.get_lb_configs(t.id, "openai", "gpt", ModelType.LLM)
    assert {c.id for c in got} == {a.id, b.id}
    assert len(await store.get_lb_configs(t.id, "openai")) == 3
    upd = await store.update_lb_config(t.id, b.id, enabled=False)
    assert upd is not None and upd.enabled is False and upd.config() == {"openai_api_key": "x"} and upd.name == "key-2"
    assert await store.update_lb_config("other-tenant", b.id, enabled=True) is None
    assert await store.delete_lb_config(t.id, a.id) is True
    assert await store.delete_lb_config(t.id, a.id) is False


async def test_default_models(store):
    t = await _tenant(store)
    assert await store.get_default_model(t.id, ModelType.LLM) is None
    await store.set_default_model(t.id, ModelType.LLM, "openai", "gpt-4")
    d = await store.set_default_model(t.id, "text-generation", "anthropic", "claude")
    assert d.model_type is ModelType.LLM and d.provider_name == "anthropic"
    await store.set_default_model(t.id, ModelType.TEXT_EMBEDDING, "openai", "emb")
    assert len(await store.get_default_models(t.id)) == 2
    assert await store.get_default_model(t.id, "llm") == d
    assert await store.delete_default_model(t.id, ModelType.LLM) is True


async def test_delete_tenant_cascades(store):
    t = await _tenant(store)
    await store.upsert_provider(t.id, "openai")
    await store.upsert_provider_model(t.id, "openai", "gpt", ModelType.LLM)
    await store.add_lb_config(t.id, "openai", "gpt", ModelType.LLM, "k")
    await store.set_default_model(t.id, ModelType.LLM, "openai", "gpt")
    await store.delete_tenant(t.id)
    assert await store.get_providers(t.id) == [] and await store.get_provider_models(t.id) == []
    assert await store.get_lb_configs(t.id, "openai") == [] and await store.get_default_models(t.id) == []


async def test_rows_need_an_existing_tenant(store):
    with pytest.raises(StoreError):
        await store.upsert_provider("no-such-tenant", "openai")


# ---------------------------------------------------------------- quota


# the charging itself (reservations, concurrency, order) is in test_quota_reservations.py


def _rec(qt: str, limit: int | None, used: int) -> ProviderRecord:
    return ProviderRecord("id-" + qt, "t", "p", ProviderType.SYSTEM, None, True, qt, limit, used)


def test_choose_quota_pure():
    assert choose_quota([]) is None
    assert choose_quota([_rec("trial", 10, 0), _rec("paid", 10, 0)]).quota_type == "paid"
    assert choose_quota([_rec("trial", 10, 0), _rec("paid", 10, 10), _rec("free", 5, 1)]).quota_type == "free"
    assert choose_quota([_rec("trial", 10, 10), _rec("paid", 10, 10)]).quota_type == "trial"  # last seen
    assert choose_quota([_rec("free", -1, 10**9)]).quota_type == "free"
    assert quota_is_valid(-1, 5) and quota_is_valid(5, 4) and not quota_is_valid(5, 5) and not quota_is_valid(None, 0)


def test_parse_config_legacy_and_json():
    assert parse_config(None) == {} and parse_config("") == {}
    assert parse_config("c2stbGVnYWN5") == {"openai_api_key": "c2stbGVnYWN5"}
    assert parse_config('{"a": 1}') == {"a": 1}


async def test_tenant_key_round_trip_through_store_is_never_plaintext(store):
    import os

    from arun.manager.crypto import TenantKey, decrypt_credentials, encrypt_credentials

    master = os.urandom(32)
    key = TenantKey.generate("will-be-replaced", master)
    key = TenantKey.from_private_key("tenant-x", key.private_key, master)
    t = await store.create_tenant("x", tenant_id="tenant-x", encrypt_public_key=key.public_pem, encrypted_private_key=key.encrypted_private_key)
    (raw,) = await store._fetch("SELECT encrypted_private_key FROM tenants WHERE id = $1", (t.id,))
    assert "PRIVATE KEY" not in raw["encrypted_private_key"] and raw["encrypted_private_key"].startswith("ARUNK1:")
    enc = encrypt_credentials(key, {"openai_api_key": "sk-store-secret-123456"}, {"openai_api_key"})
    await store.upsert_provider(t.id, "openai", encrypted_config=enc)
    row = await store.get_tenant(t.id)
    loaded = TenantKey.load(row.id, row.encrypt_public_key, row.encrypted_private_key, master)
    (prov,) = await store.get_providers(t.id)
    assert "sk-store-secret" not in (prov.encrypted_config or "")
    assert decrypt_credentials(loaded, prov.config(), {"openai_api_key"}) == {"openai_api_key": "sk-store-secret-123456"}
