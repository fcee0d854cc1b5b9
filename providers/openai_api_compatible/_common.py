"""What every openai_api_compatible model type shares: URL, headers, credential parsing, pricing.

The credentials are the user's model form (``endpoint_url``, ``api_key``, ...). Values
come from a text form, so numbers arrive as strings; a malformed number is reported
as a :class:`CredentialsValidateFailedError` naming the variable.

The embedding and audio wire formats come from :mod:`arun.protocols.openai_misc`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from arun.entities.model import PriceConfig
from arun.model_types.ai_model import as_validation_error
from arun.errors import CredentialsValidateFailedError, InvokeBadRequestError
from arun.redact import register_secret

PROVIDER = "openai_api_compatible"

__all__ = [
    "PROVIDER",
    "base_url",
    "url_for",
    "auth_headers",
    "wire_model",
    "cred_int",
    "cred_decimal",
    "price_config",
    "require_endpoint",
    "wrap_validation",
]


def base_url(credentials: Mapping[str, Any]) -> str:
    """``endpoint_url`` without a trailing slash (it already carries the version, e.g. ``/v1``)."""
    url = credentials.get("endpoint_url")
    if not isinstance(url, str) or not url.strip():
        raise InvokeBadRequestError(f"[{PROVIDER}] Bad Request Error, credential endpoint_url is required")
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvokeBadRequestError(f"[{PROVIDER}] Bad Request Error, endpoint_url must start with http:// or https://")
    return url


def url_for(credentials: Mapping[str, Any], path: str) -> str:
    return base_url(credentials) + path


def auth_headers(credentials: Mapping[str, Any], content_type: str | None = "application/json") -> dict[str, str]:
    """``Authorization: Bearer`` only when an ``api_key`` is set (many local servers take none)."""
    headers: dict[str, str] = {}
    if content_type:
        headers["Content-Type"] = content_type
    key = credentials.get("api_key")
    if isinstance(key, str) and key:
        register_secret(key)
        headers["Authorization"] = f"Bearer {key}"
    return headers


def wire_model(model: str, credentials: Mapping[str, Any]) -> str:
    """The upstream's model id: ``endpoint_model_name`` when set, else the user's model name."""
    name = credentials.get("endpoint_model_name")
    return name.strip() if isinstance(name, str) and name.strip() else model



def _raw(credentials: Mapping[str, Any], name: str) -> Any:
    value = credentials.get(name)
    if isinstance(value, str):
        value = value.strip()
    return None if value is None or value == "" else value


def cred_int(credentials: Mapping[str, Any], name: str, default: int, minimum: int = 1) -> int:
    value = _raw(credentials, name)
    if value is None:
        return default
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        raise CredentialsValidateFailedError(f"Variable {name} should be an integer >= {minimum}, got {value!r}")
    return number


def cred_decimal(credentials: Mapping[str, Any], name: str, default: str = "0") -> Decimal:
    value = _raw(credentials, name)
    if value is None:
        return Decimal(default)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise CredentialsValidateFailedError(f"Variable {name} should be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise CredentialsValidateFailedError(f"Variable {name} should be a non-negative number, got {value!r}")
    return number


def price_config(credentials: Mapping[str, Any], *, output: bool) -> PriceConfig:
    """Dify's rule: prices and unit default to 0 (so no price unless configured), currency to USD."""
    currency = _raw(credentials, "currency")
    return PriceConfig(
        input=cred_decimal(credentials, "input_price"),
        output=cred_decimal(credentials, "output_price") if output else None,
        unit=cred_decimal(credentials, "unit"),
        currency=str(currency) if currency else "USD",
    )


def require_endpoint(credentials: Mapping[str, Any]) -> None:
    """Fail validation early, naming the variable, when ``endpoint_url`` is missing or not a URL."""
    url = credentials.get("endpoint_url") if isinstance(credentials, Mapping) else None
    if not isinstance(url, str) or not url.strip():
        raise CredentialsValidateFailedError("Variable endpoint_url is required")
    if not url.strip().startswith(("http://", "https://")):
        raise CredentialsValidateFailedError("Variable endpoint_url should start with http:// or https://")


def wrap_validation(exc: BaseException) -> CredentialsValidateFailedError:
    """Every validation failure becomes CredentialsValidateFailedError (the cause is kept)."""
    return as_validation_error(exc)
