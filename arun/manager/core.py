"""``ManagerCore``: the manager's lifecycle, its tenant cache and the helpers every part shares.

The public facade is :class:`arun.manager.ModelManager`, which combines this core with
one mixin per responsibility (tenants, credentials, quota, catalog, load-balancing
administration, instance resolution, policy routing).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Generator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from arun.entities.model import ModelType
from arun.entities.provider import ConfigurateMethod, ProviderEntity
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeError,
    ModelNotFoundError,
    ModelTypeNotSupportedError,
    NotStartedError,
)
from arun.manager.crypto import (
    MASTER_KEY_ENV,
    Credentials,
    TenantKey,
    decrypt_credentials,
    load_master_key,
)
from arun.manager.errors import (
    TenantNotFoundError,
)
from arun.manager.policy import PolicyConfig, split_limits
from arun.manager.quota import QUOTA_UNITS
from arun.manager.store import (
    CredentialStore,
    LoadBalancingConfig,
    ProviderQuotaType,
    ProviderRecord,
    master_key_path,
    open_store,
)
from arun.manager.tenant_config import TenantConfig
from arun.manager.views import QuotaInfo
from arun.state import StateStore, open_state

log = logging.getLogger('arun.manager')

INHERIT = "__inherit__"
_QUOTA_TYPES = tuple(t.value for t in ProviderQuotaType)
_META_UNIT = "__quota_unit"
_META_RESTRICT = "__restrict_models"

if TYPE_CHECKING:
    from arun.runtime.model_runtime import ModelRuntime


def default_store_url() -> str:
    """``$ARUN_STORE_URL``, else the embedded SQLite file ``~/.arun/arun.db``."""
    env = os.environ.get("ARUN_STORE_URL")
    if env:
        return env
    return f"sqlite:///{Path.home() / '.arun' / 'arun.db'}"


M = TypeVar("M", bound="ManagerCore")


class ManagerCore:
    """What every part of the manager shares: lifecycle, the tenant cache and the schema/credential helpers.

    ``store`` / ``state`` are objects or URLs (opened on :meth:`start`); what the
    manager opens or creates (including the runtime when ``runtime`` is None) it
    closes in :meth:`aclose`.
    """

    def __init__(
        self,
        store: CredentialStore | str | None = None,
        state: StateStore | str | None = None,
        runtime: ModelRuntime | None = None,
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(store={self._store!r}, tenants_cached={len(self._cache)})"

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls: type[M], store_url: str | None = None, state_url: str | None = None, **kwargs: Any) -> _Opener[M]:
        """``await ModelManager.open(...)`` or ``async with ModelManager.open(...) as m``."""
        return _Opener(cls(store_url, state_url, **kwargs))

    async def start(self) -> ManagerCore:
        async with self._start_lock:
            if self._started:
                return self
            opens_store, opens_state, opens_runtime = self._store is None, self._state is None, self._runtime is None
            try:
                await self._start()
            except BaseException:
                await self.aclose()  # what was opened so far (the store, ...) is closed again
                if opens_store:
                    self._store = None
                if opens_state:
                    self._state = None
                if opens_runtime:
                    self._runtime = None
                raise
            self._started = True
        return self

    async def _start(self) -> None:
        if self._store is None:
            url = str(self._store_arg)
            if url.startswith("sqlite://") and master_key_path(url) is not None:
                Path(str(master_key_path(url))).parent.mkdir(parents=True, exist_ok=True)
            self._store = await open_store(url)
            self._owns.append(self._store)
            if self._master is None and self._key_file is None:
                self._key_file = master_key_path(url)
        if self._master is None and (self._key_file is not None or os.environ.get(MASTER_KEY_ENV)):
            # resolved now, while the store can say whether a new key would orphan sealed tenants
            sealed = 0
            key_missing = self._key_file is not None and not Path(self._key_file).exists()  # noqa: ASYNC240 - once, at start
            if not os.environ.get(MASTER_KEY_ENV) and key_missing:
                sealed = await self.store.count_sealed_tenants()
            self._master = load_master_key(self._key_file, sealed_tenants=sealed)
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
            except Exception:
                log.warning("error while closing %s", type(obj).__name__, exc_info=True)
        self._started = False

    async def __aenter__(self: M) -> M:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    @property
    def store(self) -> CredentialStore:
        if self._store is None:
            raise NotStartedError("ModelManager is not started (await manager.start() or use `async with`)")
        return self._store

    @property
    def state(self) -> StateStore:
        if self._state is None:
            raise NotStartedError("ModelManager is not started")
        return self._state

    @property
    def runtime(self) -> ModelRuntime:
        if self._runtime is None:
            raise NotStartedError("ModelManager is not started")
        return self._runtime

    @property
    def policy_enabled(self) -> bool:
        return self.policy is not None and self.policy.enabled

    @property
    def limiter(self) -> Any:
        """The policy layer's per-credential limiter (None without the policy)."""
        return self._limiter

    def _open_limiter(self) -> Any:
        from arun.policy.limits import limiter_for_state, open_limiter

        assert self.policy is not None
        lim = self.policy.limiter
        if lim is not None and not isinstance(lim, str):
            return lim  # the caller's: not closed here
        lim = open_limiter(lim) if isinstance(lim, str) else limiter_for_state(self._state)
        self._owns.append(lim)
        return lim

    async def _ready(self) -> None:
        if not self._started:
            await self.start()

    def _master_key(self) -> bytes:
        """The master key :meth:`start` resolved; without a key file or ``$ARUN_MASTER_KEY``, a
        :class:`MasterKeyError` saying to set it (never a key generated after start)."""
        if self._master is None:
            self._master = load_master_key(self._key_file, generate=False)
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

    # -- quota helpers ------------------------------------------------------------------

    def _quota_unit(self, provider: str, config: Mapping[str, Any]) -> str:
        """A SYSTEM row's unit: as configured on the row, else the provider's default (``times``)."""
        unit: str = config.get(_META_UNIT) or self.quota_units.get(provider, "times")
        return unit

    def _quota_info(self, provider: str, row: ProviderRecord) -> QuotaInfo:
        return QuotaInfo(row.quota_type, self._quota_unit(provider, row.config()), row.quota_limit, row.quota_used, row.quota_valid)

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

    async def _require_model(self, cfg: TenantConfig, provider: str, kind: ModelType, model: str) -> None:
        if not isinstance(model, str) or not model:
            raise ModelNotFoundError("model name is required")
        if model in await self._predefined(provider, kind):
            return
        if (provider, kind, model) in cfg.models:
            return
        raise ModelNotFoundError(f"Model {model} of type {kind.value} not found for provider {provider}")

    @staticmethod
    def _mapping(credentials: Any, what: str = "credentials") -> Mapping[str, Any]:
        """Credentials as given by a caller: a mapping of form variables, else the typed error."""
        if not isinstance(credentials, Mapping):
            raise CredentialsValidateFailedError(f"{what} should be a mapping of form variables, not {type(credentials).__name__}")
        return credentials

    async def _validated(self, coro: Any) -> dict[str, Any]:
        try:
            return dict(await coro)
        except CredentialsValidateFailedError:
            raise
        except InvokeError as exc:  # a transport failure during validation is still a validation failure
            raise CredentialsValidateFailedError(str(exc)) from None


def _without_limits(creds: Credentials | None) -> Credentials | None:
    """The credentials a provider sees: the policy's limit keys removed."""
    if creds is None:
        return None
    clean, _ = split_limits(creds)
    return creds if len(clean) == len(creds) else Credentials(clean)


class _Opener(Generic[M]):
    """Awaitable and async context manager around a manager being started."""

    def __init__(self, manager: M) -> None:
        self._m = manager

    def __await__(self) -> Generator[Any, None, M]:
        return self._start().__await__()

    async def _start(self) -> M:
        await self._m.start()
        return self._m

    async def __aenter__(self) -> M:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._m.aclose()
