"""The policy stack under the manager: routers, targets, fallback chains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from arun.entities.model import ModelType
from arun.manager.core import ManagerCore, _kind, log
from arun.manager.crypto import Credentials
from arun.manager.instance import ModelInstance, PolicyBinding
from arun.manager.policy import (
    FallbackSpec,
    PolicyConfig,
    dump_fallbacks,
    load_fallbacks,
    split_limits,
)
from arun.manager.store import (
    ProviderType,
)
from arun.manager.tenant_config import TenantConfig


class RoutingMixin(ManagerCore):
    """The policy stack under the manager: routers, targets, fallback chains."""

    async def _build_instance(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str, *, policy: bool = True) -> ModelInstance:
        raise NotImplementedError  # ResolutionMixin

    # -- policy ----------------------------------------------------------------------------------------

    def _router(self, tenant_id: str) -> Any:
        router = self._routers.get(tenant_id)
        if router is None:
            from arun.policy.router import PolicyRouter

            p = self.policy
            assert p is not None
            router = PolicyRouter(
                self.runtime, state=self.state, limiter=self._limiter, retry=p.retry, cooldowns=p.cooldowns,
                tenant_id=tenant_id, wait_deadline=p.wait_deadline, limit_wait=p.limit_wait,
                first_chunk_timeout=p.first_chunk_timeout, on_trace=p.on_trace,
            )  # fmt: skip
            self._routers[tenant_id] = router
        return router

    async def _model_limits(self, inst: ModelInstance) -> Any:
        """``rpm`` / ``tpm`` / ``max_in_flight`` from the model YAML's ``model_properties``, if it declares any."""
        try:
            schema = await inst.model_type_instance.get_model_schema(inst.model, inst.credentials)
        except Exception:  # noqa: BLE001 - no schema, no model-level limits
            return None
        props = {getattr(k, "value", k): v for k, v in (getattr(schema, "model_properties", None) or {}).items()}
        from arun.policy.limits import LimitSpec

        try:
            spec = LimitSpec.from_mapping(props)
        except ValueError:
            log.warning("ignoring invalid limits in the model_properties of %s/%s", inst.provider, inst.model)
            return None
        return None if spec.unlimited else spec

    async def _target(self, cfg: TenantConfig, inst: ModelInstance, raw_current: Mapping[str, Any] | None) -> tuple[Any, dict[str, str]]:
        """The policy :class:`Target` of a built (policy-less) instance: its LB configs or its one credential."""
        from arun.policy.router import CredentialConfig, Target

        assert self.policy is not None
        key = (cfg.tenant.id, inst.provider, inst.model_type, inst.model)
        model_spec = await self._model_limits(inst)
        if inst.load_balancer is not None:
            raw_limits = self._lb_limits.get(key, {})
            entries = [(c.id, c.name, c.credentials, raw_limits.get(c.id)) for c in inst.load_balancer.configs]
        else:
            _, spec = split_limits(raw_current or {})
            entries = [(inst.credential_id, "current", inst.credentials or {}, spec)]
        configs = []
        for cid, _name, creds, spec in entries:
            limits = spec.tighten(model_spec) if spec is not None else model_spec
            configs.append(CredentialConfig(cid, Credentials(creds), limits=limits))
        target = Target(inst.provider, inst.model, tuple(configs), strategy=self.policy.strategy_for(inst.provider, inst.model),
                        default_max_tokens=self.policy.default_max_tokens)  # fmt: skip
        old = self._policy_targets.get(key)
        if old is not None and old == target:
            target = old  # same configs: keep the router's per-config stats (in flight, EWMA)
        self._policy_targets[key] = target
        return target, {cid: name for cid, name, _, _ in entries}

    async def _policy_binding(self, cfg: TenantConfig, inst: ModelInstance) -> PolicyBinding:
        from arun.manager.policy import trigger_classes
        from arun.policy.router import Fallback, Route

        assert self.policy is not None
        raw = self._raw_current(cfg, inst)
        target, names = await self._target(cfg, inst, raw)
        fallbacks = []
        for fb in self._fallback_chain(cfg, inst.provider, inst.model_type, inst.model):
            try:
                other = await self._build_instance(cfg, fb.provider, inst.model_type, fb.model, policy=False)
                fb_target, fb_names = await self._target(cfg, other, self._raw_current(cfg, other))
            except Exception as exc:  # noqa: BLE001 - an unusable fallback is skipped, not fatal
                log.warning("fallback %s/%s of %s/%s skipped: %s", fb.provider, fb.model, inst.provider, inst.model, type(exc).__name__)
                continue
            names.update(fb_names)
            fallbacks.append(Fallback(fb_target, trigger_classes(fb.triggers)))
        route = Route(target, tuple(fallbacks), max_fallbacks=self.policy.max_fallbacks)
        return PolicyBinding(self._router(cfg.tenant.id), route, names)

    def _raw_current(self, cfg: TenantConfig, inst: ModelInstance) -> Mapping[str, Any] | None:
        """The instance's credentials as stored (limit keys included)."""
        if inst.provider_type == ProviderType.SYSTEM.value:
            for r in cfg.system(inst.provider):
                if r.id == inst.credential_id:
                    return cfg.plain.get(("system", r.id))
            return None
        return self._model_credentials(cfg, inst.provider, inst.model_type, inst.model) or self._provider_credentials(cfg, inst.provider)

    def _fallback_chain(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> list[FallbackSpec]:
        setting = cfg.settings.get((provider, kind, model))
        if setting is not None and setting.fallbacks is not None:
            return load_fallbacks(setting.fallbacks)
        return list(self.policy.fallbacks.get((provider, kind.value, model), [])) if self.policy is not None else []

    async def set_fallbacks(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str,
                            chain: Sequence[FallbackSpec | Sequence[Any] | Mapping[str, Any]]) -> list[FallbackSpec]:  # fmt: skip
        """Set a model's ordered fallback chain: ``[(provider, model, triggers), ...]``; empty clears it.

        ``triggers`` are ``Invoke*Error`` classes or their names (default: rate limit
        exhausted, server unavailable).  Every model named must exist; the chain is
        kept in the store (``provider_model_settings.fallbacks``), or in
        :attr:`PolicyConfig.fallbacks` when the store cannot keep it.
        """
        cfg = await self._config(tenant_id)
        kind = _kind(model_type)
        await self._require_model(cfg, provider, kind, model)
        specs = [FallbackSpec.of(item) for item in chain]
        for fb in specs:
            self._schema(fb.provider)
            await self._require_model(cfg, fb.provider, kind, fb.model)
            if (fb.provider, fb.model) == (provider, model):
                raise ValueError("a model cannot fall back to itself")
        try:
            await self.store.set_model_fallbacks(tenant_id, provider, model, kind, dump_fallbacks(specs))
        except NotImplementedError:
            if self.policy is None:
                self.policy = PolicyConfig(enabled=False)
            self.policy.fallbacks[(provider, kind.value, model)] = specs
        self.invalidate(tenant_id)
        return specs

    async def get_fallbacks(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> list[FallbackSpec]:
        cfg = await self._config(tenant_id)
        return self._fallback_chain(cfg, provider, _kind(model_type), model)

