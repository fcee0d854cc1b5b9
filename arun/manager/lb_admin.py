"""Load-balancing credential configs of a model: add, list with cooldown state, update, delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import ModelType
from arun.entities.provider import ConfigurateMethod
from arun.errors import (
    CredentialsValidateFailedError,
)
from arun.manager.core import INHERIT, ManagerCore
from arun.manager.crypto import (
    encrypt_credentials,
    merge_hidden,
    obfuscate_credentials,
)
from arun.manager.errors import (
    LBConfigNotFoundError,
)
from arun.manager.policy import check_limit_fields
from arun.manager.store import (
    LoadBalancingConfig,
)
from arun.manager.tenant_config import TenantConfig
from arun.manager.views import LBConfigView
from arun.model_types.kinds import model_type_of
from arun.state.base import ConfigState


class LBAdminMixin(ManagerCore):
    """Load-balancing credential configs of a model: add, list with cooldown state, update, delete."""

    # -- load-balancing configs ------------------------------------------------------------------------

    async def add_lb_config(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, name: str,
                            credentials: Mapping[str, Any] | None = None, *, enabled: bool = True, validate: bool = True) -> LBConfigView:  # fmt: skip
        """Add a credential config to a model; ``name="__inherit__"`` (no credentials) stands for the model's own."""
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        await self._require_model(cfg, provider, kind, model)
        secrets = self._lb_secrets(provider)
        encrypted = None
        if name != INHERIT:
            if not credentials:
                raise CredentialsValidateFailedError("credentials are required for a load-balancing config")
            credentials = self._mapping(credentials)
            plain, limits = check_limit_fields(credentials)
            valid = await self._validate_lb(provider, kind, model, plain) if validate else dict(plain)
            valid.update(limits)
            encrypted = encrypt_credentials(cfg.key, valid, secrets)
        rec = await self.store.add_lb_config(tenant_id, provider, model, kind, name, encrypted_config=encrypted, enabled=enabled)
        self.invalidate(tenant_id)
        return self._lb_view(cfg, rec, secrets, None)

    async def _validate_lb(self, provider: str, kind: ModelType, model: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
        schema = self._schema(provider)
        if ConfigurateMethod.PREDEFINED_MODEL in schema.configurate_methods and schema.provider_credential_schema and model in await self._predefined(provider, kind):
            return await self._validated(self.runtime.provider_credentials_validate(provider, credentials))
        return await self._validated(self.runtime.model_credentials_validate(provider, kind, model, credentials))

    def _lb_view(self, cfg: TenantConfig, rec: LoadBalancingConfig, secrets: set[str], st: ConfigState | None) -> LBConfigView:
        creds = None
        if rec.encrypted_config:
            creds = obfuscate_credentials(self._decrypt(cfg, ("lb", rec.id), rec.config(), secrets), secrets)
        if st is None:
            return LBConfigView(rec.id, rec.name, rec.enabled, creds)
        return LBConfigView(rec.id, rec.name, rec.enabled, creds, st.in_cooldown, st.ttl, st.until, st.reason)

    async def list_lb_configs(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, *, create_inherit: bool = False) -> list[LBConfigView]:
        """The model's configs with obfuscated credentials and each one's cooldown state.

        ``create_inherit=True`` creates the ``__inherit__`` config first when missing (Dify does on listing).
        """
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        rows = [r for r in await self._lb_rows(cfg, provider) if r.model_type is kind and r.model_name == model]
        if create_inherit and not any(r.name == INHERIT for r in rows):
            await self.add_lb_config(tenant_id, provider, kind, model, INHERIT)
            return await self.list_lb_configs(tenant_id, provider, kind, model)
        rows.sort(key=lambda r: (r.name != INHERIT,))
        from arun.state.base import lb_scope

        states = {s.config_id: s for s in await self.state.lb_state(lb_scope(tenant_id, provider, kind, model), [r.id for r in rows])} if rows else {}
        secrets = self._lb_secrets(provider)
        return [self._lb_view(cfg, r, secrets, states.get(r.id)) for r in rows]

    async def lb_states(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> list[LBConfigView]:
        """Alias of :meth:`list_lb_configs`: in cooldown?, remaining ttl, until (wall clock), why."""
        return await self.list_lb_configs(tenant_id, provider, model_type, model)

    async def _lb_row(self, tenant_id: str, config_id: str) -> LoadBalancingConfig:
        cfg = await self._config(tenant_id)
        for provider in self.runtime.provider_names():
            for r in await self._lb_rows(cfg, provider):
                if r.id == config_id:
                    return r
        raise LBConfigNotFoundError(f"Load balancing config {config_id!r} not found")

    async def update_lb_config(self, tenant_id: str, config_id: str, *, name: str | None = None,
                               credentials: Mapping[str, Any] | None = None, enabled: bool | None = None, validate: bool = True) -> LBConfigView:  # fmt: skip
        row = await self._lb_row(tenant_id, config_id)
        cfg = await self._config(tenant_id)
        secrets = self._lb_secrets(row.provider_name)
        encrypted = None
        if credentials is not None:
            stored = self._decrypt(cfg, ("lb", row.id), row.config(), secrets) if row.encrypted_config else None
            merged, limits = check_limit_fields(merge_hidden(credentials, stored, secrets))
            valid = await self._validate_lb(row.provider_name, row.model_type, row.model_name, merged) if validate else merged
            valid.update(limits)
            encrypted = encrypt_credentials(cfg.key, valid, secrets)
        rec = await self.store.update_lb_config(tenant_id, config_id, name=name, encrypted_config=encrypted, enabled=enabled)
        self.invalidate(tenant_id)
        if rec is None:
            raise LBConfigNotFoundError(f"Load balancing config {config_id!r} not found")
        return self._lb_view(cfg, rec, secrets, None)

    async def enable_lb_config(self, tenant_id: str, config_id: str) -> LBConfigView:
        return await self.update_lb_config(tenant_id, config_id, enabled=True)

    async def disable_lb_config(self, tenant_id: str, config_id: str) -> LBConfigView:
        return await self.update_lb_config(tenant_id, config_id, enabled=False)

    async def delete_lb_config(self, tenant_id: str, config_id: str) -> bool:
        await self._lb_row(tenant_id, config_id)
        ok = await self.store.delete_lb_config(tenant_id, config_id)
        self.invalidate(tenant_id)
        return ok

