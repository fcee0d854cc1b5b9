"""How Jina model types reach the API: base URL, bearer header, numbers from credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.errors import CredentialsValidateFailedError
from arun.redact import register_secret

DEFAULT_BASE = "https://api.jina.ai/v1"


def base_url(credentials: Mapping[str, Any]) -> str:
    return str(credentials.get("base_url") or DEFAULT_BASE).strip().rstrip("/")


def auth_headers(credentials: Mapping[str, Any]) -> dict[str, str]:
    key = credentials.get("api_key")
    out = {"Content-Type": "application/json", "Accept": "application/json"}
    if isinstance(key, str) and key:
        register_secret(key)
        out["Authorization"] = f"Bearer {key}"
    return out


def int_credential(credentials: Mapping[str, Any], name: str, default: int | None) -> int | None:
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
