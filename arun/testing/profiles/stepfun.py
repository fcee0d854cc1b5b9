"""StepFun's chat completions (platform.stepfun.com).

* error bodies are ``{"error": {"message", "type"}}`` without OpenAI's ``param`` and ``code``
  (a bad key: 401 ``invalid_api_key`` "Incorrect API key provided"), and an empty balance is a
  402 (api-reference/error-codes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

_BY_STATUS = {
    400: ("invalid_request_error", "Invalid request parameters"),
    401: ("invalid_api_key", "Incorrect API key provided"),
    402: ("insufficient_balance", "Insufficient balance"),
    404: ("not_found", "Incorrect request path"),
    429: ("rate_limit_exceeded", "Rate limit exceeded"),
}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    kind, text = _BY_STATUS.get(status) or ("server_error", "Internal server error")
    return status, {"error": {"message": message or text, "type": error_type or kind}}


PROFILE = Profile(
    name="stepfun",
    sources=("https://platform.stepfun.com/docs/zh/api-reference/error-codes",),
    error_body=error_body,
)
