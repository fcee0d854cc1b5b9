"""Helpers shared by the simulator tests."""
from __future__ import annotations

from typing import Any

import msgspec

OPENAI_KEY = {"Authorization": "Bearer sk-test-123456"}
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    """Minimal SSE parser: returns (event name, data) pairs."""
    out: list[tuple[str | None, str]] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        out.append((name, "\n".join(data)))
    return out


def jloads(s: str | bytes) -> Any:
    return msgspec.json.decode(s)
