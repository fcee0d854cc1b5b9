"""The policy layer above the providers: limits, retries, routing, balancing, observability.

Submodules are imported on first use (``import arun`` stays fast)::

    from arun.policy import PolicyRouter, Route, Target, CredentialConfig, Fallback, RetryPolicy
    from arun.policy.limits import LimitSpec, open_limiter
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    # router
    "PolicyRouter": "router",
    "Route": "routes",
    "Target": "routes",
    "Fallback": "routes",
    "CredentialConfig": "routes",
    "Cooldowns": "routes",
    "ConfigsCoolingError": "routes",
    "ConfigsRateLimitedError": "routes",
    # retry
    "RetryPolicy": "retry",
    "Decision": "retry",
    # strategies
    "RoundRobin": "strategies",
    "Weighted": "strategies",
    "LeastInFlight": "strategies",
    "LatencyAware": "strategies",
    "ConfigStats": "strategies",
    # observability
    "Trace": "trace",
    "TraceEvent": "trace",
    "ConfigStatus": "trace",
    # limits
    "LimitSpec": "limits",
    "Limiter": "limits",
    "Permit": "limits",
    "LimitExceededError": "limits",
    "open_limiter": "limits",
}

__all__ = [
    "ConfigStats",
    "ConfigStatus",
    "ConfigsCoolingError",
    "ConfigsRateLimitedError",
    "Cooldowns",
    "CredentialConfig",
    "Decision",
    "Fallback",
    "LatencyAware",
    "LeastInFlight",
    "LimitExceededError",
    "LimitSpec",
    "Limiter",
    "Permit",
    "PolicyRouter",
    "RetryPolicy",
    "RoundRobin",
    "Route",
    "Target",
    "Trace",
    "TraceEvent",
    "Weighted",
    "open_limiter",
]

if TYPE_CHECKING:
    from arun.policy.limits import (
        Limiter as Limiter,
        LimitExceededError as LimitExceededError,
        LimitSpec as LimitSpec,
        Permit as Permit,
        open_limiter as open_limiter,
    )
    from arun.policy.retry import (
        Decision as Decision,
        RetryPolicy as RetryPolicy,
    )
    from arun.policy.router import (
        PolicyRouter as PolicyRouter,
    )
    from arun.policy.routes import (
        ConfigsCoolingError as ConfigsCoolingError,
        ConfigsRateLimitedError as ConfigsRateLimitedError,
        Cooldowns as Cooldowns,
        CredentialConfig as CredentialConfig,
        Fallback as Fallback,
        Route as Route,
        Target as Target,
    )
    from arun.policy.strategies import (
        ConfigStats as ConfigStats,
        LatencyAware as LatencyAware,
        LeastInFlight as LeastInFlight,
        RoundRobin as RoundRobin,
        Weighted as Weighted,
    )
    from arun.policy.trace import (
        ConfigStatus as ConfigStatus,
        Trace as Trace,
        TraceEvent as TraceEvent,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arun.policy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"arun.policy.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
