"""Helpers for the credential-store suites: a fresh PostgreSQL database, killing its connections
(the fixtures built on them are in ``conftest.py``).

PostgreSQL unreachable → the PostgreSQL cases skip, unless ``CI=true`` (then they fail).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest

PG_ADMIN_USERS = ("postgres", "root")
PG_HOST = os.environ.get("ARUN_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("ARUN_TEST_PG_PORT", "5432"))


async def _admin_connection():
    import asyncpg

    last: BaseException | None = None
    for user in PG_ADMIN_USERS:
        try:
            return user, await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database="postgres", timeout=3)
        except Exception as exc:
            last = exc
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} in CI: {last!r}")
    pytest.skip(f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT}: {last!r}")


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A fresh database ``arun_test_<random>``, dropped afterwards."""
    user, admin = await _admin_connection()
    name = f"arun_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def terminate_backends(url: str) -> int:
    """Kill every server connection to the database of ``url``; returns how many."""
    _, admin = await _admin_connection()
    try:
        dbname = url.rsplit("/", 1)[1]
        return len(
            await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                dbname,
            )
        )
    finally:
        await admin.close()
