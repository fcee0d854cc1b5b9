"""Price arithmetic: tokens x unit price x unit, quantized to 7 decimals, half-up.

Every call prices its usage, so the arithmetic is done once per price list: a
:class:`Rate` keeps unit price x unit as an integer mantissa and a decimal shift,
and :meth:`Rate.total` is exact integer arithmetic with half-up rounding, giving the
same ``Decimal`` (value and exponent -7) as ``(tokens * unit_price * unit).quantize(...)``
without a ``Decimal`` context operation per call.
"""

from __future__ import annotations

from decimal import Decimal

from arun.entities.model import AIModelEntity, PriceConfig, PriceInfo, PriceType
from arun.identity_cache import IdentityCache

__all__ = ["get_price", "rates", "Rate", "QUANTUM"]

QUANTUM = Decimal("0.0000001")
_DECIMALS = 7
_ZERO = Decimal("0")


class Rate:
    """One price of one model (input or output): unit price, unit, currency and the product."""

    __slots__ = ("unit_price", "unit", "currency", "_mantissa", "_shift", "_free")

    def __init__(self, unit_price: Decimal | None, unit: Decimal, currency: str) -> None:
        self._free = unit_price is None  # no price at all: zero, unquantized, as Dify reports it
        self.unit_price = _ZERO if unit_price is None else unit_price
        self.unit = _ZERO if unit_price is None else unit
        self.currency = "USD" if unit_price is None else currency
        sign, digits, exponent = (self.unit_price * self.unit).as_tuple()
        mantissa = int("".join(map(str, digits)) or "0")
        self._mantissa = -mantissa if sign else mantissa
        self._shift = int(exponent) + _DECIMALS  # product = mantissa x 10^(shift - 7)

    def total(self, tokens: int) -> Decimal:
        """``tokens`` x unit price x unit, rounded half-up (away from zero on a tie) to 7 decimals."""
        if self._free:
            return _ZERO
        n = tokens * self._mantissa
        shift = self._shift
        if shift >= 0:
            q = n * 10**shift
        else:
            d = 10**-shift
            q, r = divmod(abs(n), d)
            if 2 * r >= d:
                q += 1
            if n < 0:
                q = -q
        return Decimal(q) * QUANTUM

    def info(self, tokens: int) -> PriceInfo:
        return PriceInfo(self.unit_price, self.unit, self.total(tokens), self.currency)


_NO_PRICE = (Rate(None, _ZERO, "USD"), Rate(None, _ZERO, "USD"))


def _rates_of(pricing: PriceConfig) -> tuple[Rate, Rate]:
    return (
        Rate(pricing.input, pricing.unit, pricing.currency),
        Rate(pricing.output, pricing.unit, pricing.currency),
    )


_rates: IdentityCache[PriceConfig, tuple[Rate, Rate]] = IdentityCache(_rates_of)


def rates(schema: AIModelEntity | None) -> tuple[Rate, Rate]:
    """The (input, output) rates of a model schema; a model without pricing costs nothing."""
    pricing = schema.pricing if schema is not None else None
    return _NO_PRICE if pricing is None else _rates.get(pricing)


def get_price(schema: AIModelEntity | None, price_type: PriceType, tokens: int) -> PriceInfo:
    rate_in, rate_out = rates(schema)
    return (rate_in if price_type is PriceType.INPUT else rate_out).info(tokens)
