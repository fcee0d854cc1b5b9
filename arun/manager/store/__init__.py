"""Credential stores, chosen by URL.

``open_store(url)`` accepts

* ``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's rule),
  ``sqlite://:memory:`` or ``sqlite://`` — the embedded default;
* ``postgresql://user@host:port/db`` (also ``postgres://``, ``postgresql+asyncpg://``).

The schema is created or migrated on open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arun.errors import ArunUsageError
from arun.manager.store.base import (
    CredentialStore,
    LoadBalancingConfig,
    ProviderModelRecord,
    ProviderModelSetting,
    ProviderQuotaType,
    ProviderRecord,
    ProviderType,
    QuotaChargeError,
    QuotaReservationRecord,
    SpendRecord,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    Tenant,
    TenantDefaultModel,
    VirtualKeyRecord,
    choose_quota,
    parse_config,
    quota_is_valid,
    quota_rank,
)

__all__ = [
    "CredentialStore",
    "LoadBalancingConfig",
    "ProviderModelRecord",
    "ProviderModelSetting",
    "ProviderQuotaType",
    "ProviderRecord",
    "ProviderType",
    "QuotaChargeError",
    "QuotaReservationRecord",
    "SpendRecord",
    "StoreConflictError",
    "StoreError",
    "StoreUnavailableError",
    "Tenant",
    "TenantDefaultModel",
    "VirtualKeyRecord",
    "choose_quota",
    "quota_rank",
    "master_key_path",
    "open_store",
    "parse_config",
    "quota_is_valid",
    "sqlite_path",
]

_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def sqlite_path(url: str) -> str:
    """The file path (or ``":memory:"``) of a ``sqlite://`` URL."""
    if not url.startswith("sqlite://"):
        raise ArunUsageError("not a sqlite:// URL")
    rest = url[len("sqlite://") :]
    if rest.startswith("/"):
        rest = rest[1:]
    return rest if rest and rest != ":memory:" else ":memory:"


def master_key_path(url: str) -> Path | None:
    """Where the embedded default keeps a generated master key: ``<db file>.key`` (None for memory/PostgreSQL)."""
    if not url.startswith("sqlite://"):
        return None
    path = sqlite_path(url)
    return None if path == ":memory:" else Path(path + ".key")


async def open_store(url: str, **options: Any) -> CredentialStore:
    """Open (and migrate) the store named by ``url``; ``options`` go to the store class."""
    if url.startswith("sqlite://"):
        from arun.manager.store.sqlite import SqliteStore

        return await SqliteStore(sqlite_path(url), **options).open()
    if url.startswith(_PG_SCHEMES):
        from arun.manager.store.postgres import PostgresStore

        dsn = "postgresql://" + url.split("://", 1)[1]
        return await PostgresStore(dsn, **options).open()
    raise ArunUsageError(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")
