"""Bad key material and bad credential input reach the caller as typed errors, through the manager.

Before: a corrupt stored public key raised the cryptography library's raw ``ValueError``, and
a secret given as a list with ``validate=False`` a raw ``TypeError``.
"""

from __future__ import annotations

import os

import pytest

from arun.errors import CredentialsValidateFailedError
from arun.manager import CredentialDecryptError, ModelManager
from arun.manager.store import open_store


@pytest.fixture
async def manager(store_url):
    store = await open_store(store_url)
    async with ModelManager(store=store, state="memory://", master_key=os.urandom(32)) as m:
        yield m
    await store.close()


async def test_corrupt_stored_public_key_is_a_decrypt_error(manager):
    tenant = await manager.create_tenant("acme")
    await manager.store._fetch(
        "UPDATE tenants SET encrypt_public_key = $1 WHERE id = $2",
        ("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n", tenant.id),
    )
    manager.invalidate(tenant.id)
    with pytest.raises(CredentialDecryptError) as info:
        await manager.save_provider_credentials(tenant.id, "openai", {"openai_api_key": "sk-x-0123456789"}, validate=False)
    assert tenant.id in str(info.value) and "public key" in str(info.value)


@pytest.mark.parametrize("value", [["sk-a", "sk-b"], {"nested": "sk-a"}])
async def test_non_text_secret_without_validation_is_a_validate_error(manager, value):
    tenant = await manager.create_tenant("acme")
    # a load-balancing config with validate=False skips the credential form: the encryption step decides
    with pytest.raises(CredentialsValidateFailedError) as info:
        await manager.add_lb_config(tenant.id, "openai", "llm", "gpt-4o-mini", "second", {"openai_api_key": value}, validate=False)
    assert "openai_api_key" in str(info.value) and type(value).__name__ in str(info.value)
    assert await manager.store.get_lb_configs(tenant.id, "openai") == []  # nothing was written
    # provider credentials go through the form, which says the same in its words
    with pytest.raises(CredentialsValidateFailedError, match="openai_api_key"):
        await manager.save_provider_credentials(tenant.id, "openai", {"openai_api_key": value}, validate=False)
