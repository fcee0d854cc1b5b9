"""What the router serves: routes, their targets and credential configs, cooldowns, its own errors.

::

    route = Route(
        Target("openai", "gpt-4o-mini", [CredentialConfig("k1", {...}), CredentialConfig("k2", {...}, weight=3)],
               strategy="latency_aware"),
        fallbacks=[Fallback(Target("anthropic", "claude-3-5-haiku-20241022", [...]),
                            {InvokeRateLimitError, InvokeServerUnavailableError})],
        max_fallbacks=1,
    )
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from arun.errors import (
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from arun.policy.strategies import Strategy

__all__ = ["CredentialConfig", "Target", "Fallback", "Route", "Cooldowns", "ConfigsCoolingError", "ConfigsRateLimitedError"]


@dataclass(frozen=True)
class CredentialConfig:
    """One credential config of a target.  Credentials never appear in the repr."""

    id: str
    credentials: Mapping[str, Any] = field(repr=False)
    weight: float = 1.0
    limits: Any = None  # arun.policy.limits.LimitSpec | None
    #: a display name (a load-balancing config's name, ``current``); None: the id
    name: str | None = None


@dataclass(frozen=True)
class Target:
    """A (provider, model) pair served by one or more credential configs."""

    provider: str
    model: str
    configs: Sequence[CredentialConfig]
    strategy: str | Strategy = "round_robin"
    #: Tokens reserved for the answer when the call sets no ``max_tokens``.
    default_max_tokens: int = 256

    @cached_property
    def name(self) -> str:  # read several times per request: built once per target
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class Fallback:
    """Fall to ``target`` when the previous target ended in one of ``triggers`` (isinstance)."""

    target: Target
    triggers: frozenset[type[BaseException]] | set[type[BaseException]] | tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Route:
    """A target plus its fallback chain; a request falls at most ``max_fallbacks`` times (None: the whole chain)."""

    target: Target
    fallbacks: Sequence[Fallback | tuple[Target, Iterable[type[BaseException]]]] = ()
    max_fallbacks: int | None = None

    def chain(self) -> list[Fallback]:
        out = []
        for fb in self.fallbacks:
            out.append(fb if isinstance(fb, Fallback) else Fallback(fb[0], frozenset(fb[1])))
        return out


@dataclass(frozen=True)
class Cooldowns:
    """Seconds a config cools after a failure (Dify's: 60 s on rate limits, 10 s on auth and
    connection errors); a longer Retry-After extends them.  ``single_config``: whether a target's
    only config cools too (Dify's balancer never cools a lone credential: there is nothing to
    rotate to)."""

    rate_limit: float = 60.0
    auth: float = 10.0
    connection: float = 10.0
    single_config: bool = True

    def for_error(self, exc: BaseException) -> float | None:
        if getattr(exc, "limit_exceeded", False):
            return None  # our own limiter said no: the credential is fine
        if isinstance(exc, InvokeRateLimitError):
            base = self.rate_limit
        elif isinstance(exc, InvokeAuthorizationError):
            base = self.auth
        elif isinstance(exc, InvokeConnectionError):
            base = self.connection
        else:
            return None
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, (int, float)) and ra > base:
            return float(ra)
        return base


class ConfigsCoolingError(InvokeServerUnavailableError):
    """Every config of a target cools (for other reasons than rate limits) and waiting was not allowed."""

    description = "Every credential config is cooling down"


class ConfigsRateLimitedError(InvokeRateLimitError):
    """Every config of a target cools after rate limits and waiting was not allowed."""

    description = "Every credential config is rate limited"
