"""The gateway test harness: a running ``arun serve`` over the simulator (``start_gateway``) and
the helpers the tests share (``wait_for``, ``spend_rows``, ``redis_or_skip``); the fixtures are in
``conftest.py``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from arun.gateway.app import Gateway, run_gateway
from arun.gateway.auth import new_key
from arun.gateway.demo import demo_config


@dataclass
class Running:
    gw: Gateway
    url: str
    key: str
    sim: Any
    task: asyncio.Task[None]
    stop: asyncio.Event
    clients: list[Any] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.url + "/v1"

    def openai(self, key: str | None = None, **kw: Any) -> Any:
        import openai

        kw.setdefault("max_retries", 0)
        client = openai.AsyncOpenAI(base_url=self.base, api_key=key if key is not None else self.key, **kw)
        self.clients.append(client)
        return client

    def anthropic(self, key: str | None = None, **kw: Any) -> Any:
        import anthropic

        kw.setdefault("max_retries", 0)
        client = anthropic.AsyncAnthropic(base_url=self.url, api_key=key if key is not None else self.key, **kw)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        self.stop.set()
        await self.task
        for client in self.clients:
            await client.close()


async def start_gateway(sim: Any, tmp_path: Path, **overrides: Any) -> Running:
    key = overrides.pop("key", None) or new_key()
    overrides.setdefault("store", f"sqlite:///{tmp_path}/gw-{id(overrides)}.db")
    overrides.setdefault("key_cache_ttl", 0.0)
    overrides.setdefault("shutdown_grace", 2.0)
    overrides.setdefault("policy", {"max_retries": 0, "cool_lone_credential": False})
    overrides.setdefault("spend_flush_interval", 0.05)
    store = overrides.pop("store")
    state = overrides.pop("state", None)
    cfg = demo_config(sim.url, key, port=0, store=store, state=state, **overrides)
    gw = Gateway(cfg)
    loop = asyncio.get_running_loop()
    bound: asyncio.Future[int] = loop.create_future()
    stop = asyncio.Event()
    task = loop.create_task(run_gateway(gw, "127.0.0.1", 0, ready=bound.set_result, stop=stop, signals=False))
    done, _ = await asyncio.wait({bound, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the startup failure
    port = bound.result()
    return Running(gw, f"http://127.0.0.1:{port}", key, sim, task, stop)


async def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    """Wait (polling the event loop) until ``predicate()`` holds; fail naming ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def spend_rows(running: Running, **filters: Any) -> list[Any]:
    await running.gw.spend.flush()
    rows: list[Any] = await running.gw.manager.store.list_spend(limit=10_000, **filters)
    return rows


REDIS = "redis://127.0.0.1:6379/0"


async def redis_or_skip() -> Any:
    """A client of the local Redis (responses decoded); unreachable -> the test skips, or fails under ``CI=true``."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS, decode_responses=True)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis unreachable in CI: {exc!r}")
        pytest.skip(f"Redis unreachable: {exc!r}")
    return client
