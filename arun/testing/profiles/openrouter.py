"""OpenRouter's chat completions (openrouter.ai/docs).

* streams carry ``: OPENROUTER PROCESSING`` SSE comments to keep the connection open while a
  provider is busy (api-reference/streaming); chunks name the serving ``provider`` and the
  finish chunk adds ``native_finish_reason``;
* an error after the stream started cannot change the 200 status: it arrives as a data event
  with a top-level ``error`` object beside ``choices[0].finish_reason: "error"``, then the
  stream ends (api-reference/streaming, "Handling errors during streaming"); errors while a
  non-streamed answer is produced are likewise an ``error`` object in a 200 body
  (api-reference/errors);
* error bodies are ``{"error": {"code": <the HTTP status>, "message": ..., "metadata": {...}}}``:
  401 ``User not found.`` (an unknown key) or ``No auth credentials found``, 402 "This request
  requires more credits, or fewer max_tokens ...", 403 for a moderation flag with
  ``metadata.reasons`` / ``flagged_input`` / ``provider_name`` / ``model_slug``, 429 with the
  limit in ``metadata.headers`` (api-reference/errors; the message texts as reported in
  client issue threads, e.g. RooCodeInc/Roo-Code#2445, QwenLM/qwen-code#73);
* reasoning asked for with ``reasoning: {effort}`` comes back as ``reasoning`` beside the
  content: ``message.reasoning`` and ``delta.reasoning`` pieces (use-cases/reasoning-tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import after_role, data_event, openai_error, reasoning_message, rewrite_chunks

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

PROCESSING = b": OPENROUTER PROCESSING\n\n"
REASONING = ["Weighing the question", " before answering."]
SERVING = "OpenAI"


def _reasoning(body: dict[str, Any]) -> bool:
    value = body.get("reasoning")
    return isinstance(value, dict) and not value.get("exclude") and value.get("enabled", True) is not False


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    reasoning = _reasoning(body)

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        chunk["provider"] = SERVING
        choices = chunk.get("choices") or []
        if not choices:
            return [chunk]
        choice = choices[0]
        if choice.get("finish_reason"):
            choice["native_finish_reason"] = choice["finish_reason"]
        return after_role(chunk, REASONING, field="reasoning", extra={"content": ""}) if reasoning else [chunk]

    out = rewrite_chunks(events, edit)
    return [PROCESSING, PROCESSING, out[0], PROCESSING, *out[1:]]


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    answer["provider"] = SERVING
    choice = answer["choices"][0]
    choice["native_finish_reason"] = choice["finish_reason"]
    return reasoning_message(answer, REASONING, field="reasoning") if _reasoning(body) else answer


def stream_error(ctx: Ctx) -> bytes:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    return data_event({
        "id": "gen-" + ctx.rid, "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
        "provider": SERVING,
        "error": {"code": "server_error", "message": (ctx.fault.message if ctx.fault else None) or "Provider disconnected unexpectedly"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    })  # fmt: skip


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    model = body.get("model") or "openai/gpt-4o-mini"
    metadata: dict[str, Any] | None = None
    if error_type == "context_length_exceeded":
        status = 400
        text = (
            "This endpoint's maximum context length is 128000 tokens. However, you requested about 130000 "
            "tokens (130000 of text input). Please reduce the length of either one, or use the \"middle-out\" "
            "transform to compress your prompt automatically."
        )
        metadata = {"provider_name": None}
    elif error_type == "moderation":
        status = 403
        text = f"{model} requires moderation on {SERVING}. Your input was flagged."
        metadata = {"reasons": ["hate"], "flagged_input": "I hate...", "provider_name": SERVING, "model_slug": model}
    elif error_type is not None:
        return openai_error(ctx, status, error_type, message)
    elif status == 401:
        text = "User not found." if ctx.key else "No auth credentials found"
    elif status == 402:
        text = (
            "This request requires more credits, or fewer max_tokens. You requested up to 16384 tokens, but can "
            "only afford 3919. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account"
        )
        metadata = {"provider_name": None}
    elif status == 403:
        text = "Key is not allowed to use this model"
    elif status == 429:
        text = "Rate limit exceeded: free-models-per-min. "
        metadata = {"headers": {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1741305600000"}, "provider_name": None}
    elif status == 502:
        text = "Provider returned error"
        metadata = {"raw": "upstream connect error", "provider_name": SERVING}
    elif status == 503:
        text = "No endpoints found that can handle the requested parameters."
    else:
        text = "Invalid request." if status < 500 else "Internal Server Error"
    error: dict[str, Any] = {"message": message or text, "code": status}
    if metadata is not None:
        error["metadata"] = metadata
    return status, {"error": error, "user_id": "user_sim"}


PROFILE = Profile(
    name="openrouter",
    sources=(
        "https://openrouter.ai/docs/api-reference/streaming",
        "https://openrouter.ai/docs/api-reference/errors",
        "https://openrouter.ai/docs/use-cases/reasoning-tokens",
        "https://github.com/RooCodeInc/Roo-Code/issues/2445",
        "https://github.com/QwenLM/qwen-code/issues/73",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    stream_error=stream_error,
    error_body=error_body,
)

