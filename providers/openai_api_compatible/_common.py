"""What every openai_api_compatible model type shares: URL, headers, credential parsing, pricing.

The credentials are the user's model form (``endpoint_url``, ``api_key``, ...). Values
come from a text form, so numbers arrive as strings; a malformed number is reported
as a :class:`CredentialsValidateFailedError` naming the variable.

Wire helpers for embeddings and audio live here for now (``arun.protocols.openai_misc``
was not committed when this provider was written; fold them there later).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import msgspec

from arun.entities.model import PriceConfig
from arun.errors import CredentialsValidateFailedError, InvokeBadRequestError, InvokeError, InvokeServerUnavailableError
from arun.protocols.openai_chat import classify_error
from arun.redact import register_secret

PROVIDER = "openai_api_compatible"

__all__ = [
    "PROVIDER",
    "base_url",
    "url_for",
    "auth_headers",
    "wire_model",
    "error_mapper",
    "cred_int",
    "cred_decimal",
    "price_config",
    "require_endpoint",
    "wrap_validation",
    "parse_embeddings",
    "parse_transcription",
    "silent_wav",
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


def error_mapper() -> Any:
    """Status -> the right Invoke class (401/403 auth, 429 rate limit, 5xx unavailable), not Dify's base InvokeError."""
    return partial(classify_error, PROVIDER)


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
    if isinstance(exc, CredentialsValidateFailedError):
        return exc
    if isinstance(exc, InvokeError):
        error = CredentialsValidateFailedError(str(exc))
    else:
        error = CredentialsValidateFailedError(f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


# -- embeddings ------------------------------------------------------------------------------


class _EmbeddingItem(msgspec.Struct):
    embedding: list[float]
    index: int | None = None


class _EmbeddingUsage(msgspec.Struct):
    total_tokens: int | None = None
    prompt_tokens: int | None = None


class _EmbeddingResponse(msgspec.Struct):
    data: list[_EmbeddingItem]
    model: str | None = None
    usage: _EmbeddingUsage | None = None


_embedding_decoder = msgspec.json.Decoder(_EmbeddingResponse)


def parse_embeddings(body: bytes, expected: int) -> tuple[list[list[float]], int | None, str | None]:
    """``data[].embedding`` in input order (by ``index``), the token count if reported, the model."""
    try:
        response = _embedding_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, malformed embeddings response: {exc}") from None
    items = response.data
    if all(item.index is not None for item in items):
        items = sorted(items, key=lambda item: item.index)  # type: ignore[arg-type, return-value]
    if len(items) != expected:
        raise InvokeServerUnavailableError(
            f"[{PROVIDER}] Server Unavailable Error, {len(items)} embeddings returned for {expected} inputs"
        )
    usage = response.usage
    tokens = None
    if usage is not None:
        tokens = usage.total_tokens if usage.total_tokens is not None else usage.prompt_tokens
    return [item.embedding for item in items], tokens, response.model


# -- audio -----------------------------------------------------------------------------------


class _Transcription(msgspec.Struct):
    text: str


_transcription_decoder = msgspec.json.Decoder(_Transcription)


def parse_transcription(body: bytes, content_type: str | None) -> str:
    """``{"text": ...}`` (json), or the plain body for text formats."""
    if content_type and "json" not in content_type:
        return body.decode("utf-8", "replace").strip()
    try:
        return _transcription_decoder.decode(body).text
    except msgspec.DecodeError:
        if content_type:
            raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, malformed transcription response") from None
        return body.decode("utf-8", "replace").strip()


def silent_wav(seconds: float = 0.2, rate: int = 16000) -> bytes:
    """A tiny valid 16-bit mono PCM WAV of silence (used to validate speech2text credentials)."""
    import struct

    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(data)) + data
