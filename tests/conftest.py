"""Fixtures shared by the suites that need a credential store (manager, gateway): ``pg_url``
(a fresh PostgreSQL database),
``store_url`` (SQLite temp file and PostgreSQL, one case each) and ``store`` (opened on it).

PostgreSQL unreachable → the PostgreSQL cases skip, unless ``CI=true`` (then they fail).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from store_fixtures import fresh_pg_database

from arun.manager.store import CredentialStore, open_store


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/arun.db"
        return
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
async def store(store_url) -> AsyncIterator[CredentialStore]:
    s = await open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def otel_spans() -> Iterator[Any]:
    """An in-memory OpenTelemetry exporter the policy layer's spans go to for one test
    (skipped without the SDK, the ``opentelemetry`` extra's test half)."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from arun.policy import trace as ptrace

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ptrace._tracer = provider.get_tracer("arun.policy")
    try:
        yield exporter
    finally:
        ptrace.reset_tracer()
