"""What the manager's listings return (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    #: ``active`` | ``no-configure`` | ``quota-exceeded`` | ``broken``
    status: str
    using_provider_type: str
    custom_configured: bool
    custom_models: list[tuple[str, str]] = field(default_factory=list)
    quotas: list[QuotaInfo] = field(default_factory=list)
    #: why the provider does not load (``status == "broken"``), else None
    error: str | None = None


@dataclass(frozen=True)
class ModelStatus:
    provider: str
    model: str
    model_type: str
    #: ``active`` | ``no-configure`` | ``quota-exceeded`` | ``broken`` | ``no-permission`` | ``disabled``
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


