"""Typed errors when the database is unreachable or goes away, and recovery when it returns."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
from store_fixtures import PG_HOST, PG_PORT, pg_url, store, store_url, terminate_backends  # noqa: F401

from arun.manager.store import StoreError, StoreUnavailableError, open_store
from arun.manager.store import schema as schema_mod


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sqlite_unreachable_path(tmp_path):
    with pytest.raises(StoreUnavailableError):
        await open_store(f"sqlite:///{tmp_path}/no/such/dir/arun.db")


async def test_postgres_closed_port_is_typed_and_quick():
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/arun"
    with pytest.raises(StoreUnavailableError) as info:
        await asyncio.wait_for(open_store(url, connect_timeout=2), timeout=10)
    assert "PostgreSQL unavailable" in str(info.value)


async def test_unknown_scheme():
    with pytest.raises(ValueError):
        await open_store("mysql://x/y")


async def test_closed_store_raises_store_error(store_url):
    s = await open_store(store_url)
    await s.close()
    with pytest.raises(StoreError):
        await s.get_tenant("x")


async def test_failed_migration_leaves_no_partial_schema(store_url, monkeypatch):
    good_then_bad = ["CREATE TABLE half_done (id TEXT PRIMARY KEY)", "CREATE TABLE broken (id NOSUCHTYPE("]
    current = schema_mod.MIGRATIONS[-1][0]
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, (current + 1, good_then_bad)])
    for name in ("arun.manager.store.sqlite", "arun.manager.store.postgres"):
        monkeypatch.setattr(f"{name}.MIGRATIONS", schema_mod.MIGRATIONS)
    with pytest.raises(StoreError):
        await open_store(store_url)
    monkeypatch.undo()
    s = await open_store(store_url)
    try:
        assert await s.schema_version() == current
        with pytest.raises(StoreError):
            await s._fetch("SELECT * FROM half_done")
    finally:
        await s.close()


# ---------------------------------------------------------------- PostgreSQL goes away mid-run


async def _tenant(store):
    return await store.create_tenant("t", encrypt_public_key="P", encrypted_private_key="K")


async def test_pg_terminated_backends_then_recovery(pg_url):
    s = await open_store(pg_url, min_size=2, max_size=4)
    try:
        t = await _tenant(s)
        await asyncio.gather(*(s.get_tenant(t.id) for _ in range(8)))  # warm several pooled connections
        assert await terminate_backends(pg_url) >= 1
        await asyncio.sleep(0.05)
        try:  # idempotent read: retried once on a fresh connection, else typed
            assert (await s.get_tenant(t.id)) == t
        except StoreUnavailableError:
            pass
        assert (await s.get_tenant(t.id)) == t  # recovered
        await s.upsert_provider(t.id, "openai", provider_type="system", quota_type="trial", quota_limit=10)
        assert await terminate_backends(pg_url) >= 1
        try:  # non-idempotent: not retried, so it may fail -- but only typed
            await s.deduct_quota(t.id, "openai", 1)
        except StoreUnavailableError:
            pass
        assert await s.deduct_quota(t.id, "openai", 1)
    finally:
        await s.close()


async def test_pg_terminations_during_concurrent_deductions_never_overshoot(pg_url):
    s = await open_store(pg_url, max_size=8)
    try:
        t = await _tenant(s)
        await s.upsert_provider(t.id, "openai", provider_type="system", quota_type="trial", quota_limit=150)

        async def deduct():
            try:
                return await s.deduct_quota(t.id, "openai", 1)
            except StoreUnavailableError:
                return None

        async def killer():
            for _ in range(3):
                await asyncio.sleep(0.01)
                await terminate_backends(pg_url)

        results, _ = await asyncio.gather(asyncio.gather(*(deduct() for _ in range(300))), killer())
        ok, lost = results.count(True), results.count(None)
        (row,) = await s.get_providers(t.id)
        assert row.quota_used <= 150 and ok <= row.quota_used <= ok + lost
        assert await s.get_tenant(t.id) is not None  # recovered
    finally:
        await s.close()


class _Proxy:
    """A TCP proxy in front of PostgreSQL that can be cut and restored on the same port."""

    def __init__(self) -> None:
        self.port = _closed_port()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(PG_HOST, PG_PORT)
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader, writer) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


async def test_pg_server_unreachable_mid_run_then_back(pg_url):
    proxy = _Proxy()
    await proxy.start()
    url = pg_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    s = await open_store(url, connect_timeout=2, command_timeout=5)
    try:
        t = await _tenant(s)
        await proxy.cut()
        for _ in range(3):
            with pytest.raises(StoreUnavailableError):
                await asyncio.wait_for(s.get_tenant(t.id), timeout=20)
        await proxy.start()
        assert await s.get_tenant(t.id) == t
    finally:
        await s.close()
        await proxy.cut()
