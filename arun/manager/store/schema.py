"""Ordered schema migrations shared by the SQLite and PostgreSQL stores.

``schema_version`` holds one row per applied migration.  Each migration runs in
one transaction together with its ``schema_version`` row (PostgreSQL also takes
an advisory lock, SQLite ``BEGIN IMMEDIATE``), so concurrent openers apply it
once and a failure leaves no half-built schema.  Append new migrations at the
end; never edit an applied one.

``{ts}`` is the timestamp column type of the dialect (``TIMESTAMPTZ`` or ``TEXT``).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION_DDL", "render"]

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " applied_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)

_V1 = [
    """CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        encrypt_public_key TEXT NOT NULL,
        encrypted_private_key TEXT NOT NULL,
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    """CREATE TABLE providers (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        provider_name TEXT NOT NULL,
        provider_type TEXT NOT NULL DEFAULT 'custom' CHECK (provider_type IN ('custom', 'system')),
        encrypted_config TEXT,
        is_valid BOOLEAN NOT NULL DEFAULT FALSE,
        quota_type TEXT NOT NULL DEFAULT '',
        quota_limit BIGINT CHECK (quota_limit IS NULL OR quota_limit >= -1),
        quota_used BIGINT NOT NULL DEFAULT 0 CHECK (quota_used >= 0),
        last_used {ts},
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (tenant_id, provider_name, provider_type, quota_type)
    )""",
    """CREATE TABLE provider_models (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        provider_name TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_type TEXT NOT NULL,
        encrypted_config TEXT,
        is_valid BOOLEAN NOT NULL DEFAULT FALSE,
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (tenant_id, provider_name, model_name, model_type)
    )""",
    """CREATE TABLE provider_model_settings (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        provider_name TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_type TEXT NOT NULL,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        load_balancing_enabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (tenant_id, provider_name, model_name, model_type)
    )""",
    """CREATE TABLE load_balancing_model_configs (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        provider_name TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_type TEXT NOT NULL,
        name TEXT NOT NULL,
        encrypted_config TEXT,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    "CREATE INDEX load_balancing_model_config_tenant_provider_model_idx"
    " ON load_balancing_model_configs (tenant_id, provider_name, model_type, model_name)",
    """CREATE TABLE tenant_default_models (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        model_type TEXT NOT NULL,
        provider_name TEXT NOT NULL,
        model_name TEXT NOT NULL,
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        UNIQUE (tenant_id, model_type)
    )""",
]

#: v2: a model's fallback chain (policy layer), JSON text:
#: ``[{"provider": ..., "model": ..., "triggers": ["InvokeRateLimitError", ...]}, ...]``.
_V2 = ["ALTER TABLE provider_model_settings ADD COLUMN fallbacks TEXT"]

#: v3: quota charged through reservation ids, so that a charge retried after a lost reply is
#: never applied twice.  ``charged`` is what the call is charged now (after settling its real
#: use clamped at the limit, after releasing 0), ``actual`` the real use it was settled with.
_V3 = [
    """CREATE TABLE quota_reservations (
        id TEXT PRIMARY KEY,
        provider_id TEXT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
        tenant_id TEXT NOT NULL,
        provider_name TEXT NOT NULL,
        quota_type TEXT NOT NULL,
        reserved BIGINT NOT NULL CHECK (reserved >= 0),
        charged BIGINT NOT NULL CHECK (charged >= 0),
        actual BIGINT,
        state TEXT NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved', 'settled', 'released')),
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    "CREATE INDEX quota_reservations_state_idx ON quota_reservations (state, created_at)",
    "CREATE INDEX quota_reservations_provider_idx ON quota_reservations (provider_id)",
]

#: v4: the gateway's virtual keys (stored as the SHA-256 of the key, mapped to a tenant, scoped to
#: models, per-key rpm/tpm, a budget) and its spend log (one row per request).  Money is integer
#: units of 1e-7 of the currency (``*_e7``: Dify's price precision), so sums are exact in both dialects.
_V4 = [
    """CREATE TABLE virtual_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        key_hint TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        models TEXT,
        rpm BIGINT CHECK (rpm IS NULL OR rpm > 0),
        tpm BIGINT CHECK (tpm IS NULL OR tpm > 0),
        budget_e7 BIGINT CHECK (budget_e7 IS NULL OR budget_e7 >= 0),
        currency TEXT NOT NULL DEFAULT 'USD',
        spent_e7 BIGINT NOT NULL DEFAULT 0,
        revoked_at {ts},
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    "CREATE INDEX virtual_keys_tenant_idx ON virtual_keys (tenant_id)",
    """CREATE TABLE spend_log (
        id TEXT PRIMARY KEY,
        key_id TEXT,
        tenant_id TEXT,
        route TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        prompt_tokens BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        total_tokens BIGINT NOT NULL DEFAULT 0,
        price_e7 BIGINT NOT NULL DEFAULT 0,
        currency TEXT,
        latency_ms DOUBLE PRECISION,
        ttft_ms DOUBLE PRECISION,
        outcome TEXT NOT NULL,
        status INTEGER,
        error TEXT,
        cache_hit BOOLEAN NOT NULL DEFAULT FALSE,
        stream BOOLEAN NOT NULL DEFAULT FALSE,
        created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP
    )""",
    "CREATE INDEX spend_log_key_idx ON spend_log (key_id, created_at)",
    "CREATE INDEX spend_log_tenant_idx ON spend_log (tenant_id, created_at)",
]

#: (version, statements), in order.
MIGRATIONS: list[tuple[int, list[str]]] = [(1, _V1), (2, _V2), (3, _V3), (4, _V4)]


def render(statement: str, ts_type: str) -> str:
    return statement.replace("{ts}", ts_type)
