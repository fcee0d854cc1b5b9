"""pytest plugin (entry point ``arun``): the ``upstream`` fixture.

Loaded in every pytest run, so it imports nothing heavy at module level.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest


try:
    import pytest_asyncio

    _async_fixture: Any = pytest_asyncio.fixture
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
