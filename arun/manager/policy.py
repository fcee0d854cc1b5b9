"""The policy stack's settings under the manager: ``ModelManager(..., policy=PolicyConfig(...))``.

* :class:`PolicyConfig` -- retries, cooldowns, strategies, limiter, fallbacks and timeouts of
  the tenants' routers (how routes are built from them: :mod:`arun.manager.routing`);
* :class:`FallbackSpec` -- one entry of a model's fallback chain as stored
  (``provider_model_settings.fallbacks``, JSON) and its trigger names resolved to classes;
* the limit keys (``rpm`` / ``tpm`` / ``max_in_flight``) a credential config may carry:
  checked when saved (:func:`check_limit_fields`), split off before a provider sees the
  credentials (:func:`split_limits`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import arun.errors as _errors
from arun.errors import CredentialsValidateFailedError

__all__ = [
    "PolicyConfig",
    "FallbackSpec",
    "LIMIT_KEYS",
    "DEFAULT_TRIGGERS",
    "split_limits",
    "check_limit_fields",
    "trigger_classes",
]

#: Credential keys the policy layer reads as limits; never sent to a provider.
LIMIT_KEYS = ("rpm", "tpm", "max_in_flight")

#: Fallback triggers when a chain entry names none.
DEFAULT_TRIGGERS: tuple[str, ...] = ("InvokeRateLimitError", "InvokeServerUnavailableError")


@dataclass(frozen=True)
class FallbackSpec:
    """One entry of a model's fallback chain: fall to (provider, model) on one of ``triggers``."""

    provider: str
    model: str
    triggers: tuple[str, ...] = DEFAULT_TRIGGERS

    @classmethod
    def of(cls, item: FallbackSpec | Sequence[Any] | Mapping[str, Any]) -> FallbackSpec:
        """From a spec, a ``(provider, model[, triggers])`` tuple or a mapping."""
        if isinstance(item, FallbackSpec):
            return item
        if isinstance(item, Mapping):
            provider, model, triggers = item.get("provider"), item.get("model"), item.get("triggers")
        else:
            seq = list(item)
            if len(seq) not in (2, 3):
                raise ValueError("a fallback is (provider, model) or (provider, model, triggers)")
            provider, model = seq[0], seq[1]
            triggers = seq[2] if len(seq) == 3 else None
        if not isinstance(provider, str) or not provider or not isinstance(model, str) or not model:
            raise ValueError("a fallback needs a provider and a model name")
        names = DEFAULT_TRIGGERS if not triggers else tuple(_trigger_name(t) for t in triggers)
        trigger_classes(names)  # unknown names fail here, not at call time
        return cls(provider, model, names)

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "triggers": list(self.triggers)}


def _trigger_name(t: Any) -> str:
    if isinstance(t, type) and issubclass(t, BaseException):
        return t.__name__
    if isinstance(t, str) and t:
        return t
    raise ValueError(f"a fallback trigger is an Invoke*Error class or its name, not {t!r}")


def trigger_classes(names: Iterable[str]) -> frozenset[type[BaseException]]:
    """``InvokeRateLimitError`` etc. (names from :mod:`arun.errors` or the policy layer's errors)."""
    out: set[type[BaseException]] = set()
    for name in names:
        cls = getattr(_errors, name, None)
        if cls is None:
            from arun.policy import limits, router

            cls = getattr(router, name, None) or getattr(limits, name, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ValueError(f"unknown fallback trigger {name!r}")
        out.add(cls)
    return frozenset(out)


def dump_fallbacks(chain: Sequence[FallbackSpec]) -> str | None:
    return json.dumps([f.to_dict() for f in chain]) if chain else None


def load_fallbacks(text: str | None) -> list[FallbackSpec]:
    if not text:
        return []
    return [FallbackSpec.of(item) for item in json.loads(text)]


@dataclass
class PolicyConfig:
    """How the manager's instances use the policy stack.

    ``limiter``: a :class:`~arun.policy.limits.Limiter`, a URL (``memory://``,
    ``redis://...``), or None — in memory, or in the state's Redis (its
    connection pool, key prefix ``<state prefix>limits:``) when the state is Redis.
    ``strategies`` maps ``"provider/model"`` or ``"model"`` to a strategy name
    (``round_robin``, ``weighted``, ``least_in_flight``, ``latency_aware``);
    others use ``strategy``.  ``fallbacks`` holds chains keyed by
    ``(provider, model_type, model)`` for stores that cannot keep them (the SQL
    stores do: :meth:`ModelManager.set_fallbacks`).
    """

    enabled: bool = True
    retry: Any = None  # arun.policy.retry.RetryPolicy | None
    cooldowns: Any = None  # arun.policy.router.Cooldowns | None
    strategy: str = "round_robin"
    strategies: Mapping[str, str] = field(default_factory=dict)
    limiter: Any = None
    #: When every config cools, wait this long at most for the earliest recovery.
    wait_deadline: float = 0.0
    #: How long a call may wait for limiter capacity before rotating (seconds).
    limit_wait: float | None = 30.0
    first_chunk_timeout: float | None = None
    max_fallbacks: int | None = None
    fallbacks: dict[tuple[str, str, str], list[FallbackSpec]] = field(default_factory=dict)
    on_trace: Callable[[Any], Any] | None = None
    #: Tokens reserved for the answer when a call sets no ``max_tokens``.
    default_max_tokens: int = 256

    def strategy_for(self, provider: str, model: str) -> str:
        return self.strategies.get(f"{provider}/{model}") or self.strategies.get(model) or self.strategy


def split_limits(credentials: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """``(credentials without limit keys, LimitSpec | None)``."""
    if not any(k in credentials for k in LIMIT_KEYS):
        return dict(credentials), None
    from arun.policy.limits import LimitSpec

    rest = {k: v for k, v in credentials.items() if k not in LIMIT_KEYS}
    spec = LimitSpec.from_mapping({k: credentials.get(k) for k in LIMIT_KEYS})
    return rest, (None if spec.unlimited else spec)


def check_limit_fields(credentials: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split limit fields off credentials before form validation (which drops unknown keys).

    Returns ``(credentials without them, the limit fields that are set)``; bad
    values raise :class:`CredentialsValidateFailedError`.
    """
    if not credentials:
        return dict(credentials or {}), {}
    limits = {k: credentials[k] for k in LIMIT_KEYS if k in credentials and credentials[k] not in (None, "")}
    rest = {k: v for k, v in credentials.items() if k not in LIMIT_KEYS}
    if limits:
        from arun.policy.limits import LimitSpec

        try:
            LimitSpec.from_mapping(limits)
        except ValueError as exc:
            raise CredentialsValidateFailedError(str(exc)) from None
    return rest, limits

