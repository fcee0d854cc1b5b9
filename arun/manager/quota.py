"""What a call charges on a hosted (SYSTEM) provider: :class:`QuotaPlan`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from arun.manager.errors import QuotaExceededError

if TYPE_CHECKING:
    from arun.manager.store.base import CredentialStore

__all__ = ["QUOTA_UNITS", "QuotaPlan", "refund_quota"]

#: Quota unit per hosted provider (Dify's hosting configuration); others default to ``times``.
QUOTA_UNITS = {
    "openai": "credits",
    "azure_openai": "times",
    "anthropic": "tokens",
    "minimax": "tokens",
    "spark": "tokens",
    "zhipuai": "tokens",
}


@dataclass
class QuotaPlan:
    """Charges one SYSTEM provider's quota rows (``quota_limit != -1``) through the store.

    ``times`` and ``credits`` reserve their amount (1) atomically *before* the call —
    no row can take it → :class:`QuotaExceededError`, no upstream call — and give it
    back when the call fails before producing anything.  ``tokens`` reserve 1 token
    (Dify's validity rule: ``limit > used``) and, after success, charge the rest of
    ``usage.total_tokens``, clamped at the limit (so ``quota_used`` never exceeds it).
    Rows are tried in paid > free > trial order.
    """

    store: CredentialStore = field(repr=False)
    tenant_id: str
    provider: str
    unit: str
    quota_types: list[str]

    async def reserve(self) -> str:
        for qt in self.quota_types:
            if await self.store.deduct_quota(self.tenant_id, self.provider, 1, quota_type=qt):
                return qt
        raise QuotaExceededError(f"Your quota for provider {self.provider} has been exhausted.")

    async def release(self, quota_type: str) -> None:
        await refund_quota(self.store, self.tenant_id, self.provider, quota_type, 1)

    async def settle(self, quota_type: str, total_tokens: int | None) -> None:
        if self.unit != "tokens" or not total_tokens or total_tokens <= 1:
            return
        extra = int(total_tokens) - 1
        if await self.store.deduct_quota(self.tenant_id, self.provider, extra, quota_type=quota_type):
            return
        # does not fit: take what is left (clamp), retrying if others charge concurrently
        for _ in range(8):
            rows = [r for r in await self.store.get_providers(self.tenant_id, self.provider, provider_type="system") if r.quota_type == quota_type]
            if not rows or rows[0].quota_limit in (None, -1):
                return
            left = min(extra, int(rows[0].quota_limit) - int(rows[0].quota_used))
            if left <= 0 or await self.store.deduct_quota(self.tenant_id, self.provider, left, quota_type=quota_type):
                return


async def refund_quota(store: CredentialStore, tenant_id: str, provider: str, quota_type: str, amount: int) -> None:
    """Give back a reservation (``quota_used - amount``, never below 0)."""
    await store.refund_quota(tenant_id, provider, amount, quota_type=quota_type)
