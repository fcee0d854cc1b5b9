"""GroqCloud's OpenAI-compatible API (console.groq.com/docs).

* a stream's usage is under ``x_groq.usage`` on its final chunk, with Groq's timings
  (``queue_time``, ``prompt_time``, ``completion_time``, ``total_time``); the first chunk
  carries ``x_groq.id`` (the request id); no top-level usage chunk is sent here, so a client
  that reads only ``usage`` would see none (api-reference, chat streaming; the Groq SDK's
  ``XGroq`` type); a whole answer carries the timings in ``usage`` and ``x_groq.id``;
* reasoning (docs/reasoning): GPT-OSS answers with ``message.reasoning`` / ``delta.reasoning``;
  Qwen3 with ``reasoning_format: parsed`` does the same, with ``raw`` (its default) the
  thinking is inline as ``<think>...</think>`` at the start of the content;
* error bodies are OpenAI's shape (docs/errors): 401 ``invalid_api_key`` "Invalid API Key",
  429 ``rate_limit_exceeded`` of ``type: tokens`` (or ``requests``) "Rate limit reached for
  model ... Please try again in 2.5s" with ``retry-after``, 413 "Request too large ... on tokens
  per minute (TPM)" (also ``rate_limit_exceeded``), 400 ``context_length_exceeded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import openai_error, request_usage, rewrite_chunks

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

THINKING = "The user greets me; reply in kind."


def _timed(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "queue_time": 0.0123, "prompt_tokens": usage["prompt_tokens"], "prompt_time": 0.0021,
        "completion_tokens": usage["completion_tokens"], "completion_time": 0.0211,
        "total_tokens": usage["total_tokens"], "total_time": 0.0232,
    }  # fmt: skip


def _reasoning_mode(body: dict[str, Any]) -> str | None:
    """``field`` (reasoning beside the content), ``inline`` (<think> in the content) or None."""
    model = str(body.get("model") or "")
    if model.startswith("openai/gpt-oss"):
        return None if body.get("include_reasoning") is False else "field"
    if model.startswith("qwen/qwen3"):
        fmt = body.get("reasoning_format") or "raw"
        return {"parsed": "field", "raw": "inline"}.get(fmt)
    return None


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    rid = "req_" + ctx.rid
    mode = _reasoning_mode(body)
    first = True

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal first
        choices = chunk.get("choices") or []
        if not choices:
            return []  # usage travels in x_groq, not in a chunk of its own
        chunk.pop("usage", None)
        choice = choices[0]
        plain = dict(chunk)
        if first:
            chunk["x_groq"] = {"id": rid}
        if choice.get("finish_reason"):
            chunk["x_groq"] = {"id": rid, "usage": _timed(request_usage(ctx, body))}
        out = [chunk]
        if first and mode is not None and isinstance(choice.get("delta"), dict):
            delta = {"reasoning": THINKING} if mode == "field" else {"content": f"<think>{THINKING}</think>"}
            out.append({**plain, "choices": [{**choice, "delta": delta}]})
        first = False
        return out

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    answer["usage"] = _timed(answer["usage"])
    answer["x_groq"] = {"id": "req_" + ctx.rid}
    message = answer["choices"][0]["message"]
    mode = _reasoning_mode(body)
    if mode == "field":
        message["reasoning"] = THINKING
    elif mode == "inline" and isinstance(message.get("content"), str):
        message["content"] = f"<think>{THINKING}</think>\n\n" + message["content"]
    return answer


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    model = body.get("model") or "llama-3.3-70b-versatile"
    org = "org_01sim"
    if error_type == "context_length_exceeded":
        err = {"message": "Please reduce the length of the messages or completion.", "type": "invalid_request_error",
               "param": "messages", "code": "context_length_exceeded"}  # fmt: skip
    elif error_type is not None:
        return openai_error(ctx, status, error_type, message)
    elif status == 401:
        err = {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}
    elif status == 498:  # the flex service tier is at capacity (console.groq.com/docs/flex-processing)
        err = {"message": f"Flex tier capacity exceeded for model `{model}`. Please try again later.",
               "type": "invalid_request_error", "code": "capacity_exceeded"}  # fmt: skip
    elif status == 413:
        err = {"message": (f"Request too large for model `{model}` in organization `{org}` service tier `on_demand` on "
                           "tokens per minute (TPM): Limit 6000, Requested 7210, please reduce your message size and try again."),
               "type": "tokens", "code": "rate_limit_exceeded"}  # fmt: skip
    elif status == 429:
        err = {"message": (f"Rate limit reached for model `{model}` in organization `{org}` service tier `on_demand` on "
                           "tokens per minute (TPM): Limit 6000, Used 5820, Requested 410. Please try again in 2.3s."),
               "type": "tokens", "code": "rate_limit_exceeded"}  # fmt: skip
    else:
        return openai_error(ctx, status, error_type, message)
    if message is not None:
        err["message"] = message
    return status, {"error": err}


PROFILE = Profile(
    name="groq",
    sources=(
        "https://console.groq.com/docs/api-reference#chat-create",
        "https://console.groq.com/docs/reasoning",
        "https://console.groq.com/docs/errors",
        "https://github.com/groq/groq-python/blob/main/src/groq/types/chat/chat_completion_chunk.py",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
)
