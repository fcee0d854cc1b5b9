"""A missing master-key file is never silently replaced while tenants sealed under it exist.

Before: the embedded default generated a fresh key whenever its file was missing, so every
existing tenant became unreadable -- and tenants created afterwards were unreadable once the
old key was restored.  Now the manager refuses to start, naming the missing file.
"""

from __future__ import annotations

import base64
import os
import shutil

import pytest

from arun.errors import ArunError
from arun.manager import ModelManager
from arun.manager.crypto import MASTER_KEY_ENV, MasterKeyError, load_master_key
from arun.manager.store import open_store

KEY = "sk-master-key-test-0123456789"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)


async def _tenant_with_credentials(manager: ModelManager) -> str:
    tenant = await manager.create_tenant("acme")
    await manager.save_provider_credentials(tenant.id, "openai", {"openai_api_key": KEY}, validate=False)
    return tenant.id


async def _stored_key(manager: ModelManager, tenant_id: str) -> str:
    creds = await manager.get_provider_credentials(tenant_id, "openai", obfuscated=False)
    assert creds is not None
    return creds["openai_api_key"]


def _sqlite_manager(url: str) -> ModelManager:
    return ModelManager(url, "memory://")


async def test_sqlite_missing_key_file_with_tenants_refuses_to_start(tmp_path):
    url = f"sqlite:///{tmp_path}/arun.db"
    key_file = tmp_path / "arun.db.key"
    async with _sqlite_manager(url) as m:
        tid = await _tenant_with_credentials(m)
    assert key_file.exists()
    shutil.move(key_file, tmp_path / "backup.key")

    m = _sqlite_manager(url)
    with pytest.raises(MasterKeyError) as info:
        await m.start()
    message = str(info.value)
    assert str(key_file) in message and "missing" in message and "1 tenant" in message
    assert not key_file.exists()  # no new key was generated behind the operator's back
    assert isinstance(info.value, ArunError)

    shutil.move(tmp_path / "backup.key", key_file)  # restored: everything reads again
    async with _sqlite_manager(url) as m:
        assert await _stored_key(m, tid) == KEY


async def test_sqlite_without_tenants_still_generates_a_key(tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/fresh.db"
    async with _sqlite_manager(url) as m:
        tid = await _tenant_with_credentials(m)
    assert (tmp_path / "fresh.db.key").exists() and "generated a new arun master key" in caplog.text
    async with _sqlite_manager(url) as m:
        assert await _stored_key(m, tid) == KEY


async def test_env_key_wins_over_a_missing_file(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/arun.db"
    async with _sqlite_manager(url) as m:
        tid = await _tenant_with_credentials(m)
    key_file = tmp_path / "arun.db.key"
    raw = load_master_key(key_file)
    key_file.unlink()
    monkeypatch.setenv(MASTER_KEY_ENV, base64.b64encode(raw).decode())
    async with _sqlite_manager(url) as m:
        assert await _stored_key(m, tid) == KEY
    assert not key_file.exists()


async def test_failed_start_closes_what_it_opened_and_can_start_again(tmp_path):
    url = f"sqlite:///{tmp_path}/arun.db"
    async with _sqlite_manager(url) as m:
        tid = await _tenant_with_credentials(m)
    key_file = tmp_path / "arun.db.key"
    shutil.move(key_file, tmp_path / "backup.key")
    m = _sqlite_manager(url)
    with pytest.raises(MasterKeyError):
        await m.start()
    assert m._owns == [] and not m._started and m._store is None
    shutil.move(tmp_path / "backup.key", key_file)
    async with m:
        assert await _stored_key(m, tid) == KEY


async def test_postgres_missing_key_file_with_tenants_refuses_to_start(pg_url, tmp_path):
    key_file = tmp_path / "pg-master.key"
    async with ModelManager(pg_url, "memory://", key_file=key_file) as m:
        tid = await _tenant_with_credentials(m)
    saved = key_file.read_bytes()
    key_file.unlink()

    with pytest.raises(MasterKeyError) as info:
        await ModelManager(pg_url, "memory://", key_file=key_file).start()
    assert str(key_file) in str(info.value) and "1 tenant" in str(info.value)
    assert not key_file.exists()

    key_file.write_bytes(saved)
    os.chmod(key_file, 0o600)
    async with ModelManager(pg_url, "memory://", key_file=key_file) as m:
        assert await _stored_key(m, tid) == KEY


async def test_store_counts_sealed_tenants(pg_url, tmp_path):
    for url in (f"sqlite:///{tmp_path}/count.db", pg_url):
        store = await open_store(url)
        try:
            assert await store.count_sealed_tenants() == 0
            await store.create_tenant("a", encrypt_public_key="P", encrypted_private_key="ARUNK1:x")
            await store.create_tenant("b", encrypt_public_key="P", encrypted_private_key="ARUNK1:y")
            assert await store.count_sealed_tenants() == 2
        finally:
            await store.close()
