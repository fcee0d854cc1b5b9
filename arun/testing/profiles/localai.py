"""LocalAI's OpenAI-compatible server (mudler/LocalAI).

* errors: ``{"error": {"code": <the HTTP status as an integer>, "message": ..., "type": ""}}``
  (``core/schema/openai.go`` ``ErrorResponse``/``APIError``, ``core/http/app.go``'s error
  handler: ``APIError{Message: err.Error(), Code: code}``, so ``type`` is empty); a missing key
  is a 401 ``An authentication key is required`` of type ``invalid_request_error``
  (``core/http/auth/middleware.go`` ``authError``);
* an error inside a stream is ``data: {"error": {"message", "type": "server_error", "code":
  "server_error"}}`` followed by ``data: [DONE]`` (``core/http/endpoints/openai/chat.go``).

``/v1/rerank`` is Jina's shape (``core/schema/jina.go``), which the default handler already speaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import data_event, status_phrase

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE"]


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if status == 401 and message is None:
        return 401, {"error": {"code": 401, "message": "An authentication key is required", "type": "invalid_request_error"}}
    return status, {"error": {"code": status, "message": message or status_phrase(status), "type": ""}}


def stream_error(ctx: Ctx) -> bytes:
    f = ctx.fault
    err = {"error": {"message": (f.message if f is not None else None) or "backend stream ended", "type": "server_error", "code": "server_error"}}
    return data_event(err) + b"data: [DONE]\n\n"


PROFILE = Profile(
    name="localai",
    sources=(
        "mudler/LocalAI core/schema/openai.go (ErrorResponse, APIError)",
        "mudler/LocalAI core/http/app.go (HTTPErrorHandler), core/http/auth/middleware.go (authError)",
        "mudler/LocalAI core/http/endpoints/openai/chat.go (stream error event)",
    ),
    error_body=error_body,
    stream_error=stream_error,
)
