"""The gateway's rows in the store (migration 4): virtual keys and the spend log, in portable SQL.

Part of :class:`~arun.manager.store.sql.SqlStore` (``$n`` placeholders, run through the
backend's ``_fetch`` / ``_transaction``: :class:`~arun.manager.store.sql_backend.SqlBackend`).  Keys are stored as the SHA-256 of the key (the key
itself is shown once, when it is created, and never stored); money is integer units of 1e-7 of
the currency.  Spend rows are written in batches: one multi-row INSERT plus one ``spent_e7``
update per key, in one transaction, idempotent by request id (a batch retried after a lost
reply inserts nothing twice and charges nothing twice).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arun.manager.store.base import SpendRecord, VirtualKeyRecord, new_id, to_utc
from arun.manager.store.sql_backend import Execute, Row, SqlBackend

__all__ = ["KeysSqlMixin", "SPEND_COLUMNS"]

SPEND_COLUMNS = (
    "id", "key_id", "tenant_id", "route", "provider", "model", "prompt_tokens", "completion_tokens", "total_tokens",
    "price_e7", "currency", "latency_ms", "ttft_ms", "outcome", "status", "error", "cache_hit", "stream",
)  # fmt: skip
#: rows per INSERT statement (18 columns each: well under both dialects' parameter limits); a batch is
#: cut into these sizes, so the drivers' statement caches hold a handful of statements, not one per size
_SIZES = (64, 32, 16, 8, 4, 2, 1)


def _parts(n: int) -> list[tuple[int, int]]:
    out, start = [], 0
    for size in _SIZES:
        while n - start >= size:
            out.append((start, size))
            start += size
    return out


def _key(r: Row) -> VirtualKeyRecord:
    models = r["models"]
    return VirtualKeyRecord(
        id=r["id"], key_hash=r["key_hash"], key_hint=r["key_hint"], name=r["name"], tenant_id=r["tenant_id"],
        models=json.loads(models) if models else None, rpm=r["rpm"], tpm=r["tpm"], budget_e7=r["budget_e7"],
        currency=r["currency"], spent_e7=int(r["spent_e7"]), revoked_at=to_utc(r["revoked_at"]),
        created_at=to_utc(r["created_at"]),
    )  # fmt: skip


def _spend(r: Row) -> SpendRecord:
    return SpendRecord(
        id=r["id"], key_id=r["key_id"], tenant_id=r["tenant_id"], route=r["route"], provider=r["provider"],
        model=r["model"], prompt_tokens=int(r["prompt_tokens"]), completion_tokens=int(r["completion_tokens"]),
        total_tokens=int(r["total_tokens"]), price_e7=int(r["price_e7"]), currency=r["currency"],
        latency_ms=r["latency_ms"], ttft_ms=r["ttft_ms"], outcome=r["outcome"], status=r["status"], error=r["error"],
        cache_hit=bool(r["cache_hit"]), stream=bool(r["stream"]), created_at=to_utc(r["created_at"]),
    )  # fmt: skip


class KeysSqlMixin(SqlBackend):
    """Virtual keys and spend rows over the backend's ``_fetch`` / ``_transaction``."""

    # -- virtual keys ---------------------------------------------------------------------------

    async def create_virtual_key(
        self, tenant_id: str, key_hash: str, key_hint: str, *, name: str = "", models: Sequence[str] | None = None,
        rpm: int | None = None, tpm: int | None = None, budget_e7: int | None = None, currency: str = "USD",
        key_id: str | None = None,
    ) -> VirtualKeyRecord:  # fmt: skip
        row = await self._fetchrow(
            "INSERT INTO virtual_keys (id, key_hash, key_hint, name, tenant_id, models, rpm, tpm, budget_e7, currency)"
            " VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), CAST($8 AS BIGINT), CAST($9 AS BIGINT), $10) RETURNING *",
            (key_id or new_id(), key_hash, key_hint, name, tenant_id, json.dumps(list(models)) if models is not None else None,
             rpm, tpm, budget_e7, currency),
            retry=False,
        )  # fmt: skip
        assert row is not None
        return _key(row)

    async def get_virtual_key_by_hash(self, key_hash: str) -> VirtualKeyRecord | None:
        row = await self._fetchrow("SELECT * FROM virtual_keys WHERE key_hash = $1", (key_hash,))
        return _key(row) if row else None

    async def get_virtual_key(self, key_id: str) -> VirtualKeyRecord | None:
        row = await self._fetchrow("SELECT * FROM virtual_keys WHERE id = $1", (key_id,))
        return _key(row) if row else None

    async def list_virtual_keys(self, tenant_id: str | None = None) -> list[VirtualKeyRecord]:
        rows = await self._fetch(
            "SELECT * FROM virtual_keys WHERE (CAST($1 AS TEXT) IS NULL OR tenant_id = $1) ORDER BY created_at, id",
            (tenant_id,),
        )
        return [_key(r) for r in rows]

    async def revoke_virtual_key(self, key_id: str) -> bool:
        """Mark the key revoked (kept for the spend log); False when unknown or already revoked."""
        rows = await self._fetch(
            "UPDATE virtual_keys SET revoked_at = CURRENT_TIMESTAMP WHERE id = $1 AND revoked_at IS NULL RETURNING id",
            (key_id,),
        )
        return bool(rows)

    # -- spend log -----------------------------------------------------------------------------

    async def add_spend(self, rows: Sequence[SpendRecord]) -> int:
        """Insert spend rows and add their prices to their keys' ``spent_e7``, in one transaction.

        Idempotent by row id: rows already stored are skipped and not charged again.  Returns
        how many rows were inserted."""
        if not rows:
            return 0

        async def body(execute: Execute) -> int:
            inserted: list[str] = []
            for start, size in _parts(len(rows)):
                part = rows[start : start + size]
                n = len(SPEND_COLUMNS)
                values = ", ".join(
                    "(" + ", ".join(f"${i * n + j + 1}" for j in range(n)) + ")" for i in range(len(part))
                )
                args: list[Any] = []
                for r in part:
                    args += [r.id, r.key_id, r.tenant_id, r.route, r.provider, r.model, r.prompt_tokens,
                             r.completion_tokens, r.total_tokens, r.price_e7, r.currency, r.latency_ms, r.ttft_ms,
                             r.outcome, r.status, r.error, bool(r.cache_hit), bool(r.stream)]  # fmt: skip
                got = await execute(
                    f"INSERT INTO spend_log ({', '.join(SPEND_COLUMNS)}) VALUES {values} ON CONFLICT (id) DO NOTHING RETURNING id",
                    args,
                )
                inserted += [g["id"] for g in got]
            charges: dict[str, int] = {}
            fresh = set(inserted)
            for r in rows:
                if r.id in fresh and r.key_id and r.price_e7:
                    charges[r.key_id] = charges.get(r.key_id, 0) + r.price_e7
            for key_id, amount in sorted(charges.items()):
                await execute(
                    "UPDATE virtual_keys SET spent_e7 = spent_e7 + CAST($2 AS BIGINT) WHERE id = $1 RETURNING id",
                    (key_id, amount),
                )
            return len(inserted)

        return await self._transaction(body)

    async def list_spend(
        self, *, key_id: str | None = None, tenant_id: str | None = None, since: datetime | None = None, limit: int = 100,
    ) -> list[SpendRecord]:  # fmt: skip
        """The newest spend rows first."""
        rows = await self._fetch(
            "SELECT * FROM spend_log WHERE (CAST($1 AS TEXT) IS NULL OR key_id = $1)"
            f" AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2){' AND created_at >= $4' if since is not None else ''}"
            " ORDER BY created_at DESC, id DESC LIMIT CAST($3 AS BIGINT)",
            (key_id, tenant_id, int(limit), *((self._timestamp(since),) if since is not None else ())),
        )
        return [_spend(r) for r in rows]

    async def spend_summary(
        self, *, key_id: str | None = None, tenant_id: str | None = None, since: datetime | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Per (key, provider, model): requests, errors, cache hits, tokens and price (e7)."""
        rows = await self._fetch(
            "SELECT key_id, tenant_id, provider, model, currency, COUNT(*) AS requests,"
            " SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END) AS failed,"
            " SUM(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS cache_hits,"
            " SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,"
            " SUM(total_tokens) AS total_tokens, SUM(price_e7) AS price_e7 FROM spend_log"
            " WHERE (CAST($1 AS TEXT) IS NULL OR key_id = $1) AND (CAST($2 AS TEXT) IS NULL OR tenant_id = $2)"
            f"{' AND created_at >= $3' if since is not None else ''}"
            " GROUP BY key_id, tenant_id, provider, model, currency ORDER BY key_id, provider, model",
            (key_id, tenant_id, *((self._timestamp(since),) if since is not None else ())),
        )
        return [{k: (int(v) if k in ("requests", "failed", "cache_hits", "prompt_tokens", "completion_tokens",
                                     "total_tokens", "price_e7") and v is not None else v) for k, v in dict(r).items()}
                for r in rows]  # fmt: skip
