"""What a call charges on a hosted (SYSTEM) provider: :class:`QuotaPlan`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from arun.manager.errors import QuotaExceededError

if TYPE_CHECKING:
    from arun.manager.store.base import CredentialStore

__all__ = ["QUOTA_UNITS", "QuotaPlan", "QuotaReservation"]

#: Quota unit per hosted provider (Dify's hosting configuration); others default to ``times``.
QUOTA_UNITS = {
    "openai": "credits",
    "azure_openai": "times",
    "anthropic": "tokens",
    "minimax": "tokens",
    "spark": "tokens",
    "zhipuai": "tokens",
}


@dataclass(frozen=True, slots=True)
class QuotaReservation:
    """What one call holds: its reservation id, the quota row type charged and the units reserved."""

    id: str
    quota_type: str
    amount: int


@dataclass
class QuotaPlan:
    """Charges one SYSTEM provider's quota rows (``quota_limit != -1``) through store reservations.

    :meth:`reserve` takes the call's units *before* the call, atomically and under a fresh
    reservation id -- ``times`` and ``credits`` 1, ``tokens`` the caller's estimate (prompt
    tokens + ``max_tokens``) -- from the first row in paid > free > trial order that can
    take them whole; none can → :class:`QuotaExceededError`, no upstream call.
    :meth:`settle` charges the real use instead (``tokens``: the increase clamped at the
    limit, so ``quota_used`` never passes it; the rest refunded), :meth:`release` gives the
    reservation back (a call that failed before producing anything).  Every step is
    idempotent by reservation id, so the store retries lost connections without charging
    twice; :class:`~arun.manager.store.QuotaChargeError` when it still cannot.
    """

    store: CredentialStore = field(repr=False)
    tenant_id: str
    provider: str
    unit: str
    quota_types: list[str]

    async def reserve(self, estimate: int = 1) -> QuotaReservation:
        amount = max(1, int(estimate)) if self.unit == "tokens" else 1
        rid = str(uuid.uuid4())
        for qt in self.quota_types:
            if await self.store.reserve_quota(self.tenant_id, self.provider, amount, quota_type=qt, reservation_id=rid):
                return QuotaReservation(rid, qt, amount)
        needs = f" (this call reserves {amount} tokens)" if self.unit == "tokens" and amount > 1 else ""
        raise QuotaExceededError(f"Your quota for provider {self.provider} has been exhausted.{needs}")

    async def settle(self, reservation: QuotaReservation, actual_tokens: int | None) -> None:
        """Charge the real use: ``tokens`` its total (None: keep the reservation); other units their 1."""
        actual = reservation.amount
        if self.unit == "tokens" and actual_tokens is not None:
            actual = max(0, int(actual_tokens))
        await self.store.settle_quota(reservation.id, actual)

    async def release(self, reservation: QuotaReservation) -> None:
        await self.store.release_quota(reservation.id)
