"""Listings, default models and per-model settings."""

from __future__ import annotations

from arun.entities.model import ModelType
from arun.manager.core import _META_RESTRICT, ManagerCore, log
from arun.manager.store import (
    ProviderModelSetting,
    ProviderType,
    TenantDefaultModel,
    choose_quota,
)
from arun.manager.tenant_config import TenantConfig
from arun.manager.views import ModelStatus, ProviderStatus
from arun.model_types.kinds import model_type_of


class CatalogMixin(ManagerCore):
    """Listings, default models and per-model settings."""

    # -- listings -----------------------------------------------------------------------------

    async def list_providers(self, tenant_id: str) -> list[ProviderStatus]:
        """Every provider of the runtime with the tenant's status (quota read fresh from the store)."""
        self.invalidate(tenant_id)
        cfg = await self._config(tenant_id)
        out = []
        for name in self.runtime.provider_names():
            try:
                schema = self._schema(name)
                self.runtime.get_provider(name).spec  # noqa: B018 - the arun: block must load too
            except Exception as exc:  # noqa: BLE001 - a broken provider folder is listed as broken, not fatal
                log.warning("provider %s does not load: %s", name, exc)
                out.append(ProviderStatus(provider=name, label=name, supported_model_types=[], configurate_methods=[],
                                          status="broken", using_provider_type="", custom_configured=False,
                                          error=f"{type(exc).__name__}: {exc}"))  # fmt: skip
                continue
            using = cfg.using_provider_type(name)
            quotas = [self._quota_info(name, r) for r in cfg.system(name)]
            if using is ProviderType.CUSTOM:
                status = "active" if cfg.custom(name) is not None or cfg.custom_models(name) else "no-configure"
            else:
                chosen = choose_quota(cfg.system(name))
                status = "active" if chosen is not None and chosen.quota_valid else "quota-exceeded"
            out.append(ProviderStatus(
                provider=name, label=schema.label.en_US if hasattr(schema.label, "en_US") else str(schema.label),
                supported_model_types=[t.value for t in schema.supported_model_types],
                configurate_methods=[m.value for m in schema.configurate_methods], status=status,
                using_provider_type=using.value, custom_configured=cfg.custom(name) is not None,
                custom_models=[(m.model_type.value, m.model_name) for m in cfg.custom_models(name)], quotas=quotas,
            ))  # fmt: skip
        return out

    def _model_status(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> str:
        setting = cfg.settings.get((provider, kind, model))
        if setting is not None and not setting.enabled:
            return "disabled"
        if cfg.using_provider_type(provider) is ProviderType.SYSTEM:
            chosen = choose_quota(cfg.system(provider))
            if chosen is None:
                return "no-configure"
            restrict = chosen.config().get(_META_RESTRICT)
            if restrict is not None and model not in restrict:
                return "no-permission"
            return "active" if chosen.quota_valid else "quota-exceeded"
        if (provider, kind, model) in cfg.models and cfg.models[(provider, kind, model)].encrypted_config:
            return "active"
        return "active" if cfg.custom(provider) is not None else "no-configure"

    async def list_models(self, tenant_id: str, provider: str | None = None, model_type: ModelType | str | None = None) -> list[ModelStatus]:
        cfg = await self._config(tenant_id)
        kinds = None if model_type is None else [model_type_of(model_type)]
        names = [provider] if provider else self.runtime.provider_names()
        out: list[ModelStatus] = []
        for name in names:
            try:
                schema = self._schema(name)
                found = {k: await self._predefined(name, k) for k in (kinds or schema.supported_model_types) if k in schema.supported_model_types}
            except Exception as exc:
                if provider:
                    raise
                log.warning("provider %s does not load; skipped: %s", name, exc)
                continue
            for kind, predefined in found.items():
                seen = set()
                for model in predefined:
                    seen.add(model)
                    out.append(self._model_view(cfg, name, kind, model, "predefined-model"))
                for rec in cfg.custom_models(name):
                    if rec.model_type is kind and rec.model_name not in seen:
                        out.append(self._model_view(cfg, name, kind, rec.model_name, "customizable-model"))
        return out

    def _model_view(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str, fetch_from: str) -> ModelStatus:
        setting = cfg.settings.get((provider, kind, model))
        return ModelStatus(provider, model, kind.value, self._model_status(cfg, provider, kind, model), fetch_from,
                           bool(setting and setting.load_balancing_enabled))  # fmt: skip

    # -- default models -------------------------------------------------------------------------

    async def set_default_model(self, tenant_id: str, model_type: ModelType | str, provider: str, model: str) -> TenantDefaultModel:
        """Persist the default (stored with Dify's origin spelling, e.g. ``text-generation``)."""
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        await self._require_model(cfg, provider, kind, model)
        rec = await self.store.set_default_model(tenant_id, kind, provider, model)
        self.invalidate(tenant_id)
        return rec

    async def get_default_model(self, tenant_id: str, model_type: ModelType | str) -> TenantDefaultModel | None:
        """The stored default; when unset, the first active model of the type (``gpt-4`` preferred), persisted."""
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        found = cfg.defaults.get(kind)
        if found is not None:
            return found
        candidates: list[tuple[str, str]] = []
        for name in self.runtime.provider_names():
            try:
                schema = self._schema(name)
                if kind not in schema.supported_model_types:
                    continue
                predefined = list(await self._predefined(name, kind))
            except Exception as exc:  # noqa: BLE001 - a broken provider never breaks default-model resolution
                log.warning("provider %s does not load; not a default-model candidate: %s", name, exc)
                continue
            models = predefined + [m.model_name for m in cfg.custom_models(name) if m.model_type is kind]
            candidates.extend((name, m) for m in models if self._model_status(cfg, name, kind, m) == "active")
        if not candidates:
            return None
        provider, model = next(((p, m) for p, m in candidates if m == "gpt-4"), candidates[0])
        rec = await self.store.set_default_model(tenant_id, kind, provider, model)
        self.invalidate(tenant_id)
        return rec

    async def get_default_models(self, tenant_id: str) -> list[TenantDefaultModel]:
        return list((await self._config(tenant_id)).defaults.values())

    # -- model settings ------------------------------------------------------------------------------

    async def _setting(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, **fields: bool) -> ProviderModelSetting:
        cfg = await self._config(tenant_id)
        kind = model_type_of(model_type)
        await self._require_model(cfg, provider, kind, model)
        rec = await self.store.upsert_model_setting(tenant_id, provider, model, kind, **fields)
        self.invalidate(tenant_id)
        return rec

    async def enable_model(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> ProviderModelSetting:
        return await self._setting(tenant_id, provider, model_type, model, enabled=True)

    async def disable_model(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> ProviderModelSetting:
        return await self._setting(tenant_id, provider, model_type, model, enabled=False)

    async def enable_load_balancing(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> ProviderModelSetting:
        return await self._setting(tenant_id, provider, model_type, model, load_balancing_enabled=True)

    async def disable_load_balancing(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> ProviderModelSetting:
        return await self._setting(tenant_id, provider, model_type, model, load_balancing_enabled=False)

