"""The credential-store interface, its records and errors.

Rows are modelled on Dify's tables (``tenants``, ``providers``, ``provider_models``,
``provider_model_settings``, ``load_balancing_model_configs``,
``tenant_default_models``), plus arun's ``quota_reservations`` (migration 3).  ``encrypted_config`` is JSON text whose secret
fields hold base64 blobs from :mod:`arun.manager.crypto`; model types are stored
in Dify's origin spelling (``text-generation``, ``embeddings``, ``reranking``, ...)
and returned as :class:`~arun.entities.ModelType`.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from arun.entities import ModelType
from arun.errors import ArunError

__all__ = [
    "StoreError",
    "StoreUnavailableError",
    "QuotaChargeError",
    "StoreConflictError",
    "ProviderType",
    "ProviderQuotaType",
    "Tenant",
    "ProviderRecord",
    "ProviderModelRecord",
    "ProviderModelSetting",
    "LoadBalancingConfig",
    "TenantDefaultModel",
    "QuotaReservationRecord",
    "VirtualKeyRecord",
    "SpendRecord",
    "CredentialStore",
    "parse_config",
    "quota_is_valid",
    "choose_quota",
    "quota_rank",
    "origin_model_type",
    "new_id",
]


class StoreError(ArunError):
    """A credential-store operation failed; nothing was partially written."""


class StoreUnavailableError(StoreError):
    """The database is unreachable or the connection was lost; retry later."""

    #: True when the connection was lost while a COMMIT was in flight: the change may or may
    #: not have been applied (every other loss leaves nothing written).
    commit_unknown: bool = False


class QuotaChargeError(StoreUnavailableError):
    """The database connection was lost while charging quota, and every retry failed too.

    ``recorded`` says what happened, in the message too: False -- the charge was not
    recorded; None -- it may have been (a COMMIT's reply was lost).  Retrying with the same
    ``reservation_id`` never charges twice, and releasing it gives back what was recorded.
    """

    def __init__(self, message: str, *, reservation_id: str, recorded: bool | None) -> None:
        super().__init__(message)
        self.reservation_id = reservation_id
        self.recorded = recorded
        self.commit_unknown = recorded is None


class StoreConflictError(StoreError):
    """A unique constraint was violated (for example a duplicate tenant id)."""


class ProviderType(str, Enum):
    CUSTOM = "custom"
    SYSTEM = "system"


class ProviderQuotaType(str, Enum):
    PAID = "paid"
    FREE = "free"
    TRIAL = "trial"


_QUOTA_ORDER = {t.value: i for i, t in enumerate(ProviderQuotaType)}


def quota_rank(quota_type: str) -> int:
    """Dify's order of quota rows: paid, free, trial, then anything else."""
    return _QUOTA_ORDER.get(quota_type, len(_QUOTA_ORDER))


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    encrypt_public_key: str
    encrypted_private_key: str
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    id: str
    tenant_id: str
    provider_name: str
    provider_type: ProviderType
    encrypted_config: str | None
    is_valid: bool
    quota_type: str
    quota_limit: int | None
    quota_used: int
    last_used: datetime | None = None
    created_at: datetime | None = None

    def config(self) -> dict[str, Any]:
        return parse_config(self.encrypted_config)

    @property
    def quota_valid(self) -> bool:
        return quota_is_valid(self.quota_limit, self.quota_used)


@dataclass(frozen=True, slots=True)
class ProviderModelRecord:
    id: str
    tenant_id: str
    provider_name: str
    model_name: str
    model_type: ModelType
    encrypted_config: str | None
    is_valid: bool
    created_at: datetime | None = None

    def config(self) -> dict[str, Any]:
        return parse_config(self.encrypted_config)


@dataclass(frozen=True, slots=True)
class ProviderModelSetting:
    id: str
    tenant_id: str
    provider_name: str
    model_name: str
    model_type: ModelType
    enabled: bool
    load_balancing_enabled: bool
    #: The model's fallback chain as JSON text (policy layer), None when unset.
    fallbacks: str | None = None


@dataclass(frozen=True, slots=True)
class LoadBalancingConfig:
    id: str
    tenant_id: str
    provider_name: str
    model_name: str
    model_type: ModelType
    name: str
    encrypted_config: str | None
    enabled: bool
    created_at: datetime | None = None

    def config(self) -> dict[str, Any]:
        return parse_config(self.encrypted_config)


@dataclass(frozen=True, slots=True)
class QuotaReservationRecord:
    """One call's quota charge, recorded under its reservation id.

    ``reserved`` is what was taken up front, ``charged`` what the call is charged now
    (after settling: its real use, clamped at the limit; after releasing: 0), ``actual``
    the real use it was settled with (``actual - charged`` is use the limit could not take).
    """

    id: str
    tenant_id: str
    provider_name: str
    quota_type: str
    reserved: int
    charged: int
    state: str  # reserved | settled | released
    actual: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VirtualKeyRecord:
    """A gateway key (migration 4): the SHA-256 of the key, never the key; money in units of 1e-7."""

    id: str
    key_hash: str
    #: ``sk-...abcd``: enough to recognise a key, never enough to use it
    key_hint: str
    name: str
    tenant_id: str
    #: allowed model names (aliases or ``provider/model``); None = every model of the tenant
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    budget_e7: int | None
    currency: str
    #: settled spend written by the gateway's spend log
    spent_e7: int = 0
    revoked_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One gateway request in the spend log (``outcome``: ok | error | cancelled)."""

    id: str
    key_id: str | None
    tenant_id: str | None
    route: str
    provider: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    price_e7: int
    currency: str | None
    latency_ms: float | None
    ttft_ms: float | None
    outcome: str
    status: int | None
    error: str | None = None
    cache_hit: bool = False
    stream: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TenantDefaultModel:
    tenant_id: str
    model_type: ModelType
    provider_name: str
    model_name: str


def new_id() -> str:
    return str(uuid.uuid4())


def parse_config(text: str | None) -> dict[str, Any]:
    """Decode ``encrypted_config``; Dify legacy text not starting with ``{`` is an OpenAI key."""
    if not text:
        return {}
    if not text.lstrip().startswith("{"):
        return {"openai_api_key": text}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError("encrypted_config is not a JSON object")
    return value


def dump_config(config: dict[str, Any] | str | None) -> str | None:
    if config is None or isinstance(config, str):
        return config
    return json.dumps(config, separators=(",", ":"), sort_keys=True)


def origin_model_type(model_type: ModelType | str) -> str:
    """Dify's DB spelling of a model type (accepts any spelling)."""
    if not isinstance(model_type, ModelType):
        model_type = ModelType.value_of(model_type)
    return model_type.to_origin_model_type()


def quota_is_valid(quota_limit: int | None, quota_used: int | None) -> bool:
    """Dify's rule: unlimited (−1) or ``limit > used``."""
    if quota_limit is None:
        return False
    return quota_limit == -1 or quota_limit > (quota_used or 0)


def choose_quota(records: Iterable[ProviderRecord]) -> ProviderRecord | None:
    """Order paid > free > trial; the first valid one, else the last one seen; None if empty."""
    ordered = sorted(records, key=lambda r: quota_rank(r.quota_type))
    for record in ordered:
        if record.quota_valid:
            return record
    return ordered[-1] if ordered else None


def to_utc(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    return to_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


class CredentialStore(ABC):
    """Async repository of tenants, provider credentials, models, settings, LB configs, defaults."""

    async def __aenter__(self) -> CredentialStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def schema_version(self) -> int: ...

    # tenants
    @abstractmethod
    async def create_tenant(self, name: str, *, encrypt_public_key: str, encrypted_private_key: str, tenant_id: str | None = None) -> Tenant: ...

    @abstractmethod
    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    @abstractmethod
    async def delete_tenant(self, tenant_id: str) -> bool:
        """Delete the tenant and every row that belongs to it."""

    # providers
    @abstractmethod
    async def upsert_provider(
        self,
        tenant_id: str,
        provider_name: str,
        *,
        provider_type: ProviderType | str = ProviderType.CUSTOM,
        encrypted_config: dict[str, Any] | str | None = None,
        is_valid: bool = True,
        quota_type: str = "",
        quota_limit: int | None = None,
        quota_used: int | None = None,
    ) -> ProviderRecord:
        """Insert or update on (tenant, provider, type, quota_type); ``quota_used=None`` keeps it."""

    @abstractmethod
    async def get_providers(self, tenant_id: str, provider_name: str | None = None, *, provider_type: ProviderType | str | None = None) -> list[ProviderRecord]: ...

    @abstractmethod
    async def delete_provider(self, tenant_id: str, provider_name: str, *, provider_type: ProviderType | str = ProviderType.CUSTOM, quota_type: str = "") -> bool: ...

    @abstractmethod
    async def mark_provider_used(self, tenant_id: str, provider_name: str) -> None: ...

    # quota, charged through reservation ids
    @abstractmethod
    async def reserve_quota(self, tenant_id: str, provider_name: str, amount: int, *, quota_type: str | None, reservation_id: str) -> QuotaReservationRecord | None:
        """Charge ``amount`` to a SYSTEM row if it stays within ``quota_limit`` (or −1), and record it.

        The check, the charge and the record are one transaction, so concurrent
        reservations never overshoot.  ``quota_type=None`` takes the first row in paid >
        free > trial order that can take the amount.  Returns the reservation, or None
        when no row can take it (nothing recorded).  The same ``reservation_id`` again
        returns the recorded reservation without charging: a retry after a lost reply
        never charges twice.  A lost connection is retried with the same id; when it
        still fails, :class:`QuotaChargeError` says whether the charge was recorded.
        """

    @abstractmethod
    async def settle_quota(self, reservation_id: str, actual_amount: int) -> QuotaReservationRecord | None:
        """Adjust a reservation's charge to ``actual_amount`` (the increase clamped at the limit, a
        decrease refunded, ``quota_used`` never below 0) and mark it settled.

        Idempotent: a settled or released reservation is returned unchanged.  None for an unknown id.
        """

    @abstractmethod
    async def release_quota(self, reservation_id: str) -> QuotaReservationRecord | None:
        """Refund an open reservation and mark it released; idempotent, None for an unknown id."""

    @abstractmethod
    async def get_quota_reservation(self, reservation_id: str) -> QuotaReservationRecord | None: ...

    @abstractmethod
    async def sweep_quota_reservations(self, before: datetime) -> tuple[int, int]:
        """Reconcile reservations older than ``before``: release the ones still open (their call
        died without settling) and delete the finished ones.  Returns (released, deleted)."""

    @abstractmethod
    async def list_tenants(self) -> list[Tenant]: ...

    async def count_sealed_tenants(self) -> int:
        """How many tenants hold a private key sealed under the master key (the rows a new key would orphan)."""
        return sum(1 for t in await self.list_tenants() if t.encrypted_private_key)

    # provider models
    @abstractmethod
    async def upsert_provider_model(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, *, encrypted_config: dict[str, Any] | str | None = None, is_valid: bool = True) -> ProviderModelRecord: ...

    @abstractmethod
    async def get_provider_models(self, tenant_id: str, provider_name: str | None = None) -> list[ProviderModelRecord]: ...

    @abstractmethod
    async def get_provider_model(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str) -> ProviderModelRecord | None: ...

    @abstractmethod
    async def delete_provider_model(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str) -> bool: ...

    # model settings
    @abstractmethod
    async def upsert_model_setting(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, *, enabled: bool | None = None, load_balancing_enabled: bool | None = None) -> ProviderModelSetting:
        """Create (defaults: enabled, LB off) or update only the fields given."""

    @abstractmethod
    async def get_model_settings(self, tenant_id: str, provider_name: str | None = None) -> list[ProviderModelSetting]: ...

    async def set_model_fallbacks(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, fallbacks: str | None) -> ProviderModelSetting:
        """Store a model's fallback chain (JSON text; None clears it), creating the setting row when missing."""
        raise NotImplementedError(f"{type(self).__name__} does not store fallback chains")

    # load balancing configs
    @abstractmethod
    async def add_lb_config(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, name: str, *, encrypted_config: dict[str, Any] | str | None = None, enabled: bool = True) -> LoadBalancingConfig: ...

    @abstractmethod
    async def get_lb_configs(self, tenant_id: str, provider_name: str, model_name: str | None = None, model_type: ModelType | str | None = None) -> list[LoadBalancingConfig]: ...

    @abstractmethod
    async def update_lb_config(self, tenant_id: str, config_id: str, *, name: str | None = None, encrypted_config: dict[str, Any] | str | None = None, enabled: bool | None = None) -> LoadBalancingConfig | None: ...

    @abstractmethod
    async def delete_lb_config(self, tenant_id: str, config_id: str) -> bool: ...

    # default models
    @abstractmethod
    async def set_default_model(self, tenant_id: str, model_type: ModelType | str, provider_name: str, model_name: str) -> TenantDefaultModel: ...

    @abstractmethod
    async def get_default_model(self, tenant_id: str, model_type: ModelType | str) -> TenantDefaultModel | None: ...

    @abstractmethod
    async def get_default_models(self, tenant_id: str) -> list[TenantDefaultModel]: ...

    @abstractmethod
    async def delete_default_model(self, tenant_id: str, model_type: ModelType | str) -> bool: ...

