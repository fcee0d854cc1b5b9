"""The routes of a tenant's models: one router per tenant, one route per model, fallback chains.

Every model type of every instance goes through the tenant's
:class:`~arun.policy.router.PolicyRouter`.  With the policy layer enabled
(``ModelManager(policy=PolicyConfig(...))``) it retries, limits, fails over and balances
with the configured strategy; without it, it is Dify's balancer
(:meth:`PolicyRouter.dify`: round robin with Dify's keys, no retries, rotation on rate
limits, auth and connection errors, no cooldown for a lone credential).

A model's target is built from the tenant's resolved credential configs: the enabled
load-balancing configs when Dify's rule says balancing is active (``__inherit__`` resolved to
the model's current credentials), else the single current credential.  Limits ``rpm`` /
``tpm`` / ``max_in_flight`` are read from each config's credentials (kept through form
validation, stripped before any provider sees them) and tightened by the model YAML's
``model_properties``.  Fallback chains (policy only) are stored per model in
``provider_model_settings.fallbacks`` and resolved through the same tenant configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arun.entities.model import ModelType
from arun.errors import ParameterValidationError
from arun.manager.core import ManagerCore, log
from arun.manager.crypto import Credentials
from arun.manager.instance import PolicyBinding
from arun.manager.policy import FallbackSpec, PolicyConfig, dump_fallbacks, load_fallbacks, split_limits, trigger_classes
from arun.manager.tenant_config import TenantConfig
from arun.model_types.kinds import model_type_of
from arun.policy.router import PolicyRouter
from arun.policy.routes import CredentialConfig, Fallback, Route, Target

__all__ = ["RoutingMixin", "ResolvedConfig"]


@dataclass(frozen=True)
class ResolvedConfig:
    """One credential config of a model as the manager resolved it (credentials as stored, limits included)."""

    id: str
    name: str
    credentials: Mapping[str, Any]


class RoutingMixin(ManagerCore):
    """Routers, targets and fallback chains."""

    async def _resolve_configs(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> tuple[list[ResolvedConfig], bool]:
        raise NotImplementedError  # ResolutionMixin

    def _router(self, tenant_id: str) -> PolicyRouter:
        router = self._routers.get(tenant_id)
        if router is None:
            p = self.policy
            if p is not None and p.enabled:
                router = PolicyRouter(
                    self.runtime, state=self.state, limiter=self._limiter, retry=p.retry, cooldowns=p.cooldowns,
                    tenant_id=tenant_id, wait_deadline=p.wait_deadline, limit_wait=p.limit_wait,
                    first_chunk_timeout=p.first_chunk_timeout, on_trace=p.on_trace,
                )  # fmt: skip
            else:
                router = PolicyRouter.dify(self.runtime, state=self.state, tenant_id=tenant_id, wait_deadline=self.lb_wait_deadline)
            self._routers[tenant_id] = router
        return router

    async def _model_limits(self, provider: str, kind: ModelType, model: str, credentials: Mapping[str, Any]) -> Any:
        """``rpm`` / ``tpm`` / ``max_in_flight`` from the model YAML's ``model_properties``, if it declares any."""
        if not self.policy_enabled:
            return None
        try:
            schema = await self.runtime.get_model_instance(provider, kind).get_model_schema(model, credentials)
        except Exception:  # noqa: BLE001 - no schema, no model-level limits
            return None
        props = {getattr(k, "value", k): v for k, v in (getattr(schema, "model_properties", None) or {}).items()}
        from arun.policy.limits import LimitSpec

        try:
            spec = LimitSpec.from_mapping(props)
        except ValueError:
            log.warning("ignoring invalid limits in the model_properties of %s/%s", provider, model)
            return None
        return None if spec.unlimited else spec

    async def _target(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str, configs: list[ResolvedConfig]) -> Target:
        """The policy :class:`Target` of a model: its resolved configs (limits split off the credentials)."""
        key = (cfg.tenant.id, provider, kind, model)
        model_spec = await self._model_limits(provider, kind, model, configs[0].credentials)
        out = []
        for c in configs:
            clean, spec = split_limits(c.credentials)
            limits = (spec.tighten(model_spec) if spec is not None else model_spec) if self.policy_enabled else None
            out.append(CredentialConfig(c.id, Credentials(clean), limits=limits, name=c.name))
        policy = self.policy
        strategy = policy.strategy_for(provider, model) if policy is not None and policy.enabled else "round_robin"
        default_max = policy.default_max_tokens if policy is not None else 256
        target = Target(provider, model, tuple(out), strategy=strategy, default_max_tokens=default_max)
        old = self._policy_targets.get(key)
        if old is not None and old == target:
            target = old  # same configs: keep the router's per-config stats (in flight, EWMA)
        self._policy_targets[key] = target
        return target

    async def _binding(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str, configs: list[ResolvedConfig]) -> PolicyBinding:
        target = await self._target(cfg, provider, kind, model, configs)
        names = {c.id: c.name for c in configs}
        chain: list[Fallback] = []
        if self.policy_enabled:
            for fb in self._fallback_chain(cfg, provider, kind, model):
                try:
                    other, _ = await self._resolve_configs(cfg, fb.provider, kind, fb.model)
                    fb_target = await self._target(cfg, fb.provider, kind, fb.model, other)
                except Exception as exc:  # noqa: BLE001 - an unusable fallback is skipped, not fatal
                    log.warning("fallback %s/%s of %s/%s skipped: %s", fb.provider, fb.model, provider, model, type(exc).__name__)
                    continue
                names.update({c.id: c.name for c in other})
                chain.append(Fallback(fb_target, trigger_classes(fb.triggers)))
        max_fallbacks = self.policy.max_fallbacks if self.policy is not None else None
        route = Route(target, tuple(chain), max_fallbacks=max_fallbacks)
        return PolicyBinding(self._router(cfg.tenant.id), route, names)

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
        kind = model_type_of(model_type)
        await self._require_model(cfg, provider, kind, model)
        if isinstance(chain, (str, bytes)) or not isinstance(chain, Sequence):
            raise ParameterValidationError("a fallback chain is a list of (provider, model[, triggers])", parameter="chain")
        try:
            specs = [FallbackSpec.of(item) for item in chain]
        except ValueError as exc:
            raise ParameterValidationError(str(exc), parameter="chain") from None
        for fb in specs:
            self._schema(fb.provider)
            await self._require_model(cfg, fb.provider, kind, fb.model)
            if (fb.provider, fb.model) == (provider, model):
                raise ParameterValidationError("a model cannot fall back to itself", parameter="chain")
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
        return self._fallback_chain(cfg, provider, model_type_of(model_type), model)
