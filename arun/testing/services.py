"""Local services for tests: skip when one is not running, fail under ``CI=true``.

``require_service("redis://127.0.0.1:6379/0")`` (or a PostgreSQL URL, or host and
port) returns when the TCP port answers; otherwise it calls ``pytest.skip`` on a
developer machine and ``pytest.fail`` in CI, where a missing service is a broken
environment rather than a reason to test less.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

__all__ = ["service_reachable", "require_service"]

_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgresql": 5432, "postgres": 5432}


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def service_reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(_address(url), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(url: str, name: str | None = None) -> None:
    """Skip (or, with ``CI=true``, fail) the calling test unless ``url``'s port answers."""
    import pytest

    if service_reachable(url):
        return
    label = name or urlsplit(url).scheme
    host, port = _address(url)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{label} is required in CI and is not reachable at {host}:{port}")
    pytest.skip(f"{label} not reachable at {host}:{port}")
