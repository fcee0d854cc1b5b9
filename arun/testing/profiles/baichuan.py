"""Baichuan's chat completions and embeddings (platform.baichuan-ai.com).

* error bodies name what failed in ``error.type`` (the chat endpoint) and ``error.code`` (the
  embeddings endpoint): ``invalid_api_key``, ``api_key_empty``, ``invalid_authentication``,
  ``insufficient_quota``, ``invalid_request_error``, rate-limit and internal-error types (the
  baichuan Dify plugin's error mapping, baichuan_turbo.py and text_embedding.py).  The HTTP
  status each comes with is not documented [I]: the simulator sends the fault's status, so the
  type alone must decide the error class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

_BY_STATUS = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("invalid_api_key", "Invalid API key"),
    403: ("invalid_authentication", "Authentication failed"),
    404: ("invalid_request_error", "Model not found"),
    429: ("rate_limit_reached_error", "Too many requests, please try again later"),
}
_BY_TYPE = {
    "insufficient_quota": "Insufficient account balance",
    "api_key_empty": "API key is empty",
    "invalid_api_key": "Invalid API key",
}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if error_type in _BY_TYPE:
        kind, text = error_type, _BY_TYPE[error_type]
    else:
        kind, text = _BY_STATUS.get(status) or ("internal_server_error", "Internal server error")
    return status, {"error": {"code": kind, "param": None, "type": kind, "message": message or text}}


PROFILE = Profile(
    name="baichuan",
    sources=(
        "dify-official-plugins models/baichuan/models/llm/baichuan_turbo.py",
        "dify-official-plugins models/baichuan/models/text_embedding/text_embedding.py",
    ),
    error_body=error_body,
)
