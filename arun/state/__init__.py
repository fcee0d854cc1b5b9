"""Shared policy state: :class:`StateStore`, its memory and Redis backends.

``open_state("memory://")`` or ``open_state("redis://127.0.0.1:6379/0?prefix=app:")``.
The Redis backend is imported only when asked for, so ``import arun`` stays fast.
"""

from __future__ import annotations

from typing import Any

from arun.errors import ArunUsageError
from arun.state.base import (
    ConfigState,
    StateStore,
    StateUnavailableError,
    lb_cooldown_key,
    lb_index_key,
    lb_scope,
)
from arun.state.memory import MemoryStateStore

__all__ = [
    "ConfigState",
    "MemoryStateStore",
    "StateStore",
    "StateUnavailableError",
    "lb_cooldown_key",
    "lb_index_key",
    "lb_scope",
    "open_state",
]


def open_state(url: str = "memory://", **kwargs: Any) -> StateStore:
    """Build a store from a URL: ``memory://``, ``redis://``, ``rediss://`` or ``unix://``.

    Connections are opened lazily, on first use.  Extra keyword arguments go to
    the backend (e.g. ``prefix=`` or redis-py client options).
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        return MemoryStateStore(**kwargs)
    if scheme in ("redis", "rediss", "unix"):
        from arun.state.redis import RedisStateStore

        return RedisStateStore.from_url(url, **kwargs)
    raise ArunUsageError(f"unknown state store URL scheme {scheme!r}; use memory:// or redis://")
