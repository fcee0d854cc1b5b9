"""``TenantConfig``: one tenant's rows, key and decrypted credentials, cached in process memory."""

from __future__ import annotations

from arun.entities.model import ModelType
from arun.manager.crypto import (
    Credentials,
    TenantKey,
)
from arun.manager.instance import ModelInstance
from arun.manager.store import (
    LoadBalancingConfig,
    ProviderModelRecord,
    ProviderModelSetting,
    ProviderRecord,
    ProviderType,
    Tenant,
    TenantDefaultModel,
)


class TenantConfig:
    """Everything the manager knows about one tenant, loaded once (see module docstring)."""

    def __init__(self, tenant: Tenant, key: TenantKey, providers: list[ProviderRecord], models: list[ProviderModelRecord],
                 settings: list[ProviderModelSetting], defaults: list[TenantDefaultModel], loaded_at: float) -> None:  # fmt: skip
        self.tenant = tenant
        self.key = key
        self.providers: dict[str, list[ProviderRecord]] = {}
        for p in providers:
            self.providers.setdefault(p.provider_name, []).append(p)
        self.models = {(m.provider_name, m.model_type, m.model_name): m for m in models}
        self.settings = {(s.provider_name, s.model_type, s.model_name): s for s in settings}
        self.defaults = {d.model_type: d for d in defaults}
        self.loaded_at = loaded_at
        self.lb_configs: dict[str, list[LoadBalancingConfig]] = {}  # per provider, lazily
        self.plain: dict[tuple[str, str], Credentials] = {}  # decrypted, in memory only
        self.instances: dict[tuple[str, ModelType, str], ModelInstance] = {}

    def __repr__(self) -> str:
        return f"TenantConfig(tenant={self.tenant.id!r}, providers={sorted(self.providers)!r})"

    def custom(self, provider: str) -> ProviderRecord | None:
        for r in self.providers.get(provider, []):
            if r.provider_type is ProviderType.CUSTOM and r.encrypted_config:
                return r
        return None

    def system(self, provider: str) -> list[ProviderRecord]:
        return [r for r in self.providers.get(provider, []) if r.provider_type is ProviderType.SYSTEM]

    def custom_models(self, provider: str) -> list[ProviderModelRecord]:
        return [m for (p, _, _), m in self.models.items() if p == provider and m.encrypted_config]

    def using_provider_type(self, provider: str) -> ProviderType:
        """CUSTOM with custom credentials or models; else SYSTEM when a hosted quota row exists."""
        if self.custom(provider) is not None or self.custom_models(provider):
            return ProviderType.CUSTOM
        if self.system(provider):
            return ProviderType.SYSTEM
        return ProviderType.CUSTOM


