"""Resolve a tenant's model into a ready-to-call ModelInstance."""

from __future__ import annotations

from arun.entities.model import ModelType
from arun.manager.balancer import LBConfig, LoadBalancer
from arun.manager.catalog import CatalogMixin
from arun.manager.core import (
    _META_RESTRICT,
    _META_UNIT,
    _QUOTA_ORDER,
    INHERIT,
    _kind,
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
from arun.manager.policy import split_limits
from arun.manager.quota import QuotaPlan
from arun.manager.routing import RoutingMixin
from arun.manager.store import (
    ProviderType,
    choose_quota,
)
from arun.manager.tenant_config import TenantConfig


class ResolutionMixin(CatalogMixin, RoutingMixin):
    """Resolve a tenant's model into a ready-to-call ModelInstance."""

    # -- model instances ----------------------------------------------------------------------------------

    async def get_model_instance(self, tenant_id: str, provider: str | None, model_type: ModelType | str, model: str | None = None) -> ModelInstance:
        """The tenant's model, ready to call; ``provider`` empty → the tenant's default model of the type."""
        cfg = await self._config(tenant_id)
        kind = _kind(model_type)
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

    async def _build_instance(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str, *, policy: bool = True) -> ModelInstance:
        self._schema(provider)
        await self._require_model(cfg, provider, kind, model)
        model_obj = self.runtime.get_model_instance(provider, kind)
        setting = cfg.settings.get((provider, kind, model))
        if setting is not None and not setting.enabled:
            raise ModelDisabledError(f"Model {model} is disabled.")
        using = cfg.using_provider_type(provider)
        quota: QuotaPlan | None = None
        lb: LoadBalancer | None = None
        source_id = ""
        if using is ProviderType.SYSTEM:
            rows = cfg.system(provider)
            chosen = choose_quota(rows)
            assert chosen is not None
            conf = chosen.config()
            restrict = conf.get(_META_RESTRICT)
            if restrict is not None and model not in restrict:
                raise NoPermissionError(f"Model {model} is not available under the {provider} system quota.")
            creds: Credentials | None = self._decrypt(cfg, ("system", chosen.id), conf, self._secrets(provider, model_level=False))
            source_id = chosen.id
            limited = sorted((r for r in rows if r.quota_limit != -1), key=lambda r: _QUOTA_ORDER.index(r.quota_type) if r.quota_type in _QUOTA_ORDER else 9)
            if limited and chosen.quota_limit != -1:
                if not any(r.quota_valid for r in rows):
                    raise QuotaExceededError(f"Your quota for provider {provider} has been exhausted.")
                unit = conf.get(_META_UNIT, self.quota_units.get(provider, "times"))
                quota = QuotaPlan(self.store, cfg.tenant.id, provider, unit, [r.quota_type for r in limited])
        else:
            creds = self._model_credentials(cfg, provider, kind, model) or self._provider_credentials(cfg, provider)
            if creds is None:
                raise ProviderTokenNotInitError(f"Model {model} credentials is not initialized.")
            rec = cfg.models.get((provider, kind, model))
            custom = cfg.custom(provider)
            source_id = rec.id if rec is not None and rec.encrypted_config else (custom.id if custom is not None else "")
            if self.load_balancing_enabled and setting is not None and setting.load_balancing_enabled:
                lb = await self._balancer(cfg, provider, kind, model, creds)
        creds = _without_limits(creds)
        inst = ModelInstance(
            tenant_id=cfg.tenant.id, provider=provider, model_type=kind, model=model, model_type_instance=model_obj,
            credentials=creds, provider_type=using.value, load_balancer=lb, quota=quota,
        )  # fmt: skip
        inst.credential_id = source_id or f"{provider}:{kind.value}:{model}"
        if policy and self.policy_enabled and kind in (ModelType.LLM, ModelType.TEXT_EMBEDDING):
            inst.policy = await self._policy_binding(cfg, inst)
        return inst


    async def _balancer(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str, current: Credentials) -> LoadBalancer | None:
        rows = [r for r in await self._lb_rows(cfg, provider) if r.model_type is kind and r.model_name == model and r.enabled]
        if len(rows) <= 1:
            return None
        secrets = self._lb_secrets(provider)
        configs = []
        for r in rows:
            if r.name == INHERIT:
                # Dify: replaced by the current credentials when custom provider credentials exist, else removed
                configs.append(LBConfig(r.id, r.name, current))
            else:
                configs.append(LBConfig(r.id, r.name, self._decrypt(cfg, ("lb", r.id), r.config(), secrets)))
        self._lb_limits[(cfg.tenant.id, provider, kind, model)] = {c.id: split_limits(c.credentials)[1] for c in configs}
        configs = [LBConfig(c.id, c.name, _without_limits(Credentials(c.credentials)) or {}, c.enabled) for c in configs]
        lb = LoadBalancer(self.state, configs, tenant_id=cfg.tenant.id, provider=provider, model_type=kind, model=model, wait_deadline=self.lb_wait_deadline)
        return lb if lb.active else None


