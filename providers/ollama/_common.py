"""How Ollama model types reach the server: base URL, headers, numbers from the model credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.errors import CredentialsValidateFailedError
from arun.redact import register_secret

DEFAULT_BASE = "http://localhost:11434"


def base_url(credentials: Mapping[str, Any]) -> str:
    """``base_url`` without a trailing slash (a pasted ``/api`` or ``/v1`` suffix is dropped)."""
    base = str(credentials.get("base_url") or DEFAULT_BASE).strip().rstrip("/")
    for suffix in ("/api", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def headers(credentials: Mapping[str, Any]) -> dict[str, str]:
    out = {"Content-Type": "application/json"}
    key = credentials.get("api_key")
    if isinstance(key, str) and key:
        register_secret(key)
        out["Authorization"] = f"Bearer {key}"
    return out


def int_credential(credentials: Mapping[str, Any], name: str, default: int) -> int:
    value = credentials.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise CredentialsValidateFailedError(f"Variable {name} should be an integer") from None
    if number <= 0:
        raise CredentialsValidateFailedError(f"Variable {name} should be a positive integer")
    return number


def flag(credentials: Mapping[str, Any], name: str) -> bool:
    return str(credentials.get(name, "")).strip().lower() == "true"
