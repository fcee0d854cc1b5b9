"""vLLM's OpenAI-compatible server, as current vLLM releases speak it (vllm-project/vllm).

* reasoning models (``--reasoning-parser``) put the chain of thought in ``reasoning`` beside
  ``content`` -- ``message.reasoning`` and ``delta.reasoning`` pieces before the content pieces;
  vLLM renamed the field from ``reasoning_content`` (PR 27752, Nov 2025) and later removed the
  old name (PR 33402).  A Qwen3-style ``chat_template_kwargs: {enable_thinking: false}`` turns
  it off (docs: features/reasoning_outputs);
* errors are ``{"error": {"message", "type", "param", "code"}}`` with vLLM's type names
  (``BadRequestError``, ``NotFoundError``, ``InternalServerError``) and the status as an integer
  ``code`` -- nested since v0.10.1 (PR 22099); before, the same fields sat at the top level
  beside ``"object": "error"`` (that shape is tested with a raw body, and is what
  :mod:`arun.testing.profiles.openllm` sends);
* a prompt over ``--max-model-len`` is a 400 ``This model's maximum context length is N tokens.
  However, you requested M tokens in the messages, Please reduce the length of the messages.``
  (issue thread foundation-model-stack/fms-guardrails-orchestrator#511 quotes both shapes);
* ``--api-key``: a missing or wrong key is a 401 ``{"error": "Unauthorized"}`` -- a bare string
  (``AuthenticationMiddleware``);
* an error inside a stream is ``data: {"error": {...}}`` (``create_streaming_error_response``).

``/v1/rerank`` answers Jina's ``{id, model, usage, results}`` (``protocol.py`` ``RerankResponse``)
and embeddings OpenAI's: the default handlers already speak both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import data_event, reasoning_events, reasoning_message, status_phrase

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE", "REASONING", "FLAT_CONTEXT_MESSAGE", "vllm_error"]

REASONING = ["Okay, the user", " wants a short", " answer."]

_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}

#: the over-long prompt message of vLLM 0.8 / 0.9 (``serving_engine.py`` input validation), which the
#: servers built on those releases send (:mod:`arun.testing.profiles.openllm`, :mod:`arun.testing.profiles.nvidia_nim`)
FLAT_CONTEXT_MESSAGE = (
    "This model's maximum context length is 8192 tokens. However, you requested 9216 tokens "
    "(8192 in the messages, 1024 in the completion). Please reduce the length of the messages or completion."
)


def _thinking(body: dict[str, Any]) -> bool:
    kwargs = body.get("chat_template_kwargs")
    return not (isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False)


def vllm_error(status: int, message: str, error_type: str | None = None, *, flat: bool = False) -> dict[str, Any]:
    """vLLM's error body: nested ``{"error": {...}}`` since v0.10.1 (``ErrorResponse(error=ErrorInfo(...))``),
    or with ``flat`` the fields at the top level beside ``"object": "error"`` (vLLM < 0.10.1)."""
    typ = error_type or _TYPES.get(status) or ("BadRequestError" if status < 500 else "InternalServerError")
    if flat:
        return {"object": "error", "message": message, "type": typ, "param": None, "code": status}
    return {"error": {"message": message, "type": typ, "param": None, "code": status}}


def _message(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> str:
    if message is not None:
        return message
    if error_type == "context_length_exceeded":
        return (
            "This model's maximum context length is 32768 tokens. However, you requested 39197 tokens "
            "in the messages, Please reduce the length of the messages."
        )
    if status == 404:
        model = ctx.body.get("model") if isinstance(ctx.body, dict) else None
        return f"The model `{model}` does not exist."
    return status_phrase(status)


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if status == 401 and message is None:
        return 401, {"error": "Unauthorized"}
    if error_type == "context_length_exceeded":
        status = 400
    return status, vllm_error(status, _message(ctx, status, error_type, message))


def stream_error(ctx: Ctx) -> bytes:
    f = ctx.fault
    err = vllm_error(500, (f.message if f is not None else None) or "EngineCore encountered an issue.")
    return data_event(err)


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    return reasoning_events(events, REASONING, field="reasoning") if _thinking(body) else events


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return reasoning_message(answer, REASONING, field="reasoning") if _thinking(body) else answer


PROFILE = Profile(
    name="vllm",
    sources=(
        "https://docs.vllm.ai/en/latest/features/reasoning_outputs.html",
        "vllm-project/vllm PR 27752 (reasoning_content -> reasoning), PR 33402, PR 22099 (nested ErrorResponse)",
        "vllm-project/vllm vllm/entrypoints/openai/protocol.py (ErrorResponse, ErrorInfo)",
        "vllm-project/vllm AuthenticationMiddleware (401 {'error': 'Unauthorized'})",
        "foundation-model-stack/fms-guardrails-orchestrator issue 511 (old and new error bodies)",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    stream_error=stream_error,
)
