"""Tenants: create (with a fresh key pair), get, list, delete."""

from __future__ import annotations

import asyncio
import uuid

from arun.manager.core import ManagerCore
from arun.manager.crypto import (
    TenantKey,
)
from arun.manager.store import (
    Tenant,
)


class TenantsMixin(ManagerCore):
    """Tenants: create (with a fresh key pair), get, list, delete."""

    # -- tenants --------------------------------------------------------------------------

    async def create_tenant(self, name: str, *, tenant_id: str | None = None) -> Tenant:
        """Create a tenant with a fresh RSA-2048 key pair (private half sealed under the master key)."""
        await self._ready()
        tid = tenant_id or str(uuid.uuid4())
        key = await asyncio.to_thread(TenantKey.generate, tid, self._master_key())
        tenant = await self.store.create_tenant(name, encrypt_public_key=key.public_pem, encrypted_private_key=str(key.encrypted_private_key), tenant_id=tid)
        self.invalidate(tid)
        return tenant

    async def get_tenant(self, tenant_id: str) -> Tenant:
        return (await self._config(tenant_id)).tenant

    async def list_tenants(self) -> list[Tenant]:
        await self._ready()
        return await self.store.list_tenants()

    async def delete_tenant(self, tenant_id: str) -> bool:
        await self._ready()
        ok = await self.store.delete_tenant(tenant_id)
        self.invalidate(tenant_id)
        return ok

