"""The small async state protocol behind the policy layer.

Balancing (and later rate limiting) keeps its shared state behind
:class:`StateStore`.  Every operation a policy needs for one decision is a
*single* call, so the Redis implementation can make it one atomic round trip
(a Lua script) and the in-memory one a single synchronous step of the event
loop (no ``await`` inside, hence atomic under asyncio).

Key layout (Dify's, see DIFY_RUNTIME.md §7), built from a *scope*
``{tenant}:{provider}:{model_type}:{model}`` (see :func:`lb_scope`)::

    {prefix}model_lb_index:{scope}                     round-robin counter
    {prefix}model_lb_index:cooldown:{scope}:{config}   exists while cooling
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from arun.errors import ArunError

__all__ = [
    "LB_INDEX_WRAP",
    "LB_INDEX_TTL",
    "ConfigState",
    "StateStore",
    "StateUnavailableError",
    "lb_scope",
    "lb_index_key",
    "lb_cooldown_key",
]

#: When INCR reaches this value the counter is reset to 1 (Dify: ``>= 10000000``).
LB_INDEX_WRAP = 10_000_000
#: The counter's TTL, refreshed on every pick (Dify: ``EXPIRE 3600``).
LB_INDEX_TTL = 3600


class StateUnavailableError(ArunError, ValueError):
    """The shared state backend cannot be reached (down, or went away).

    The store keeps working once the backend returns: the next call reconnects.
    """


@dataclass(frozen=True, slots=True)
class ConfigState:
    """What an operator sees for one credential config."""

    config_id: str
    in_cooldown: bool
    #: Remaining cooldown in seconds (0.0 when not cooling, ``inf`` if no expiry).
    ttl: float = 0.0
    #: Wall-clock (``time.time()``) moment the cooldown ends, None when not cooling.
    until: float | None = None
    #: Why it cools, e.g. ``"InvokeRateLimitError: Rate Limit Error"``.
    reason: str | None = None
    #: Display name, filled in by the balancer.
    name: str | None = None


@runtime_checkable
class StateStore(Protocol):
    """Shared policy state.  Implementations: memory (embedded) and Redis."""

    async def lb_pick(self, scope: str, config_ids: list[str]) -> tuple[str | None, list[tuple[str, float]]]:
        """One round-robin decision (Dify ``fetch_next``), atomically.

        INCR the scope's counter (reset to 1 at :data:`LB_INDEX_WRAP`, TTL
        :data:`LB_INDEX_TTL` refreshed), map it to a config
        (``idx %= n`` when ``idx > n``; ``config_ids[idx - 1]``, 0 meaning the
        last), and INCR again while the chosen config cools.  Returns the chosen
        id, or None once the cooldown hits (duplicates included) reach
        ``len(config_ids)``, plus the hits as ``(config_id, remaining_seconds)``.
        """
        ...

    async def lb_cooldown(self, scope: str, config_id: str, seconds: float, reason: str = "") -> None:
        """Cool ``config_id`` for ``seconds``; an existing longer cooldown is kept."""
        ...

    async def lb_state(self, scope: str, config_ids: list[str]) -> list[ConfigState]:
        """The cooldown state of each config, in order."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


def lb_scope(tenant_id: str, provider: str, model_type: Any, model: str) -> str:
    """``{tenant}:{provider}:{model_type}:{model}`` (enums contribute ``.value``)."""
    mt = getattr(model_type, "value", model_type)
    return f"{tenant_id}:{provider}:{mt}:{model}"


def lb_index_key(scope: str, prefix: str = "") -> str:
    return f"{prefix}model_lb_index:{scope}"


def lb_cooldown_key(scope: str, config_id: str, prefix: str = "") -> str:
    return f"{prefix}model_lb_index:cooldown:{scope}:{config_id}"
