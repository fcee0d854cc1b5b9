"""Hosted (SYSTEM) provider rows and their quotas: configure, read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.errors import ParameterValidationError
from arun.manager.core import _META_RESTRICT, _META_UNIT, _QUOTA_TYPES, ManagerCore
from arun.manager.crypto import (
    encrypt_credentials,
)
from arun.manager.store import (
    ProviderType,
)
from arun.manager.views import QuotaInfo


class QuotaMixin(ManagerCore):
    """Hosted (SYSTEM) provider rows and their quotas."""

    # -- system quota ------------------------------------------------------------------------

    async def set_system_quota(
        self,
        tenant_id: str,
        provider: str,
        *,
        quota_limit: int,
        quota_type: str = "trial",
        quota_unit: str | None = None,
        credentials: Mapping[str, Any] | None = None,
        quota_used: int | None = None,
        restrict_models: list[str] | None = None,
    ) -> QuotaInfo:
        """Configure a hosted (SYSTEM) provider row: hosting credentials plus a quota (−1 = unlimited).

        The credentials are stored encrypted like custom ones (not validated: they
        are the operator's); ``quota_unit`` is ``times`` | ``tokens`` | ``credits``.
        """
        cfg = await self._config(tenant_id)
        self._schema(provider)
        if not isinstance(quota_limit, int) or isinstance(quota_limit, bool) or quota_limit < -1:
            raise ParameterValidationError("quota_limit should be an integer >= -1 (-1: unlimited)", parameter="quota_limit")
        if quota_used is not None and (not isinstance(quota_used, int) or isinstance(quota_used, bool) or quota_used < 0):
            raise ParameterValidationError("quota_used should be a non-negative integer", parameter="quota_used")
        if quota_type not in _QUOTA_TYPES:
            raise ParameterValidationError(f"quota_type must be one of {_QUOTA_TYPES}", parameter="quota_type")
        unit = quota_unit or self._quota_unit(provider, {})
        if unit not in ("times", "tokens", "credits"):
            raise ParameterValidationError("quota_unit must be times, tokens or credits", parameter="quota_unit")
        config: dict[str, Any] = encrypt_credentials(cfg.key, dict(credentials or {}), self._secrets(provider, model_level=False))
        config[_META_UNIT] = unit
        if restrict_models is not None:
            config[_META_RESTRICT] = list(restrict_models)
        rec = await self.store.upsert_provider(
            tenant_id, provider, provider_type=ProviderType.SYSTEM, encrypted_config=config, is_valid=True,
            quota_type=quota_type, quota_limit=quota_limit, quota_used=quota_used,
        )  # fmt: skip
        self.invalidate(tenant_id)
        return QuotaInfo(rec.quota_type, unit, rec.quota_limit, rec.quota_used, rec.quota_valid)

    async def get_quotas(self, tenant_id: str, provider: str) -> list[QuotaInfo]:
        """Fresh from the store (quota usage changes with every call)."""
        await self._config(tenant_id)
        rows = await self.store.get_providers(tenant_id, provider, provider_type=ProviderType.SYSTEM)
        return [self._quota_info(provider, r) for r in rows]

