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

from arun.testing.profiles import Profile
from arun.testing.profiles.common import data_event
from arun.testing.profiles.vllm import FLAT_CONTEXT_MESSAGE, vllm_error

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

#: the type names NIM adds to vLLM's for the statuses it answers itself
_TYPES = {401: "Unauthorized", 429: "TooManyRequests"}


def _object(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> dict[str, Any]:
    if message is None and error_type == "context_length_exceeded":
        message = FLAT_CONTEXT_MESSAGE
    elif message is None and status == 404:
        model = ctx.body.get("model") if isinstance(ctx.body, dict) else None
        message = f"The model `{model}` does not exist."
    obj = vllm_error(status, message or "", _TYPES.get(status), flat=True)
    if message is None:
        obj["message"] = obj["type"]  # no text of its own: the type name (401 "Unauthorized")
    return obj


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    return status, _object(ctx, status, error_type, message)


def stream_error(ctx: Ctx) -> bytes:
    f = ctx.fault
    return data_event({"error": _object(ctx, 500, f.error_type if f else None, f.message if f else None)})


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
