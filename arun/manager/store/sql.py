"""The SQL shared by both stores.

Every operation is one statement (atomic by itself), except the quota reservations,
which check, charge and record in one transaction.  What a backend supplies -- one
statement, one transaction, ``$n`` placeholders -- is :class:`~arun.manager.store.sql_backend.SqlBackend`.

Quota charging is idempotent by reservation id, so a lost connection is retried (with
the same id, after :attr:`SqlStore.quota_retry_delays`) rather than reported; when the
retries fail too, :class:`QuotaChargeError` says in plain words whether the charge was
recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from arun.entities import ModelType
from arun.manager.store.base import (
    CredentialStore,
    LoadBalancingConfig,
    ProviderModelRecord,
    ProviderModelSetting,
    ProviderRecord,
    ProviderType,
    QuotaChargeError,
    QuotaReservationRecord,
    StoreConflictError,
    StoreUnavailableError,
    Tenant,
    TenantDefaultModel,
    dump_config,
    new_id,
    origin_model_type,
    to_utc,
)
from arun.manager.store.keys_sql import KeysSqlMixin
from arun.manager.store.sql_backend import Execute, Row

__all__ = ["SqlStore", "Execute", "Row"]

T = TypeVar("T")

_QUOTA_RANK = "CASE quota_type WHEN 'paid' THEN 0 WHEN 'free' THEN 1 WHEN 'trial' THEN 2 ELSE 3 END"
_FITS = "quota_limit IS NOT NULL AND (quota_limit = -1 OR quota_used + CAST($4 AS BIGINT) <= quota_limit)"


def _tenant(r: Row) -> Tenant:
    return Tenant(r["id"], r["name"], r["encrypt_public_key"], r["encrypted_private_key"], to_utc(r["created_at"]))


def _provider(r: Row) -> ProviderRecord:
    return ProviderRecord(
        id=r["id"],
        tenant_id=r["tenant_id"],
        provider_name=r["provider_name"],
        provider_type=ProviderType(r["provider_type"]),
        encrypted_config=r["encrypted_config"],
        is_valid=bool(r["is_valid"]),
        quota_type=r["quota_type"],
        quota_limit=r["quota_limit"],
        quota_used=r["quota_used"],
        last_used=to_utc(r["last_used"]),
        created_at=to_utc(r["created_at"]),
    )


def _provider_model(r: Row) -> ProviderModelRecord:
    return ProviderModelRecord(
        r["id"], r["tenant_id"], r["provider_name"], r["model_name"], ModelType.value_of(r["model_type"]),
        r["encrypted_config"], bool(r["is_valid"]), to_utc(r["created_at"]),
    )  # fmt: skip


def _setting(r: Row) -> ProviderModelSetting:
    return ProviderModelSetting(
        r["id"], r["tenant_id"], r["provider_name"], r["model_name"], ModelType.value_of(r["model_type"]),
        bool(r["enabled"]), bool(r["load_balancing_enabled"]), r["fallbacks"],
    )  # fmt: skip


def _lb(r: Row) -> LoadBalancingConfig:
    return LoadBalancingConfig(
        r["id"], r["tenant_id"], r["provider_name"], r["model_name"], ModelType.value_of(r["model_type"]),
        r["name"], r["encrypted_config"], bool(r["enabled"]), to_utc(r["created_at"]),
    )  # fmt: skip


def _default(r: Row) -> TenantDefaultModel:
    return TenantDefaultModel(r["tenant_id"], ModelType.value_of(r["model_type"]), r["provider_name"], r["model_name"])


def _ptype(value: ProviderType | str) -> str:
    return ProviderType(value).value


def _reservation(r: Row) -> QuotaReservationRecord:
    return QuotaReservationRecord(
        r["id"], r["tenant_id"], r["provider_name"], r["quota_type"], int(r["reserved"]), int(r["charged"]), r["state"],
        None if r["actual"] is None else int(r["actual"]), to_utc(r["created_at"]), to_utc(r["updated_at"]),
    )  # fmt: skip


def _check_amount(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ValueError("quota amount must be a non-negative integer")


#: What each quota operation is called in a lost-connection message, and what was (not) recorded.
_LOST = {
    "reserve": ("charging quota (reservation {rid})", "the charge was not recorded",
                "whether the charge was recorded is not known: retrying with the same reservation id never charges "
                "twice, and releasing it gives back whatever was recorded"),
    "settle": ("settling quota reservation {rid}", "the settlement was not recorded (the reservation still holds its charge)",
               "whether the settlement was recorded is not known: settling it again is safe"),
    "release": ("releasing quota reservation {rid}", "the refund was not recorded (the reservation still holds its charge)",
                "whether the refund was recorded is not known: releasing it again is safe"),
}  # fmt: skip


class SqlStore(KeysSqlMixin, CredentialStore):
    """CRUD in portable SQL (PostgreSQL ≥ 9.5 / SQLite ≥ 3.35: ON CONFLICT, RETURNING)."""

    #: Row lock of a SELECT inside a transaction (SQLite's ``BEGIN IMMEDIATE`` already locks the database).
    _ROW_LOCK = ""
    #: The pauses before each retry of a quota transaction after a lost connection (one retry per entry).
    quota_retry_delays: tuple[float, ...] = (0.05, 0.25)

    async def schema_version(self) -> int:
        row = await self._fetchrow("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")
        return int(row["v"]) if row else 0

    # ------------------------------------------------------------------ tenants

    async def create_tenant(self, name: str, *, encrypt_public_key: str, encrypted_private_key: str, tenant_id: str | None = None) -> Tenant:
        row = await self._fetchrow(
            "INSERT INTO tenants (id, name, encrypt_public_key, encrypted_private_key) VALUES ($1, $2, $3, $4) RETURNING *",
            (tenant_id or new_id(), name, encrypt_public_key, encrypted_private_key),
            retry=False,
        )
        assert row is not None
        return _tenant(row)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._fetchrow("SELECT * FROM tenants WHERE id = $1", (tenant_id,))
        return _tenant(row) if row else None

    async def delete_tenant(self, tenant_id: str) -> bool:
        return bool(await self._fetch("DELETE FROM tenants WHERE id = $1 RETURNING id", (tenant_id,)))

    # ------------------------------------------------------------------ providers

    async def upsert_provider(
        self,
        tenant_id: str,
        provider_name: str,
        *,
        provider_type: ProviderType | str = ProviderType.CUSTOM,
        encrypted_config: dict[str, Any] | str | None = None,
        is_valid: bool = True,
        quota_type: str = "",
        quota_limit: int | None = None,
        quota_used: int | None = None,
    ) -> ProviderRecord:
        row = await self._fetchrow(
            "INSERT INTO providers (id, tenant_id, provider_name, provider_type, encrypted_config, is_valid,"
            " quota_type, quota_limit, quota_used)"
            " VALUES ($1, $2, $3, $4, $5, CAST($6 AS BOOLEAN), $7, CAST($8 AS BIGINT), COALESCE(CAST($9 AS BIGINT), 0))"
            " ON CONFLICT (tenant_id, provider_name, provider_type, quota_type) DO UPDATE SET"
            " encrypted_config = excluded.encrypted_config, is_valid = excluded.is_valid,"
            " quota_limit = excluded.quota_limit,"
            " quota_used = COALESCE(CAST($9 AS BIGINT), providers.quota_used),"
            " updated_at = CURRENT_TIMESTAMP RETURNING *",
            (new_id(), tenant_id, provider_name, _ptype(provider_type), dump_config(encrypted_config),
             is_valid, quota_type, quota_limit, quota_used),
        )  # fmt: skip
        assert row is not None
        return _provider(row)

    async def get_providers(self, tenant_id: str, provider_name: str | None = None, *, provider_type: ProviderType | str | None = None) -> list[ProviderRecord]:
        rows = await self._fetch(
            "SELECT * FROM providers WHERE tenant_id = $1"
            " AND (CAST($2 AS TEXT) IS NULL OR provider_name = $2)"
            " AND (CAST($3 AS TEXT) IS NULL OR provider_type = $3)"
            f" ORDER BY provider_name, provider_type, {_QUOTA_RANK}",
            (tenant_id, provider_name, None if provider_type is None else _ptype(provider_type)),
        )
        return [_provider(r) for r in rows]

    async def delete_provider(self, tenant_id: str, provider_name: str, *, provider_type: ProviderType | str = ProviderType.CUSTOM, quota_type: str = "") -> bool:
        rows = await self._fetch(
            "DELETE FROM providers WHERE tenant_id = $1 AND provider_name = $2 AND provider_type = $3"
            " AND quota_type = $4 RETURNING id",
            (tenant_id, provider_name, _ptype(provider_type), quota_type),
        )
        return bool(rows)

    async def mark_provider_used(self, tenant_id: str, provider_name: str) -> None:
        await self._fetch(
            "UPDATE providers SET last_used = CURRENT_TIMESTAMP WHERE tenant_id = $1 AND provider_name = $2 RETURNING id",
            (tenant_id, provider_name),
        )

    # ------------------------------------------------------------------ quota reservations

    async def reserve_quota(self, tenant_id: str, provider_name: str, amount: int, *, quota_type: str | None, reservation_id: str) -> QuotaReservationRecord | None:
        _check_amount(amount)

        async def body(execute: Execute, retried: bool) -> QuotaReservationRecord | None:
            if retried:  # the first attempt may have committed before its reply was lost
                rows = await execute("SELECT * FROM quota_reservations WHERE id = $1", (reservation_id,))
                if rows:
                    return _reservation(rows[0])
            picked = await execute(
                "UPDATE providers SET quota_used = quota_used + CAST($4 AS BIGINT), updated_at = CURRENT_TIMESTAMP"
                " WHERE id = (SELECT id FROM providers WHERE tenant_id = $1 AND provider_name = $2"
                " AND provider_type = $3 AND (CAST($5 AS TEXT) IS NULL OR quota_type = $5)"
                f" AND {_FITS} ORDER BY {_QUOTA_RANK} LIMIT 1)"
                f" AND {_FITS} RETURNING id, quota_type",
                (tenant_id, provider_name, ProviderType.SYSTEM.value, amount, quota_type),
            )
            if not picked:
                return None
            rows = await execute(
                "INSERT INTO quota_reservations (id, provider_id, tenant_id, provider_name, quota_type, reserved, charged)"
                " VALUES ($1, $2, $3, $4, $5, CAST($6 AS BIGINT), CAST($6 AS BIGINT)) RETURNING *",
                (reservation_id, picked[0]["id"], tenant_id, provider_name, picked[0]["quota_type"], amount),
            )  # a concurrent attempt with this id already inserted it: a conflict, rolled back, then read
            return _reservation(rows[0])

        return await self._quota_transaction("reserve", reservation_id, body)

    async def settle_quota(self, reservation_id: str, actual_amount: int) -> QuotaReservationRecord | None:
        _check_amount(actual_amount)

        async def body(execute: Execute, retried: bool) -> QuotaReservationRecord | None:
            row = await self._open_reservation(execute, reservation_id)
            if row is None or row["state"] != "reserved":
                return None if row is None else _reservation(row)
            charged = int(row["charged"])
            delta = actual_amount - charged
            if delta:
                (prov,) = await execute(f"SELECT quota_limit, quota_used FROM providers WHERE id = $1{self._ROW_LOCK}", (row["provider_id"],))
                limit, used = prov["quota_limit"], int(prov["quota_used"])
                if delta < 0:  # refund (quota_used never below 0); the call is charged its real use
                    change, charged = -min(-delta, used), actual_amount
                elif limit == -1:
                    change = delta
                else:  # charge the rest, clamped at the limit
                    change = max(0, min(delta, (limit if limit is not None else used) - used))
                if change:
                    await execute(
                        "UPDATE providers SET quota_used = quota_used + CAST($2 AS BIGINT), updated_at = CURRENT_TIMESTAMP WHERE id = $1",
                        (row["provider_id"], change),
                    )
                if delta > 0:
                    charged += change
            rows = await execute(
                "UPDATE quota_reservations SET charged = CAST($2 AS BIGINT), actual = CAST($3 AS BIGINT), state = 'settled',"
                " updated_at = CURRENT_TIMESTAMP WHERE id = $1 RETURNING *",
                (reservation_id, charged, actual_amount),
            )
            return _reservation(rows[0])

        return await self._quota_transaction("settle", reservation_id, body)

    async def release_quota(self, reservation_id: str) -> QuotaReservationRecord | None:
        async def body(execute: Execute, retried: bool) -> QuotaReservationRecord | None:
            row = await self._open_reservation(execute, reservation_id)
            if row is None or row["state"] != "reserved":
                return None if row is None else _reservation(row)
            if row["charged"]:
                await execute(
                    "UPDATE providers SET quota_used = CASE WHEN quota_used >= CAST($2 AS BIGINT)"
                    " THEN quota_used - CAST($2 AS BIGINT) ELSE 0 END, updated_at = CURRENT_TIMESTAMP WHERE id = $1",
                    (row["provider_id"], row["charged"]),
                )
            rows = await execute(
                "UPDATE quota_reservations SET charged = 0, state = 'released', updated_at = CURRENT_TIMESTAMP"
                " WHERE id = $1 RETURNING *",
                (reservation_id,),
            )
            return _reservation(rows[0])

        return await self._quota_transaction("release", reservation_id, body)

    async def get_quota_reservation(self, reservation_id: str) -> QuotaReservationRecord | None:
        row = await self._fetchrow("SELECT * FROM quota_reservations WHERE id = $1", (reservation_id,))
        return _reservation(row) if row else None

    async def sweep_quota_reservations(self, before: datetime) -> tuple[int, int]:
        when = self._timestamp(before)
        deleted = await self._fetch("DELETE FROM quota_reservations WHERE state <> 'reserved' AND updated_at < $1 RETURNING id", (when,))
        stale = await self._fetch("SELECT id FROM quota_reservations WHERE state = 'reserved' AND created_at < $1", (when,))
        released = 0
        for row in stale:  # one transaction each: the same locks in the same order as a concurrent settle
            rec = await self.release_quota(row["id"])
            released += rec is not None and rec.state == "released"
        return released, len(deleted)

    async def _open_reservation(self, execute: Execute, reservation_id: str) -> Row | None:
        rows = await execute(f"SELECT * FROM quota_reservations WHERE id = $1{self._ROW_LOCK}", (reservation_id,))
        return rows[0] if rows else None

    async def _quota_transaction(self, op: str, reservation_id: str, body: Callable[[Execute, bool], Awaitable[T]]) -> T:
        """Run a quota transaction, retried with the same reservation id after a lost connection."""
        maybe_recorded = False
        lost: StoreUnavailableError | None = None
        pauses = (0.0, *self.quota_retry_delays)
        for attempt, pause in enumerate(pauses):
            if pause:
                await asyncio.sleep(pause)
            retried = attempt > 0

            async def run(execute: Execute) -> T:
                return await body(execute, retried)  # noqa: B023 - awaited within this iteration

            try:
                return await self._transaction(run)
            except StoreConflictError:
                if op != "reserve" or attempt + 1 == len(pauses):
                    raise
                maybe_recorded = True  # another attempt with this id got there first: read it back
            except StoreUnavailableError as exc:
                lost = exc
                maybe_recorded = maybe_recorded or exc.commit_unknown
        what, not_recorded, unknown = _LOST[op]
        message = (
            f"the database connection was lost while {what.format(rid=reservation_id)}; "
            f"{unknown if maybe_recorded else not_recorded} ({lost})"
        )
        raise QuotaChargeError(message, reservation_id=reservation_id, recorded=None if maybe_recorded else False) from lost

    async def list_tenants(self) -> list[Tenant]:
        return [_tenant(row) for row in await self._fetch("SELECT * FROM tenants ORDER BY created_at, id")]

    async def count_sealed_tenants(self) -> int:
        row = await self._fetchrow("SELECT COUNT(*) AS n FROM tenants WHERE encrypted_private_key <> ''")
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------------ provider models

    async def upsert_provider_model(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, *, encrypted_config: dict[str, Any] | str | None = None, is_valid: bool = True) -> ProviderModelRecord:
        row = await self._fetchrow(
            "INSERT INTO provider_models (id, tenant_id, provider_name, model_name, model_type, encrypted_config, is_valid)"
            " VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BOOLEAN))"
            " ON CONFLICT (tenant_id, provider_name, model_name, model_type) DO UPDATE SET"
            " encrypted_config = excluded.encrypted_config, is_valid = excluded.is_valid,"
            " updated_at = CURRENT_TIMESTAMP RETURNING *",
            (new_id(), tenant_id, provider_name, model_name, origin_model_type(model_type), dump_config(encrypted_config), is_valid),
        )
        assert row is not None
        return _provider_model(row)

    async def get_provider_models(self, tenant_id: str, provider_name: str | None = None) -> list[ProviderModelRecord]:
        rows = await self._fetch(
            "SELECT * FROM provider_models WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR provider_name = $2)"
            " ORDER BY provider_name, model_type, model_name",
            (tenant_id, provider_name),
        )
        return [_provider_model(r) for r in rows]

    async def get_provider_model(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str) -> ProviderModelRecord | None:
        row = await self._fetchrow(
            "SELECT * FROM provider_models WHERE tenant_id = $1 AND provider_name = $2 AND model_name = $3 AND model_type = $4",
            (tenant_id, provider_name, model_name, origin_model_type(model_type)),
        )
        return _provider_model(row) if row else None

    async def delete_provider_model(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str) -> bool:
        rows = await self._fetch(
            "DELETE FROM provider_models WHERE tenant_id = $1 AND provider_name = $2 AND model_name = $3"
            " AND model_type = $4 RETURNING id",
            (tenant_id, provider_name, model_name, origin_model_type(model_type)),
        )
        return bool(rows)

    # ------------------------------------------------------------------ model settings

    async def upsert_model_setting(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, *, enabled: bool | None = None, load_balancing_enabled: bool | None = None) -> ProviderModelSetting:
        row = await self._fetchrow(
            "INSERT INTO provider_model_settings (id, tenant_id, provider_name, model_name, model_type, enabled,"
            " load_balancing_enabled) VALUES ($1, $2, $3, $4, $5,"
            " COALESCE(CAST($6 AS BOOLEAN), TRUE), COALESCE(CAST($7 AS BOOLEAN), FALSE))"
            " ON CONFLICT (tenant_id, provider_name, model_name, model_type) DO UPDATE SET"
            " enabled = COALESCE(CAST($6 AS BOOLEAN), provider_model_settings.enabled),"
            " load_balancing_enabled = COALESCE(CAST($7 AS BOOLEAN), provider_model_settings.load_balancing_enabled),"
            " updated_at = CURRENT_TIMESTAMP RETURNING *",
            (new_id(), tenant_id, provider_name, model_name, origin_model_type(model_type), enabled, load_balancing_enabled),
        )
        assert row is not None
        return _setting(row)

    async def set_model_fallbacks(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, fallbacks: str | None) -> ProviderModelSetting:
        """Store a model's fallback chain (JSON text, None clears it); creates the setting row when missing."""
        row = await self._fetchrow(
            "INSERT INTO provider_model_settings (id, tenant_id, provider_name, model_name, model_type, fallbacks)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (tenant_id, provider_name, model_name, model_type) DO UPDATE SET"
            " fallbacks = $6, updated_at = CURRENT_TIMESTAMP RETURNING *",
            (new_id(), tenant_id, provider_name, model_name, origin_model_type(model_type), fallbacks),
        )
        assert row is not None
        return _setting(row)

    async def get_model_settings(self, tenant_id: str, provider_name: str | None = None) -> list[ProviderModelSetting]:
        rows = await self._fetch(
            "SELECT * FROM provider_model_settings WHERE tenant_id = $1"
            " AND (CAST($2 AS TEXT) IS NULL OR provider_name = $2) ORDER BY provider_name, model_type, model_name",
            (tenant_id, provider_name),
        )
        return [_setting(r) for r in rows]

    # ------------------------------------------------------------------ load balancing configs

    async def add_lb_config(self, tenant_id: str, provider_name: str, model_name: str, model_type: ModelType | str, name: str, *, encrypted_config: dict[str, Any] | str | None = None, enabled: bool = True) -> LoadBalancingConfig:
        row = await self._fetchrow(
            "INSERT INTO load_balancing_model_configs (id, tenant_id, provider_name, model_name, model_type, name,"
            " encrypted_config, enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, CAST($8 AS BOOLEAN)) RETURNING *",
            (new_id(), tenant_id, provider_name, model_name, origin_model_type(model_type), name, dump_config(encrypted_config), enabled),
            retry=False,
        )
        assert row is not None
        return _lb(row)

    async def get_lb_configs(self, tenant_id: str, provider_name: str, model_name: str | None = None, model_type: ModelType | str | None = None) -> list[LoadBalancingConfig]:
        rows = await self._fetch(
            "SELECT * FROM load_balancing_model_configs WHERE tenant_id = $1 AND provider_name = $2"
            " AND (CAST($3 AS TEXT) IS NULL OR model_name = $3) AND (CAST($4 AS TEXT) IS NULL OR model_type = $4)"
            " ORDER BY created_at, id",
            (tenant_id, provider_name, model_name, None if model_type is None else origin_model_type(model_type)),
        )
        return [_lb(r) for r in rows]

    async def update_lb_config(self, tenant_id: str, config_id: str, *, name: str | None = None, encrypted_config: dict[str, Any] | str | None = None, enabled: bool | None = None) -> LoadBalancingConfig | None:
        row = await self._fetchrow(
            "UPDATE load_balancing_model_configs SET name = COALESCE(CAST($3 AS TEXT), name),"
            " encrypted_config = COALESCE(CAST($4 AS TEXT), encrypted_config),"
            " enabled = COALESCE(CAST($5 AS BOOLEAN), enabled), updated_at = CURRENT_TIMESTAMP"
            " WHERE tenant_id = $1 AND id = $2 RETURNING *",
            (tenant_id, config_id, name, dump_config(encrypted_config), enabled),
        )
        return _lb(row) if row else None

    async def delete_lb_config(self, tenant_id: str, config_id: str) -> bool:
        rows = await self._fetch(
            "DELETE FROM load_balancing_model_configs WHERE tenant_id = $1 AND id = $2 RETURNING id", (tenant_id, config_id)
        )
        return bool(rows)

    # ------------------------------------------------------------------ default models

    async def set_default_model(self, tenant_id: str, model_type: ModelType | str, provider_name: str, model_name: str) -> TenantDefaultModel:
        row = await self._fetchrow(
            "INSERT INTO tenant_default_models (id, tenant_id, model_type, provider_name, model_name)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, model_type) DO UPDATE SET"
            " provider_name = excluded.provider_name, model_name = excluded.model_name,"
            " updated_at = CURRENT_TIMESTAMP RETURNING *",
            (new_id(), tenant_id, origin_model_type(model_type), provider_name, model_name),
        )
        assert row is not None
        return _default(row)

    async def get_default_model(self, tenant_id: str, model_type: ModelType | str) -> TenantDefaultModel | None:
        row = await self._fetchrow(
            "SELECT * FROM tenant_default_models WHERE tenant_id = $1 AND model_type = $2",
            (tenant_id, origin_model_type(model_type)),
        )
        return _default(row) if row else None

    async def get_default_models(self, tenant_id: str) -> list[TenantDefaultModel]:
        rows = await self._fetch("SELECT * FROM tenant_default_models WHERE tenant_id = $1 ORDER BY model_type", (tenant_id,))
        return [_default(r) for r in rows]

    async def delete_default_model(self, tenant_id: str, model_type: ModelType | str) -> bool:
        rows = await self._fetch(
            "DELETE FROM tenant_default_models WHERE tenant_id = $1 AND model_type = $2 RETURNING id",
            (tenant_id, origin_model_type(model_type)),
        )
        return bool(rows)
