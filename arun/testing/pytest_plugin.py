"""pytest plugin (entry point ``arun``): the ``upstream`` fixture.

Loaded in every pytest run, so it imports nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_asyncio import fixture as _async_fixture
else:
    try:
        from pytest_asyncio import fixture as _async_fixture
    except ImportError:  # pragma: no cover - pytest-asyncio missing: plain fixture (unusable but harmless)
        _async_fixture = pytest.fixture


@_async_fixture
async def upstream() -> AsyncIterator[Any]:
    """A started :class:`arun.testing.UpstreamSimulator` (closed after the test)."""
    from arun.testing.simulator import UpstreamSimulator

    sim = UpstreamSimulator()
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()
