"""The policy layer above the providers: limits, retries, routing, balancing, observability.

Submodules are imported on first use (``import arun`` stays fast)::

    from arun.policy import PolicyRouter, Route, Target, CredentialConfig, Fallback, RetryPolicy
    from arun.policy.limits import LimitSpec, open_limiter
"""

from __future__ import annotations

import importlib
from typing import Any

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

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arun.policy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"arun.policy.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
