"""How every OpenAI model type reaches the API: base URL and headers from the credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.redact import register_secret

DEFAULT_BASE = "https://api.openai.com"


def base_url(credentials: Mapping[str, Any]) -> str:
    """``openai_api_base`` (without ``/v1``, as Dify stores it) or the public API."""
    base = credentials.get("openai_api_base") or DEFAULT_BASE
    base = str(base).rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def auth_headers(credentials: Mapping[str, Any], content_type: str | None = "application/json") -> dict[str, str]:
    key = credentials.get("openai_api_key") or ""
    register_secret(key)
    headers = {"Authorization": f"Bearer {key}"}
    if content_type:
        headers["Content-Type"] = content_type
    org = credentials.get("openai_organization")
    if org:
        headers["OpenAI-Organization"] = str(org)
    return headers
