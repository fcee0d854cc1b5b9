"""arun.testing: a wire-accurate upstream simulator for tests, demos and benchmarks.

Importing this package is light; aiohttp is only imported when the simulator is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .faults import Fault

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import SimulatorConfig, UpstreamSimulator

__all__ = ["UpstreamSimulator", "Fault", "SimulatorConfig"]


def __getattr__(name: str) -> Any:
    if name in ("UpstreamSimulator", "SimulatorConfig"):
        from . import simulator

        return getattr(simulator, name)
    raise AttributeError(name)
