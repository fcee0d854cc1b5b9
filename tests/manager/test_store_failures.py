"""Typed errors when the database is unreachable or goes away, and recovery when it returns."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid

import pytest
from store_fixtures import PG_HOST, PG_PORT, terminate_backends

from arun.manager.store import QuotaChargeError, StoreError, StoreUnavailableError, open_store, schema as schema_mod


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
        rid = str(uuid.uuid4())
        try:  # charged under a reservation id: retried on a fresh connection, never twice
            assert await s.reserve_quota(t.id, "openai", 1, quota_type="trial", reservation_id=rid)
        except QuotaChargeError:
            pass
        assert await s.reserve_quota(t.id, "openai", 1, quota_type="trial", reservation_id=rid)
        assert (await s.get_providers(t.id))[0].quota_used == 1
    finally:
        await s.close()


async def test_pg_terminations_during_concurrent_charges_never_overcharge(pg_url):
    # Before: deduct_quota was not retried, and a COMMIT whose reply was lost still charged:
    # every cut charged units that no caller was told about (9 units per 5-second cut).
    s = await open_store(pg_url, max_size=8)
    try:
        t = await _tenant(s)
        await s.upsert_provider(t.id, "openai", provider_type="system", quota_type="trial", quota_limit=400)
        told: dict[str, object] = {}

        async def charge(i: int) -> None:
            rid = str(uuid.uuid4())
            try:
                told[rid] = await s.reserve_quota(t.id, "openai", 1 + i % 3, quota_type="trial", reservation_id=rid)
            except QuotaChargeError as exc:
                told[rid] = exc

        async def killer():
            for _ in range(4):
                await asyncio.sleep(0.01)
                await terminate_backends(pg_url)

        await asyncio.gather(asyncio.gather(*(charge(i) for i in range(300))), killer())
        (row,) = await s.get_providers(t.id)
        recorded = {r["id"]: r["charged"] for r in await s._fetch("SELECT id, charged FROM quota_reservations")}
        assert row.quota_used == sum(recorded.values()) <= 400  # every unit charged belongs to a recorded reservation
        for rid, answer in told.items():
            if isinstance(answer, QuotaChargeError):
                assert answer.reservation_id == rid
                if answer.recorded is False:
                    assert rid not in recorded
            elif answer is not None:
                assert recorded[rid] == answer.charged  # an admitted call is recorded exactly once
            else:
                assert rid not in recorded
        assert await s.get_tenant(t.id) is not None  # recovered
    finally:
        await s.close()


class _Proxy:
    """A TCP proxy in front of PostgreSQL that can be cut and restored on the same port.

    :meth:`lose_next_commit_reply` makes it forward the next COMMIT to the server, let the
    server commit, and drop the reply with the connection: "the UPDATE committed, the reply
    was lost".
    """

    def __init__(self) -> None:
        self.port = _closed_port()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lose_commits = 0
        self._cut_after_loss = False
        self.lost_commits = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for w in list(self._writers):
            w.close()
        await server.wait_closed()

    def lose_next_commit_reply(self, *, then_cut: bool = False) -> None:
        self._lose_commits += 1
        self._cut_after_loss = then_cut

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(PG_HOST, PG_PORT)
        self._writers |= {writer, up_writer}
        losing = asyncio.Event()
        pair = (writer, up_writer)
        await asyncio.gather(self._pipe(reader, up_writer, losing, pair, upstream=True), self._pipe(up_reader, writer, losing, pair, upstream=False))

    async def _pipe(self, reader, writer, losing: asyncio.Event, pair, *, upstream: bool) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if not upstream and losing.is_set():
                    break  # the server's answer to COMMIT: dropped, and the client's connection with it
                if upstream and self._lose_commits and data[:1] == b"Q" and b"COMMIT" in data.upper():
                    self._lose_commits -= 1
                    self.lost_commits += 1
                    losing.set()
                writer.write(data)
                await writer.drain()
        if not upstream and losing.is_set():
            for w in pair:
                w.close()
            if self._cut_after_loss:
                await self.cut()
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


async def _kill_when_running(pg_url, marker: str) -> None:
    """Terminate the backends once a statement containing ``marker`` is running on the server."""
    import asyncpg
    from store_fixtures import _admin_connection

    _, admin = await _admin_connection()
    try:
        for _ in range(200):
            rows = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE $2",
                pg_url.rsplit("/", 1)[1], f"%{marker}%",
            )  # fmt: skip
            if rows:
                await terminate_backends(pg_url)
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the statement never started")
    finally:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await admin.close()


async def test_pg_connection_lost_mid_statement_says_so(pg_url):
    # Before: "cannot call Connection.is_closed(): connection has been released back to the pool"
    # (asyncpg had already released the dead connection when the store asked whether it was closed).
    s = await open_store(pg_url, min_size=1, max_size=2)
    try:
        query = asyncio.ensure_future(s._fetch("SELECT pg_sleep(5) AS lost_mid_statement", retry=False))
        await _kill_when_running(pg_url, "lost_mid_statement")
        with pytest.raises(StoreUnavailableError) as info:
            await query
        message = str(info.value)
        assert "released back to the pool" not in message and "is_closed" not in message
        assert "connection" in message.lower() and "closed" in message.lower()
        assert (await s._fetchrow("SELECT 1 AS one"))["one"] == 1  # and the pool recovered
    finally:
        await s.close()


async def _proxied_store(pg_url, proxy):
    url = pg_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    return await open_store(url, connect_timeout=2, command_timeout=5)


async def test_pg_lost_commit_reply_is_not_charged_twice(pg_url):
    proxy = _Proxy()
    await proxy.start()
    s = await _proxied_store(pg_url, proxy)
    try:
        t = await _tenant(s)
        await s.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=100)
        rid = str(uuid.uuid4())
        proxy.lose_next_commit_reply()
        rec = await s.reserve_quota(t.id, "anthropic", 9, quota_type="trial", reservation_id=rid)
        assert proxy.lost_commits == 1  # the first attempt committed and its reply was lost
        assert rec is not None and rec.charged == 9
        assert (await s.get_providers(t.id))[0].quota_used == 9  # charged once, not 18

        proxy.lose_next_commit_reply()
        settled = await s.settle_quota(rid, 4)
        assert proxy.lost_commits == 2 and settled.charged == 4
        assert (await s.get_providers(t.id))[0].quota_used == 4  # refunded once, not twice
    finally:
        await s.close()
        await proxy.cut()


async def test_pg_charge_lost_for_good_says_it_may_be_recorded(pg_url):
    proxy = _Proxy()
    await proxy.start()
    s = await _proxied_store(pg_url, proxy)
    try:
        t = await _tenant(s)
        await s.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=100)
        rid = str(uuid.uuid4())
        proxy.lose_next_commit_reply(then_cut=True)  # the reply is lost, then the server is unreachable
        with pytest.raises(QuotaChargeError) as info:
            await s.reserve_quota(t.id, "anthropic", 9, quota_type="trial", reservation_id=rid)
        err = info.value
        assert err.recorded is None and err.reservation_id == rid and isinstance(err, StoreUnavailableError)
        assert "connection was lost while charging quota" in str(err) and "not known" in str(err) and rid in str(err)
        await proxy.start()
        assert (await s.get_quota_reservation(rid)).charged == 9  # it was: the retry finds it by its id
        assert (await s.reserve_quota(t.id, "anthropic", 9, quota_type="trial", reservation_id=rid)).charged == 9
        assert (await s.get_providers(t.id))[0].quota_used == 9
    finally:
        await s.close()
        await proxy.cut()


async def test_pg_charge_never_sent_says_it_was_not_recorded(pg_url):
    proxy = _Proxy()
    await proxy.start()
    s = await _proxied_store(pg_url, proxy)
    try:
        t = await _tenant(s)
        await s.upsert_provider(t.id, "anthropic", provider_type="system", quota_type="trial", quota_limit=100)
        await proxy.cut()
        rid = str(uuid.uuid4())
        with pytest.raises(QuotaChargeError) as info:
            await s.reserve_quota(t.id, "anthropic", 9, quota_type="trial", reservation_id=rid)
        assert info.value.recorded is False and "the charge was not recorded" in str(info.value)
        await proxy.start()
        assert await s.get_quota_reservation(rid) is None
        assert (await s.get_providers(t.id))[0].quota_used == 0
    finally:
        await s.close()
        await proxy.cut()
