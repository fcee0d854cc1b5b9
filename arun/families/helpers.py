"""What every family adapter shares: numbers from credential forms, prices, validation by invoking.

Credential forms are text, so numbers arrive as strings; a malformed number is a
:class:`CredentialsValidateFailedError` naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from arun.entities.model import PriceConfig
from arun.errors import CredentialsValidateFailedError
from arun.model_types.ai_model import validate_by

__all__ = ["cred_int", "cred_decimal", "cred_flag", "cred_text", "price_config", "validate_by"]


def cred_text(credentials: Mapping[str, Any], name: str) -> str | None:
    value = credentials.get(name)
    if isinstance(value, str):
        value = value.strip()
    return None if value is None or value == "" else str(value)


def cred_int(credentials: Mapping[str, Any], name: str, default: int, minimum: int = 1) -> int:
    value = credentials.get(name)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return default
    number: int | None
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        raise CredentialsValidateFailedError(f"Variable {name} should be an integer >= {minimum}, got {value!r}")
    return number


def cred_decimal(credentials: Mapping[str, Any], name: str, default: str = "0") -> Decimal:
    value = cred_text(credentials, name)
    if value is None:
        return Decimal(default)
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise CredentialsValidateFailedError(f"Variable {name} should be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise CredentialsValidateFailedError(f"Variable {name} should be a non-negative number, got {value!r}")
    return number


def cred_flag(credentials: Mapping[str, Any], name: str, *true_values: str) -> bool:
    """A switch or select credential: ``true`` (or one of ``true_values``)."""
    value = credentials.get(name)
    if value is True:
        return True
    text = str(value).strip().lower() if value is not None else ""
    return text == "true" or text in true_values


def price_config(credentials: Mapping[str, Any], *, output: bool) -> PriceConfig:
    """Dify's rule for customizable models: prices and unit default to 0 (no price unless set), USD."""
    currency = cred_text(credentials, "currency")
    return PriceConfig(
        input=cred_decimal(credentials, "input_price"),
        output=cred_decimal(credentials, "output_price") if output else None,
        unit=cred_decimal(credentials, "unit"),
        currency=currency or "USD",
    )
