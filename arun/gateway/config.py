"""``gateway.yaml``: pydantic models of the gateway's configuration (validated at the edge, once).

::

    host: 0.0.0.0
    port: 8000
    store: postgresql://arun@db/arun          # or sqlite:///var/lib/arun/arun.db (default ~/.arun/arun.db)
    state: redis://cache:6379/0                # shared limits, budgets, cooldowns, cache (default memory://)
    tenant: {id: default, name: default}       # the tenant the providers and keys below belong to
    providers:                                 # credentials, written encrypted into the store at start
      openai:
        credentials: {openai_api_key: ${OPENAI_API_KEY}}
      anthropic:
        credentials: {anthropic_api_key: ${ANTHROPIC_API_KEY}}
    aliases:                                   # client-facing model names
      gpt-4o: openai/gpt-4o
      smart: {target: openai/gpt-4o, fallbacks: [anthropic/claude-sonnet-4-20250514]}
    keys:                                      # optional keys declared here (else: arun keys create)
      - {name: ci, key: ${CI_GATEWAY_KEY}, models: [gpt-4o], rpm: 60, tpm: 100000, budget: "5.00"}
    cache: {enabled: true, backend: memory, ttl: 300, max_entries: 10000}
    shutdown_grace: 30

``${VAR}`` and ``${VAR:-default}`` are read from the environment when the file is loaded; a
variable that is unset and has no default is an error that names it (never its value).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arun.errors import ArunUsageError
from arun.pricing import QUANTUM

__all__ = [
    "GatewayConfig",
    "ProviderSettings",
    "AliasSettings",
    "KeySettings",
    "CacheSettings",
    "GatewayConfigError",
    "load_config",
    "parse_model_name",
]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class GatewayConfigError(ArunUsageError):
    """A gateway.yaml that does not load (the message names the field, never a secret value)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_model_name(name: str) -> tuple[str, str]:
    """``provider/model`` -> (provider, model); the model part may contain more slashes."""
    provider, sep, model = name.partition("/")
    if not sep or not provider or not model:
        raise ValueError(f"{name!r} is not provider/model")
    return provider, model


class ModelCredentials(_Strict):
    """Credentials of one customizable model (``openai_api_compatible``, ``ollama``, ...)."""

    model: str
    model_type: str = "llm"
    credentials: dict[str, str]


class ProviderSettings(_Strict):
    credentials: dict[str, str] | None = None
    models: list[ModelCredentials] = []
    #: validate the credentials with a call to the provider when the gateway starts
    validate_on_start: bool = False


class AliasSettings(_Strict):
    """A client-facing name for ``target``.  ``fallbacks`` become the target model's fallback chain
    for the tenant (stored per model by the manager), so they apply to every name that reaches it."""

    target: str
    fallbacks: list[str] = []

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        parse_model_name(v)
        return v

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks(cls, v: list[str]) -> list[str]:
        for item in v:
            parse_model_name(item)
        return v


class KeySettings(_Strict):
    name: str
    #: the key itself (``sk-...``; from the environment): stored hashed
    key: str = Field(repr=False)
    models: list[str] | None = None
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    budget: Decimal | None = None
    currency: str = "USD"

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if len(v) < 20 or not v.startswith("sk-"):
            raise ValueError("a key is 'sk-' followed by at least 17 characters")
        return v

    @field_validator("budget", mode="before")
    @classmethod
    def _budget(cls, v: Any) -> Any:
        if v is None:
            return v
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            raise ValueError("budget must be a decimal amount") from None
        if d < 0 or d != d.quantize(QUANTUM):
            raise ValueError("budget must be >= 0 with at most 7 decimals")
        return d


class CacheSettings(_Strict):
    enabled: bool = False
    backend: Literal["memory", "redis"] = "memory"
    ttl: float = Field(default=300.0, gt=0)
    max_entries: int = Field(default=10_000, gt=0)
    #: responses larger than this are not cached
    max_entry_bytes: int = Field(default=1 << 20, gt=0)


class TenantSettings(_Strict):
    id: str = "default"
    name: str = "default"


class PolicySettings(_Strict):
    """The policy layer under the gateway (retries, rotation, fallbacks, limits, cooldowns)."""

    enabled: bool = True
    strategy: str = "round_robin"
    #: retries of a failed upstream call (rotations to other credentials are budgeted apart)
    max_retries: int = Field(default=2, ge=0)
    #: cool a model's only credential after a rate limit / auth / connection failure, so the requests
    #: that follow get a fast 429 / 503 with Retry-After instead of hitting the upstream again
    cool_lone_credential: bool = True
    first_chunk_timeout: float | None = None
    wait_deadline: float = 0.0


class GatewayConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    store: str | None = None
    state: str = "memory://"
    tenant: TenantSettings = TenantSettings()
    providers: dict[str, ProviderSettings] = {}
    aliases: dict[str, AliasSettings] = {}
    keys: list[KeySettings] = []
    cache: CacheSettings = CacheSettings()
    policy: PolicySettings = PolicySettings()
    #: seconds in-flight requests (streams included) may take to finish on shutdown before they are cancelled
    shutdown_grace: float = Field(default=30.0, ge=0)
    #: seconds a key lookup is cached in process (a revoked key stops working within this time)
    key_cache_ttl: float = Field(default=5.0, ge=0)
    #: how often spend rows are written to the store (seconds), and the most rows per write
    spend_flush_interval: float = Field(default=0.5, gt=0)
    spend_batch: int = Field(default=500, gt=0)
    #: largest JSON body (bytes) and largest multipart upload (audio transcriptions)
    max_body_bytes: int = Field(default=8 << 20, gt=0)
    max_upload_bytes: int = Field(default=25 << 20, gt=0)
    #: how long a key's request may wait for its rpm/tpm capacity before the 429 (0: answer at once)
    limit_wait: float = Field(default=0.0, ge=0)
    #: tokens reserved for the answer (rate limits and budgets) when a request sets no max_tokens
    default_max_tokens: int = Field(default=256, gt=0)
    #: a reservation older than this (a process died mid-request) stops holding budget (seconds)
    budget_lease: float = Field(default=600.0, gt=0)
    access_log: bool = True
    workers: int = Field(default=1, ge=1)

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({"target": t} if isinstance(t, str) else t) for k, t in v.items()}
        return v

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError("key names must be unique")
        if self.cache.enabled and self.cache.backend == "redis" and not self.state.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("cache.backend redis needs a redis:// state")
        return self


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            got = os.environ.get(name)
            if got is None:
                if default is None:
                    raise GatewayConfigError(f"{where}: environment variable {name} is not set")
                return default
            return got

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_config(source: str | os.PathLike[str] | dict[str, Any]) -> GatewayConfig:
    """Read and validate a gateway.yaml (a path or an already parsed mapping)."""
    import yaml
    from pydantic import ValidationError

    if isinstance(source, dict):
        raw: Any = source
        where = "config"
    else:
        path = Path(source)
        where = path.name
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise GatewayConfigError(f"cannot read {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise GatewayConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise GatewayConfigError(f"{where}: the configuration is a mapping")
    try:
        return GatewayConfig.model_validate(_expand(raw, where))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or where}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise GatewayConfigError(f"{where}: {problems}") from None
