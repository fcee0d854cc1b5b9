"""A self-hosted NVIDIA NIM for LLMs: an OpenAI-compatible server backed by vLLM.

NIM's API reference says the inference endpoints "are provided by the vLLM inference backend"
(docs.nvidia.com/nim/large-language-models, API Reference), so errors are vLLM's, not OpenAI's:

* a flat error object — ``{"object": "error", "message": ..., "type": "BadRequestError",
  "param": null, "code": 400}`` — instead of ``{"error": {...}}`` (vLLM's ``ErrorResponse`` in
  ``vllm/entrypoints/openai/protocol.py``: ``object = "error"``, ``message``, ``type``,
  ``param``, ``code: int``);
* an over-long prompt is a 400 whose message reads "This model's maximum context length is
  N tokens. However, you requested M tokens ..." (vLLM ``serving_engine.py``, input validation);
* an unknown model is a 404 ``NotFoundError``: "The model `x` does not exist." (vLLM
  ``serving_models.py``);
* inside a stream, an error is one ``data: {"error": {... "code": <int>}}`` event (vLLM
  ``create_streaming_error_response``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from arun.testing.profiles import Profile

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

_TYPES = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 422: "BadRequestError", 429: "TooManyRequests"}
CONTEXT_MESSAGE = (
    "This model's maximum context length is 8192 tokens. However, you requested 9216 tokens "
    "(8192 in the messages, 1024 in the completion). Please reduce the length of the messages or completion."
)


def _object(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> dict[str, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    typ = _TYPES.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    if message is None:
        if error_type == "context_length_exceeded":
            message = CONTEXT_MESSAGE
        elif status == 404:
            message = f"The model `{body.get('model')}` does not exist."
        elif status == 401:
            message = "Unauthorized"
        else:
            message = typ
    return {"object": "error", "message": message, "type": typ, "param": None, "code": status}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    return status, _object(ctx, status, error_type, message)


def stream_error(ctx: Ctx) -> bytes:
    f = ctx.fault
    err = _object(ctx, 500, f.error_type if f else None, f.message if f else None)
    return b"data: " + msgspec.json.encode({"error": err}) + b"\n\n"


PROFILE = Profile(
    name="nvidia_nim",
    sources=(
        "https://docs.nvidia.com/nim/large-language-models/latest/reference/api-reference.html",
        "https://github.com/vllm-project/vllm/blob/v0.9.2/vllm/entrypoints/openai/protocol.py",
        "https://github.com/vllm-project/vllm/blob/v0.9.2/vllm/entrypoints/openai/serving_engine.py",
    ),
    error_body=error_body,
    stream_error=stream_error,
)
