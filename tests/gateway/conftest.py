"""Fixtures: the gateway running on a real socket in front of the upstream simulator.

``gateway`` serves the demo configuration (openai, anthropic and jina on the simulator) from
a fresh SQLite store with a key cache TTL of 0 (a revoked key fails at once), no retries and no
cooldown of the lone credential (so an injected upstream fault reaches the client as the one
answer it produced and does not change the next one).  ``make_gateway(**overrides)`` builds another one.  Every test leaves the runtime's
pool with no connection checked out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
from gateway_harness import Running, start_gateway


@pytest_asyncio.fixture
async def make_gateway(upstream: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    started: list[Running] = []

    async def make(**overrides: Any) -> Running:
        running = await start_gateway(upstream, tmp_path, **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        rt = running.gw.manager.runtime if running.gw.manager is not None else None
        await running.close()
        if rt is not None:
            assert rt.http.acquired_connections() == 0


@pytest_asyncio.fixture
async def gateway(make_gateway: Callable[..., Awaitable[Running]]) -> Running:
    return await make_gateway()
