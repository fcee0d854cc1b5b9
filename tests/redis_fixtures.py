"""Helpers for the suites that use the local Redis: its URL, a state store under a fresh key
prefix, and the cleanup of a prefix.  Redis unreachable → skip, unless ``CI=true`` (then fail)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from arun.testing.services import require_service

REDIS_URL = os.environ.get("ARUN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def delete_prefix(client: Any, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@contextlib.asynccontextmanager
async def redis_state_store() -> AsyncIterator[Any]:
    """A :class:`~arun.state.redis.RedisStateStore` under a fresh prefix, its keys deleted afterwards."""
    require_service(REDIS_URL, "Redis")
    from arun.state.redis import RedisStateStore

    prefix = f"arun-test-{uuid.uuid4().hex[:12]}:"
    store = RedisStateStore.from_url(f"{REDIS_URL}?prefix={prefix}", client_name=prefix.rstrip(":"))
    try:
        yield store
    finally:
        await delete_prefix(store.client, prefix)
        await store.aclose()
