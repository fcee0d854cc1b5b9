"""DeepSeek's chat completions (api-docs.deepseek.com).

* thinking mode (the default for V4; ``thinking: {type: disabled}`` turns it off): the
  chain of thought arrives as ``reasoning_content`` beside ``content`` — in ``message``, and as
  ``delta.reasoning_content`` pieces before the content pieces (guides/thinking_mode);
* while a request waits in the queue the server keeps the connection open with ``: keep-alive``
  SSE comments (stream) and empty lines before the JSON body (non-stream) (quick_start/rate_limit);
* usage adds ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens`` and
  ``completion_tokens_details.reasoning_tokens`` (api reference, chat completion object);
* 402 ``Insufficient Balance`` when the account has no balance (quick_start/error_codes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from arun.testing.profiles import Profile
from arun.testing.profiles.common import after_role, openai_error, reasoning_message, rewrite_chunks, thinking_disabled

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

REASONING = ["The user asks", " a question;", " answer briefly."]


def _usage(usage: dict[str, Any], thinking: bool) -> dict[str, Any]:
    prompt = usage.get("prompt_tokens", 0)
    out = dict(usage)
    out["prompt_cache_hit_tokens"] = 0
    out["prompt_cache_miss_tokens"] = prompt
    out["completion_tokens_details"] = {"reasoning_tokens": len(REASONING) if thinking else 0}
    return out


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    thinking = not thinking_disabled(body)

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if chunk.get("usage"):
            chunk["usage"] = _usage(chunk["usage"], thinking)
        return after_role(chunk, REASONING, extra={"content": None}) if thinking else [chunk]

    return [b": keep-alive\n\n", b": keep-alive\n\n", *rewrite_chunks(events, edit)]


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> bytes:
    thinking = not thinking_disabled(body)
    if thinking:
        reasoning_message(answer, REASONING)
    answer["usage"] = _usage(answer["usage"], thinking)
    return b"\n\n\n" + msgspec.json.encode(answer)  # queued: blank lines before the JSON


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if status == 402:
        return 402, {"error": {"message": message or "Insufficient Balance", "type": "unknown_error", "param": None, "code": "invalid_request_error"}}
    return openai_error(ctx, status, error_type, message)


PROFILE = Profile(
    name="deepseek",
    sources=(
        "https://api-docs.deepseek.com/guides/thinking_mode",
        "https://api-docs.deepseek.com/quick_start/rate_limit",
        "https://api-docs.deepseek.com/quick_start/error_codes",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
)
