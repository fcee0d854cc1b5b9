"""Resolve a tenant's model into a ready-to-call ModelInstance."""

from __future__ import annotations

from arun.entities.model import ModelType
from arun.manager.catalog import CatalogMixin
from arun.manager.core import (
    _META_RESTRICT,
    INHERIT,
    _without_limits,
)
from arun.manager.crypto import Credentials
from arun.manager.errors import (
    ModelDisabledError,
    NoPermissionError,
    ProviderTokenNotInitError,
    QuotaExceededError,
)
from arun.manager.instance import ModelInstance
from arun.manager.quota import QuotaPlan
from arun.manager.routing import ResolvedConfig, RoutingMixin
from arun.manager.store import (
    ProviderType,
    choose_quota,
    quota_rank,
)
from arun.manager.tenant_config import TenantConfig
from arun.model_types.kinds import model_type_of


class ResolutionMixin(CatalogMixin, RoutingMixin):
    """Resolve a tenant's model into a ready-to-call ModelInstance."""

    # -- model instances ----------------------------------------------------------------------------------

    async def get_model_instance(self, tenant_id: str, provider: str | None, model_type: ModelType | str, model: str | None = None) -> ModelInstance:
        """The tenant's model, ready to call; ``provider`` empty → the tenant's default model of the type."""
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        if not provider:
            default = await self.get_default_model(tenant_id, kind)
            if default is None:
                raise ProviderTokenNotInitError(f"Default model not found for {kind.value}")
            provider, model = default.provider_name, default.model_name
            cfg = await self._config(tenant_id)
        assert provider is not None
        key = (provider, kind, model or "")
        inst = cfg.instances.get(key)
        if inst is not None:
            return inst
        inst = await self._build_instance(cfg, provider, kind, model or "")
        cfg.instances[key] = inst
        return inst

    async def get_default_model_instance(self, tenant_id: str, model_type: ModelType | str) -> ModelInstance:
        return await self.get_model_instance(tenant_id, None, model_type, None)

    async def _build_instance(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> ModelInstance:
        self._schema(provider)
        await self._require_model(cfg, provider, kind, model)
        model_obj = self.runtime.get_model_instance(provider, kind)
        setting = cfg.settings.get((provider, kind, model))
        if setting is not None and not setting.enabled:
            raise ModelDisabledError(f"Model {model} is disabled.")
        quota = self._quota_plan(cfg, provider, model)
        configs, balanced = await self._resolve_configs(cfg, provider, kind, model)
        binding = await self._binding(cfg, provider, kind, model, configs)
        current = binding.route.target.configs[0].credentials if not balanced else None
        inst = ModelInstance(
            tenant_id=cfg.tenant.id, provider=provider, model_type=kind, model=model, model_type_instance=model_obj,
            credentials=Credentials(current) if current is not None else _without_limits(self._current(cfg, provider, kind, model)),
            binding=binding, provider_type=cfg.using_provider_type(provider).value, quota=quota, load_balancing=balanced,
        )  # fmt: skip
        inst.credential_id = configs[0].id if not balanced else f"{provider}:{kind.value}:{model}"
        return inst

    def _quota_plan(self, cfg: TenantConfig, provider: str, model: str) -> QuotaPlan | None:
        """The SYSTEM quota a call charges, when the provider runs on one (its limit is not -1)."""
        if cfg.using_provider_type(provider) is not ProviderType.SYSTEM:
            return None
        rows = cfg.system(provider)
        chosen = choose_quota(rows)
        assert chosen is not None
        conf = chosen.config()
        restrict = conf.get(_META_RESTRICT)
        if restrict is not None and model not in restrict:
            raise NoPermissionError(f"Model {model} is not available under the {provider} system quota.")
        limited = sorted((r for r in rows if r.quota_limit != -1), key=lambda r: quota_rank(r.quota_type))
        if not limited or chosen.quota_limit == -1:
            return None
        if not any(r.quota_valid for r in rows):
            raise QuotaExceededError(f"Your quota for provider {provider} has been exhausted.")
        unit = self._quota_unit(provider, conf)
        return QuotaPlan(self.store, cfg.tenant.id, provider, unit, [r.quota_type for r in limited])

    def _current(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> Credentials | None:
        """The model's own credentials as stored (limit keys included): system row, model or provider level."""
        if cfg.using_provider_type(provider) is ProviderType.SYSTEM:
            chosen = choose_quota(cfg.system(provider))
            if chosen is None:
                return None
            return self._decrypt(cfg, ("system", chosen.id), chosen.config(), self._secrets(provider, model_level=False))
        return self._model_credentials(cfg, provider, kind, model) or self._provider_credentials(cfg, provider)

    def _current_id(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> str:
        if cfg.using_provider_type(provider) is ProviderType.SYSTEM:
            chosen = choose_quota(cfg.system(provider))
            return chosen.id if chosen is not None else ""
        rec = cfg.models.get((provider, kind, model))
        custom = cfg.custom(provider)
        return rec.id if rec is not None and rec.encrypted_config else (custom.id if custom is not None else "")

    async def _resolve_configs(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> tuple[list[ResolvedConfig], bool]:
        """The model's credential configs and whether Dify's rule makes it balanced: custom provider,
        load balancing on for the manager and the model, more than one enabled config."""
        current = self._current(cfg, provider, kind, model)
        if current is None:
            raise ProviderTokenNotInitError(f"Model {model} credentials is not initialized.")
        setting = cfg.settings.get((provider, kind, model))
        balanced = (
            cfg.using_provider_type(provider) is ProviderType.CUSTOM
            and self.load_balancing_enabled and setting is not None and setting.load_balancing_enabled
        )  # fmt: skip
        if balanced:
            rows = [r for r in await self._lb_rows(cfg, provider) if r.model_type is kind and r.model_name == model and r.enabled]
            if len(rows) > 1:
                secrets = self._lb_secrets(provider)
                configs = [
                    # Dify: __inherit__ stands for the current credentials
                    ResolvedConfig(r.id, r.name, current if r.name == INHERIT else self._decrypt(cfg, ("lb", r.id), r.config(), secrets))
                    for r in rows
                ]
                return configs, True
        source = self._current_id(cfg, provider, kind, model) or f"{provider}:{kind.value}:{model}"
        return [ResolvedConfig(source, "current", current)], False
