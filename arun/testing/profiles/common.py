"""Helpers the profiles share: editing framed SSE chunks, OpenAI-shaped error bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["rewrite_chunks", "openai_error", "data_event"]


def data_event(obj: Any) -> bytes:
    return b"data: " + msgspec.json.encode(obj) + b"\n\n"


def rewrite_chunks(events: list[bytes], edit: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> list[bytes]:
    """Decode every ``data: {json}`` event, let ``edit`` return its replacement chunks, re-frame them;
    other events (``[DONE]``, comments) pass through."""
    out: list[bytes] = []
    for event in events:
        if event.startswith(b"data: {"):
            chunk = msgspec.json.decode(event[6:].strip())
            out.extend(data_event(c) for c in edit(chunk))
        else:
            out.append(event)
    return out


def openai_error(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    """The OpenAI error body the default protocol would send."""
    from arun.testing import sim_openai

    return status, {"error": sim_openai.error_object(ctx, status, error_type, message)}
