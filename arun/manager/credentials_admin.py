"""Provider and model credentials: validated, encrypted, obfuscated on the way out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import ModelType
from arun.errors import (
    ModelNotFoundError,
)
from arun.manager.core import ManagerCore
from arun.manager.crypto import (
    encrypt_credentials,
    merge_hidden,
    obfuscate_credentials,
)
from arun.manager.policy import check_limit_fields
from arun.manager.store import (
    ProviderType,
)
from arun.model_types.kinds import model_type_of


class CredentialsMixin(ManagerCore):
    """Provider and model credentials: validated, encrypted, obfuscated on the way out."""

    # -- provider credentials --------------------------------------------------------------

    async def save_provider_credentials(self, tenant_id: str, provider: str, credentials: Mapping[str, Any], *, validate: bool = True) -> dict[str, Any]:
        """Validate, then store (secret fields encrypted); ``[__HIDDEN__]`` keeps a stored secret.

        Returns the stored credentials, obfuscated.  Nothing is written when validation fails.
        """
        credentials = self._mapping(credentials)
        cfg = await self._config(tenant_id)
        secrets = self._secrets(provider, model_level=False)
        merged, limits = check_limit_fields(merge_hidden(credentials, self._provider_credentials(cfg, provider), secrets))
        if validate:
            valid = await self._validated(self.runtime.provider_credentials_validate(provider, merged))
        else:
            valid = self.runtime.get_provider(provider).validate_credential_form(merged)
        valid.update(limits)
        encrypted = encrypt_credentials(cfg.key, valid, secrets)
        await self.store.upsert_provider(tenant_id, provider, provider_type=ProviderType.CUSTOM, encrypted_config=encrypted, is_valid=True)
        self.invalidate(tenant_id)
        return obfuscate_credentials(valid, secrets)

    async def get_provider_credentials(self, tenant_id: str, provider: str, *, obfuscated: bool = True) -> dict[str, Any] | None:
        cfg = await self._config(tenant_id)
        creds = self._provider_credentials(cfg, provider)
        if creds is None:
            return None
        return obfuscate_credentials(creds, self._secrets(provider, model_level=False)) if obfuscated else dict(creds)

    async def delete_provider_credentials(self, tenant_id: str, provider: str) -> bool:
        await self._config(tenant_id)
        ok = await self.store.delete_provider(tenant_id, provider, provider_type=ProviderType.CUSTOM)
        self.invalidate(tenant_id)
        return ok

    async def save_model_credentials(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, credentials: Mapping[str, Any], *, validate: bool = True) -> dict[str, Any]:
        """Per-model (customizable-model) credentials: validated, secret fields encrypted."""
        credentials = self._mapping(credentials)
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        if not isinstance(model, str) or not model:
            raise ModelNotFoundError("model name is required")
        secrets = self._secrets(provider, model_level=True)
        merged, limits = check_limit_fields(merge_hidden(credentials, self._model_credentials(cfg, provider, kind, model), secrets))
        if validate:
            valid = await self._validated(self.runtime.model_credentials_validate(provider, kind, model, merged))
        else:
            valid = dict(merged)
        valid.update(limits)
        encrypted = encrypt_credentials(cfg.key, valid, secrets)
        await self.store.upsert_provider_model(tenant_id, provider, model, kind, encrypted_config=encrypted, is_valid=True)
        self.invalidate(tenant_id)
        return obfuscate_credentials(valid, secrets)

    async def get_model_credentials(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, *, obfuscated: bool = True) -> dict[str, Any] | None:
        cfg = await self._config(tenant_id)
        creds = self._model_credentials(cfg, provider, model_type_of(model_type), model)
        if creds is None:
            return None
        return obfuscate_credentials(creds, self._secrets(provider, model_level=True)) if obfuscated else dict(creds)

    async def delete_model_credentials(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> bool:
        await self._config(tenant_id)
        ok = await self.store.delete_provider_model(tenant_id, provider, model, model_type_of(model_type))
        self.invalidate(tenant_id)
        return ok

