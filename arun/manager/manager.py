"""``ModelManager``: tenants, provider credentials, default models, quotas and balancing.

::

    async with ModelManager.open() as manager:                 # ~/.arun/arun.db + memory://
        tenant = await manager.create_tenant("acme")
        await manager.save_provider_credentials(tenant.id, "openai", {"openai_api_key": "sk-..."})
        llm = await manager.get_model_instance(tenant.id, None, "llm", None)   # the default LLM
        result = await llm.invoke_llm([UserPromptMessage(content="hi")], stream=False)

    ModelManager.open("postgresql://u@db/arun", "redis://cache:6379/0")    # shared setup

Caching: one :class:`TenantConfig` per tenant holds the tenant's rows, its private key
and the credentials it decrypted — in process memory only — plus the model
instances built from them.  It is loaded with a few store queries on first use and
dropped on every change made through this manager (and after ``config_ttl``
seconds, so changes made by other processes are picked up).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from arun.entities.model import ModelType
from arun.entities.provider import ConfigurateMethod, ProviderEntity
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeError,
    ModelNotFoundError,
    ModelTypeNotSupportedError,
    SchemaError,
)
from arun.manager.balancer import LBConfig, LoadBalancer
from arun.manager.crypto import (
    TenantKey,
    decrypt_credentials,
    encrypt_credentials,
    load_master_key,
    merge_hidden,
    obfuscate_credentials,
)
from arun.manager.errors import (
    LBConfigNotFoundError,
    ModelDisabledError,
    NoPermissionError,
    ProviderTokenNotInitError,
    QuotaExceededError,
    TenantNotFoundError,
)
from arun.manager.instance import QUOTA_UNITS, Credentials, ModelInstance, PolicyBinding, QuotaPlan
from arun.manager.policy import FallbackSpec, PolicyConfig, check_limit_fields, dump_fallbacks, load_fallbacks, split_limits
from arun.manager.store import (
    CredentialStore,
    LoadBalancingConfig,
    ProviderModelRecord,
    ProviderModelSetting,
    ProviderRecord,
    ProviderType,
    Tenant,
    TenantDefaultModel,
    choose_quota,
    master_key_path,
    open_store,
)
from arun.state import StateStore, open_state
from arun.state.base import ConfigState

__all__ = [
    "ModelManager",
    "ProviderStatus",
    "ModelStatus",
    "QuotaInfo",
    "LBConfigView",
    "TenantConfig",
    "INHERIT",
    "default_store_url",
]

log = logging.getLogger(__name__)

INHERIT = "__inherit__"
_QUOTA_ORDER = ("paid", "free", "trial")
_META_UNIT = "__quota_unit"
_META_RESTRICT = "__restrict_models"


def default_store_url() -> str:
    """``$ARUN_STORE_URL``, else the embedded SQLite file ``~/.arun/arun.db``."""
    env = os.environ.get("ARUN_STORE_URL")
    if env:
        return env
    return f"sqlite:///{Path.home() / '.arun' / 'arun.db'}"


def _kind(model_type: ModelType | str) -> ModelType:
    if isinstance(model_type, ModelType):
        return model_type
    try:
        return ModelType.value_of(model_type)
    except ValueError:
        raise ModelTypeNotSupportedError(f"Unknown model type {model_type!r}") from None


# ---------------------------------------------------------------------------- views


@dataclass(frozen=True)
class QuotaInfo:
    quota_type: str
    unit: str
    limit: int | None
    used: int
    valid: bool


@dataclass(frozen=True)
class ProviderStatus:
    provider: str
    label: str
    supported_model_types: list[str]
    configurate_methods: list[str]
    #: ``active`` | ``no-configure`` | ``quota-exceeded``
    status: str
    using_provider_type: str
    custom_configured: bool
    custom_models: list[tuple[str, str]] = field(default_factory=list)
    quotas: list[QuotaInfo] = field(default_factory=list)


@dataclass(frozen=True)
class ModelStatus:
    provider: str
    model: str
    model_type: str
    #: ``active`` | ``no-configure`` | ``quota-exceeded`` | ``no-permission`` | ``disabled``
    status: str
    fetch_from: str
    load_balancing_enabled: bool = False


@dataclass(frozen=True)
class LBConfigView:
    id: str
    name: str
    enabled: bool
    credentials: dict[str, Any] | None  # obfuscated
    in_cooldown: bool = False
    ttl: float = 0.0
    until: float | None = None
    reason: str | None = None


# ---------------------------------------------------------------------------- tenant cache


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


# ---------------------------------------------------------------------------- the manager


class ModelManager:
    """Tenant-scoped model access and provider management over a store, a state and a runtime.

    ``store`` / ``state`` are objects or URLs (opened on :meth:`start`); what the
    manager opens or creates (including the runtime when ``runtime`` is None) it
    closes in :meth:`aclose`.
    """

    def __init__(
        self,
        store: CredentialStore | str | None = None,
        state: StateStore | str | None = None,
        runtime: Any = None,
        *,
        master_key: bytes | None = None,
        key_file: str | os.PathLike[str] | None = None,
        load_balancing_enabled: bool = True,
        lb_wait_deadline: float | None = None,
        config_ttl: float | None = 60.0,
        quota_units: Mapping[str, str] | None = None,
        policy: PolicyConfig | bool | None = None,
    ) -> None:
        self._store_arg = store if store is not None else default_store_url()
        self._state_arg = state if state is not None else os.environ.get("ARUN_STATE_URL", "memory://")
        self._store: CredentialStore | None = None if store is None or isinstance(store, str) else store
        self._state: StateStore | None = None if isinstance(self._state_arg, str) else self._state_arg
        self._runtime = runtime
        self._owns: list[Any] = []
        self._master = master_key
        self._key_file = key_file
        self.load_balancing_enabled = load_balancing_enabled
        self.lb_wait_deadline = lb_wait_deadline
        self.config_ttl = config_ttl
        self.quota_units = {**QUOTA_UNITS, **(quota_units or {})}
        self._cache: dict[str, TenantConfig] = {}
        self._gen: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._model_names: dict[tuple[str, ModelType], list[str]] = {}
        self._started = False
        self._start_lock = asyncio.Lock()
        #: The policy stack (``PolicyConfig``); None or ``enabled=False`` keeps Dify's balancer.
        self.policy: PolicyConfig | None = PolicyConfig() if policy is True else (policy or None)
        self._limiter: Any = None
        self._routers: dict[str, Any] = {}
        self._policy_targets: dict[tuple[str, str, ModelType, str], Any] = {}
        self._lb_limits: dict[tuple[str, str, ModelType, str], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"ModelManager(store={self._store!r}, tenants_cached={len(self._cache)})"

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls, store_url: str | None = None, state_url: str | None = None, **kwargs: Any) -> _Opener:
        """``await ModelManager.open(...)`` or ``async with ModelManager.open(...) as m``."""
        return _Opener(cls(store_url, state_url, **kwargs))

    async def start(self) -> ModelManager:
        async with self._start_lock:
            if self._started:
                return self
            if self._store is None:
                url = str(self._store_arg)
                if url.startswith("sqlite://") and master_key_path(url) is not None:
                    Path(str(master_key_path(url))).parent.mkdir(parents=True, exist_ok=True)
                self._store = await open_store(url)
                self._owns.append(self._store)
                if self._master is None and self._key_file is None:
                    self._key_file = master_key_path(url)
            if self._state is None:
                self._state = open_state(str(self._state_arg))
                self._owns.append(self._state)
            if self._runtime is None:
                from arun.runtime.model_runtime import ModelRuntime

                self._runtime = ModelRuntime()
                await self._runtime.start()
                self._owns.append(self._runtime)
            if self.policy_enabled and self._limiter is None:
                self._limiter = self._open_limiter()
            self._started = True
        return self

    async def aclose(self) -> None:
        owned, self._owns = self._owns, []
        self._cache.clear()
        self._routers.clear()
        self._policy_targets.clear()
        self._limiter = None
        for obj in reversed(owned):
            try:
                if hasattr(obj, "aclose"):
                    await obj.aclose()
                else:
                    await obj.close()
            except Exception:  # noqa: BLE001 - close everything else regardless
                log.warning("error while closing %s", type(obj).__name__, exc_info=True)
        self._started = False

    async def __aenter__(self) -> ModelManager:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    @property
    def store(self) -> CredentialStore:
        if self._store is None:
            raise RuntimeError("ModelManager is not started (await manager.start() or use `async with`)")
        return self._store

    @property
    def state(self) -> StateStore:
        if self._state is None:
            raise RuntimeError("ModelManager is not started")
        return self._state

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            raise RuntimeError("ModelManager is not started")
        return self._runtime

    @property
    def policy_enabled(self) -> bool:
        return self.policy is not None and self.policy.enabled

    @property
    def limiter(self) -> Any:
        """The policy layer's per-credential limiter (None without the policy)."""
        return self._limiter

    def _open_limiter(self) -> Any:
        from arun.policy.limits import MemoryLimiter, open_limiter

        assert self.policy is not None
        lim = self.policy.limiter
        if lim is not None and not isinstance(lim, str):
            return lim  # the caller's: not closed here
        if isinstance(lim, str):
            lim = open_limiter(lim)
        else:
            client = getattr(self._state, "client", None)
            if client is not None and hasattr(client, "connection_pool"):
                # the state's Redis: share its pool (closing the limiter leaves the pool to the state)
                import redis.asyncio as aioredis

                from arun.policy.limits_redis import RedisLimiter

                prefix = f"{getattr(self._state, 'prefix', '')}limits:"
                lim = RedisLimiter(aioredis.Redis(connection_pool=client.connection_pool), prefix=prefix)
            else:
                lim = MemoryLimiter()
        self._owns.append(lim)
        return lim

    async def _ready(self) -> None:
        if not self._started:
            await self.start()

    def _master_key(self) -> bytes:
        if self._master is None:
            self._master = load_master_key(self._key_file)
        return self._master

    # -- cache -------------------------------------------------------------------------

    def invalidate(self, tenant_id: str | None = None) -> None:
        """Drop the cached configuration of one tenant (or all)."""
        ids = [tenant_id] if tenant_id is not None else list(self._cache)
        for tid in ids:
            self._cache.pop(tid, None)
            self._gen[tid] = self._gen.get(tid, 0) + 1

    async def _config(self, tenant_id: str) -> TenantConfig:
        await self._ready()
        cfg = self._cache.get(tenant_id)
        if cfg is not None and (self.config_ttl is None or time.monotonic() - cfg.loaded_at < self.config_ttl):
            return cfg
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cfg = self._cache.get(tenant_id)
            if cfg is not None and (self.config_ttl is None or time.monotonic() - cfg.loaded_at < self.config_ttl):
                return cfg
            gen = self._gen.get(tenant_id, 0)
            cfg = await self._load(tenant_id)
            if self._gen.get(tenant_id, 0) == gen:  # no invalidation while loading
                self._cache[tenant_id] = cfg
            return cfg

    async def _load(self, tenant_id: str) -> TenantConfig:
        store = self.store
        tenant = await store.get_tenant(tenant_id) if isinstance(tenant_id, str) and tenant_id else None
        if tenant is None:
            raise TenantNotFoundError(f"Tenant {tenant_id!r} not found")
        old = self._cache.get(tenant_id)
        if old is not None and old.key.encrypted_private_key == tenant.encrypted_private_key:
            key = old.key
        else:
            key = TenantKey.load(tenant.id, tenant.encrypt_public_key, tenant.encrypted_private_key, self._master_key())
        providers, models, settings, defaults = await asyncio.gather(
            store.get_providers(tenant_id), store.get_provider_models(tenant_id),
            store.get_model_settings(tenant_id), store.get_default_models(tenant_id),
        )  # fmt: skip
        return TenantConfig(tenant, key, providers, models, settings, defaults, time.monotonic())

    async def _lb_rows(self, cfg: TenantConfig, provider: str) -> list[LoadBalancingConfig]:
        rows = cfg.lb_configs.get(provider)
        if rows is None:
            rows = await self.store.get_lb_configs(cfg.tenant.id, provider)
            cfg.lb_configs[provider] = rows
        return rows

    # -- schema helpers -----------------------------------------------------------------

    def _schema(self, provider: str) -> ProviderEntity:
        return self.runtime.get_provider_schema(provider)  # ProviderNotFoundError for unknown names

    def _secrets(self, provider: str, *, model_level: bool) -> set[str]:
        return self._schema(provider).secret_variables(model_level=model_level)

    def _lb_secrets(self, provider: str) -> set[str]:
        schema = self._schema(provider)
        predefined = ConfigurateMethod.PREDEFINED_MODEL in schema.configurate_methods
        return schema.secret_variables(model_level=not (predefined and schema.provider_credential_schema))

    async def _predefined(self, provider: str, kind: ModelType) -> list[str]:
        names = self._model_names.get((provider, kind))
        if names is None:
            schema = self._schema(provider)
            if kind not in schema.supported_model_types:
                raise ModelTypeNotSupportedError(f"Provider {provider!r} does not support model type {kind.value!r}")
            names = [m.model for m in await self.runtime.get_provider(provider).models(kind)]
            self._model_names[(provider, kind)] = names
        return names

    def _decrypt(self, cfg: TenantConfig, cache_key: tuple[str, str], config: Mapping[str, Any], secrets: set[str]) -> Credentials:
        plain = cfg.plain.get(cache_key)
        if plain is None:
            values = decrypt_credentials(cfg.key, {k: v for k, v in config.items() if not k.startswith("__")}, secrets)
            plain = Credentials(values)
            cfg.plain[cache_key] = plain
        return plain

    def _provider_credentials(self, cfg: TenantConfig, provider: str) -> Credentials | None:
        rec = cfg.custom(provider)
        if rec is None:
            return None
        return self._decrypt(cfg, ("provider", rec.id), rec.config(), self._secrets(provider, model_level=False))

    def _model_credentials(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> Credentials | None:
        rec = cfg.models.get((provider, kind, model))
        if rec is None or not rec.encrypted_config:
            return None
        return self._decrypt(cfg, ("model", rec.id), rec.config(), self._secrets(provider, model_level=True))

    # -- tenants --------------------------------------------------------------------------

    async def create_tenant(self, name: str, *, tenant_id: str | None = None) -> Tenant:
        """Create a tenant with a fresh RSA-2048 key pair (private half sealed under the master key)."""
        await self._ready()
        tid = tenant_id or str(uuid.uuid4())
        key = await asyncio.to_thread(TenantKey.generate, tid, self._master_key())
        tenant = await self.store.create_tenant(name, encrypt_public_key=key.public_pem, encrypted_private_key=str(key.encrypted_private_key), tenant_id=tid)
        self.invalidate(tid)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant:
        return (await self._config(tenant_id)).tenant

    async def list_tenants(self) -> list[Tenant]:
        await self._ready()
        return await self.store.list_tenants()

    async def delete_tenant(self, tenant_id: str) -> bool:
        await self._ready()
        ok = await self.store.delete_tenant(tenant_id)
        self.invalidate(tenant_id)
        return ok

    # -- provider credentials --------------------------------------------------------------

    async def _validated(self, coro: Any) -> dict[str, Any]:
        try:
            return dict(await coro)
        except CredentialsValidateFailedError:
            raise
        except InvokeError as exc:  # a transport failure during validation is still a validation failure
            raise CredentialsValidateFailedError(str(exc)) from None

    async def save_provider_credentials(self, tenant_id: str, provider: str, credentials: Mapping[str, Any], *, validate: bool = True) -> dict[str, Any]:
        """Validate, then store (secret fields encrypted); ``[__HIDDEN__]`` keeps a stored secret.

        Returns the stored credentials, obfuscated.  Nothing is written when validation fails.
        """
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
        cfg = await self._config(tenant_id)
        kind = _kind(model_type)
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
        creds = self._model_credentials(cfg, provider, _kind(model_type), model)
        if creds is None:
            return None
        return obfuscate_credentials(creds, self._secrets(provider, model_level=True)) if obfuscated else dict(creds)

    async def delete_model_credentials(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str) -> bool:
        await self._config(tenant_id)
        ok = await self.store.delete_provider_model(tenant_id, provider, model, _kind(model_type))
        self.invalidate(tenant_id)
        return ok

    # -- system quota ------------------------------------------------------------------------

    async def set_system_quota(
        self,
        tenant_id: str,
        provider: str,
        *,
        quota_limit: int,
        quota_type: str = "trial",
        quota_unit: str | None = None,
        credentials: Mapping[str, Any] | None = None,
        quota_used: int | None = None,
        restrict_models: list[str] | None = None,
    ) -> QuotaInfo:
        """Configure a hosted (SYSTEM) provider row: hosting credentials plus a quota (−1 = unlimited).

        The credentials are stored encrypted like custom ones (not validated: they
        are the operator's); ``quota_unit`` is ``times`` | ``tokens`` | ``credits``.
        """
        cfg = await self._config(tenant_id)
        self._schema(provider)
        if quota_type not in _QUOTA_ORDER:
            raise ValueError(f"quota_type must be one of {_QUOTA_ORDER}")
        unit = quota_unit or self.quota_units.get(provider, "times")
        if unit not in ("times", "tokens", "credits"):
            raise ValueError("quota_unit must be times, tokens or credits")
        config: dict[str, Any] = encrypt_credentials(cfg.key, dict(credentials or {}), self._secrets(provider, model_level=False))
        config[_META_UNIT] = unit
        if restrict_models is not None:
            config[_META_RESTRICT] = list(restrict_models)
        rec = await self.store.upsert_provider(
            tenant_id, provider, provider_type=ProviderType.SYSTEM, encrypted_config=config, is_valid=True,
            quota_type=quota_type, quota_limit=quota_limit, quota_used=quota_used,
        )  # fmt: skip
        self.invalidate(tenant_id)
        return QuotaInfo(rec.quota_type, unit, rec.quota_limit, rec.quota_used, rec.quota_valid)

    async def get_quotas(self, tenant_id: str, provider: str) -> list[QuotaInfo]:
        """Fresh from the store (quota usage changes with every call)."""
        await self._config(tenant_id)
        rows = await self.store.get_providers(tenant_id, provider, provider_type=ProviderType.SYSTEM)
        return [QuotaInfo(r.quota_type, r.config().get(_META_UNIT, self.quota_units.get(provider, "times")), r.quota_limit, r.quota_used, r.quota_valid) for r in rows]

    # -- listings -----------------------------------------------------------------------------

    async def list_providers(self, tenant_id: str) -> list[ProviderStatus]:
        """Every provider of the runtime with the tenant's status (quota read fresh from the store)."""
        self.invalidate(tenant_id)
        cfg = await self._config(tenant_id)
        out = []
        for name in self.runtime.provider_names():
            try:
                schema = self._schema(name)
            except SchemaError:  # a broken provider folder must not hide the others
                log.warning("provider %s does not load; skipped in listing", name)
                continue
            using = cfg.using_provider_type(name)
            quotas = [QuotaInfo(r.quota_type, r.config().get(_META_UNIT, self.quota_units.get(name, "times")), r.quota_limit, r.quota_used, r.quota_valid) for r in cfg.system(name)]
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
        kinds = None if model_type is None else [_kind(model_type)]
        names = [provider] if provider else self.runtime.provider_names()
        out: list[ModelStatus] = []
        for name in names:
            schema = self._schema(name)
            for kind in kinds or schema.supported_model_types:
                if kind not in schema.supported_model_types:
                    continue
                seen = set()
                for model in await self._predefined(name, kind):
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
        kind = _kind(model_type)
        await self._require_model(cfg, provider, kind, model)
        rec = await self.store.set_default_model(tenant_id, kind, provider, model)
        self.invalidate(tenant_id)
        return rec

    async def get_default_model(self, tenant_id: str, model_type: ModelType | str) -> TenantDefaultModel | None:
        """The stored default; when unset, the first active model of the type (``gpt-4`` preferred), persisted."""
        cfg = await self._config(tenant_id)
        kind = _kind(model_type)
        found = cfg.defaults.get(kind)
        if found is not None:
            return found
        candidates: list[tuple[str, str]] = []
        for name in self.runtime.provider_names():
            try:
                schema = self._schema(name)
            except SchemaError:
                continue
            if kind not in schema.supported_model_types:
                continue
            models = list(await self._predefined(name, kind)) + [m.model_name for m in cfg.custom_models(name) if m.model_type is kind]
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

    async def _require_model(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> None:
        if not isinstance(model, str) or not model:
            raise ModelNotFoundError("model name is required")
        if model in await self._predefined(provider, kind):
            return
        if (provider, kind, model) in cfg.models:
            return
        raise ModelNotFoundError(f"Model {model} of type {kind.value} not found for provider {provider}")

    async def _setting(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, **fields: bool) -> ProviderModelSetting:
        cfg = await self._config(tenant_id)
        kind = _kind(model_type)
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

    # -- load-balancing configs ------------------------------------------------------------------------

    async def add_lb_config(self, tenant_id: str, provider: str, model_type: ModelType | str, model: str, name: str,
                            credentials: Mapping[str, Any] | None = None, *, enabled: bool = True, validate: bool = True) -> LBConfigView:  # fmt: skip
        """Add a credential config to a model; ``name="__inherit__"`` (no credentials) stands for the model's own."""
        cfg = await self._config(tenant_id)
        kind = _kind(model_type)
        await self._require_model(cfg, provider, kind, model)
        secrets = self._lb_secrets(provider)
        encrypted = None
        if name != INHERIT:
            if not credentials:
                raise CredentialsValidateFailedError("credentials are required for a load-balancing config")
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
        kind = _kind(model_type)
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
        from arun.policy.router import Fallback, Route

        from arun.manager.policy import trigger_classes

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


def _without_limits(creds: Credentials | None) -> Credentials | None:
    """The credentials a provider sees: the policy's limit keys removed."""
    if creds is None:
        return None
    clean, spec = split_limits(creds)
    return creds if len(clean) == len(creds) else Credentials(clean)


class _Opener:
    """Awaitable and async context manager around a manager being started."""

    def __init__(self, manager: ModelManager) -> None:
        self._m = manager

    def __await__(self) -> Any:
        return self._m.start().__await__()

    async def __aenter__(self) -> ModelManager:
        return await self._m.start()

    async def __aexit__(self, *exc: object) -> None:
        await self._m.aclose()
