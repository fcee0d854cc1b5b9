"""Price arithmetic: tokens x unit price x unit, quantized to 7 decimals, half-up."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from arun.entities.model import AIModelEntity, PriceInfo, PriceType

__all__ = ["get_price", "QUANTUM"]

QUANTUM = Decimal("0.0000001")
_ZERO = Decimal("0")


def get_price(schema: AIModelEntity | None, price_type: PriceType, tokens: int) -> PriceInfo:
    pricing = schema.pricing if schema is not None else None
    if pricing is None:
        return PriceInfo(unit_price=_ZERO, unit=_ZERO, total_amount=_ZERO, currency="USD")
    unit_price = pricing.input if price_type is PriceType.INPUT else pricing.output
    if unit_price is None:
        return PriceInfo(unit_price=_ZERO, unit=_ZERO, total_amount=_ZERO, currency="USD")
    unit = pricing.unit
    factor = _factors.get((unit_price, unit))
    if factor is None:
        if len(_factors) > 4096:
            _factors.clear()
        factor = _factors[(unit_price, unit)] = unit_price * unit
    total = (factor * tokens).quantize(QUANTUM, rounding=ROUND_HALF_UP)
    return PriceInfo(unit_price, unit, total, pricing.currency)


# unit price x unit, once per price: Decimal products are exact at these sizes, so
# tokens x (unit price x unit) equals (tokens x unit price) x unit
_factors: dict[tuple[Decimal, Decimal], Decimal] = {}
