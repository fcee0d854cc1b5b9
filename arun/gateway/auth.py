"""Virtual keys: ``sk-arun-...`` keys stored as their SHA-256, each mapped to a tenant and scoped to models.

The key is shown once, when it is created; the store keeps the hash and a hint
(``sk-arun-…abcd``), never the key.  Lookups are cached in process for ``ttl`` seconds
(known and unknown keys alike, so a flood of bad keys does not reach the store), so a key
revoked by another process stops working within ``ttl`` seconds; one revoked through this
process stops at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from arun.gateway.errors import GatewayError
from arun.manager.store import VirtualKeyRecord
from arun.policy.limits import LimitSpec
from arun.pricing import QUANTUM

__all__ = ["KeyRing", "VirtualKey", "new_key", "hash_key", "key_hint", "to_e7", "from_e7"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_key() -> str:
    """A fresh key: ``sk-arun-`` + 40 random base62 characters (238 bits)."""
    return "sk-arun-" + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    prefix = "sk-arun-" if key.startswith("sk-arun-") else "sk-"
    return f"{prefix}…{key[-4:]}"


def to_e7(amount: Decimal | str | int | float) -> int:
    """An amount of currency in units of 1e-7 (Dify's price precision, :data:`arun.pricing.QUANTUM`), exact for Decimal input."""
    exact = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return int(exact.scaleb(7).to_integral_value())


def from_e7(units: int) -> Decimal:
    return Decimal(units).scaleb(-7).quantize(QUANTUM)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """What a request's key allows (no secret in it)."""

    id: str
    name: str
    tenant_id: str
    models: frozenset[str] | None
    rpm: int | None
    tpm: int | None
    budget_e7: int | None
    currency: str
    revoked: bool
    #: ``rpm`` / ``tpm`` as the limiter takes them (None: neither is set), built once per key lookup
    limits: LimitSpec | None = field(init=False)

    def __post_init__(self) -> None:
        limits = LimitSpec(rpm=self.rpm, tpm=self.tpm) if self.rpm is not None or self.tpm is not None else None
        object.__setattr__(self, "limits", limits)

    @classmethod
    def of(cls, rec: VirtualKeyRecord) -> VirtualKey:
        return cls(rec.id, rec.name, rec.tenant_id, frozenset(rec.models) if rec.models is not None else None,
                   rec.rpm, rec.tpm, rec.budget_e7, rec.currency, rec.revoked_at is not None)  # fmt: skip


def bearer(headers: Mapping[str, str]) -> str | None:
    """The key of a request: ``Authorization: Bearer <key>``, else ``x-api-key`` (Anthropic clients)."""
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = headers.get("x-api-key") or headers.get("api-key")
    return key.strip() if key else None


class KeyRing:
    """Resolve request keys against the store, with a short in-process cache."""

    def __init__(self, store: Any, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[VirtualKey | None, float]] = {}

    async def resolve(self, key: str | None) -> VirtualKey:
        if not key:
            raise GatewayError(
                401, "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", code="invalid_api_key",
            )  # fmt: skip
        digest = hash_key(key)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            vk = hit[0]
        else:
            rec = await self.store.get_virtual_key_by_hash(digest)
            vk = VirtualKey.of(rec) if rec is not None else None
            if self.ttl > 0:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[digest] = (vk, now + self.ttl)
        if vk is None or vk.revoked:
            raise GatewayError(401, f"Incorrect API key provided: {key_hint(key)}.", code="invalid_api_key")
        return vk

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached lookups (all, or those of one key id)."""
        if key_id is None:
            self._cache.clear()
            return
        for digest, (vk, _) in list(self._cache.items()):
            if vk is not None and vk.id == key_id:
                del self._cache[digest]

    async def create(
        self, tenant_id: str, *, name: str = "", models: Sequence[str] | None = None, rpm: int | None = None,
        tpm: int | None = None, budget: Decimal | None = None, currency: str = "USD", key: str | None = None,
    ) -> tuple[str, VirtualKeyRecord]:  # fmt: skip
        """Create a key (a fresh one unless ``key`` is given); returns (the key, its record)."""
        key = key or new_key()
        rec = await self.store.create_virtual_key(
            tenant_id, hash_key(key), key_hint(key), name=name, models=models, rpm=rpm, tpm=tpm,
            budget_e7=to_e7(budget) if budget is not None else None, currency=currency,
        )  # fmt: skip
        return key, rec

    async def revoke(self, key_id: str) -> bool:
        ok = bool(await self.store.revoke_virtual_key(key_id))
        self.forget(key_id)
        return ok
