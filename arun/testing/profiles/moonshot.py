"""Moonshot's Kimi chat completions (platform.kimi.ai / platform.moonshot.cn).

* the streamed answer reports its usage inside ``choices[0].usage`` of the last chunk (the one
  with the finish reason), not at the top level and not in a separate chunk (PROTOCOLS.md §8.2;
  third-party client structs such as panday94/chat-master ``ChatCompletionStreamChoice``);
* the K2.5-and-later models accept only ``temperature: 1`` and answer any other value with a 400
  ``invalid temperature: only 1 is allowed for this model`` (HKUDS/nanobot#202, getcoherence/studio
  0.3.30 for K2.6, dev.to "Kimi K3.1 Pro migration guide" for K3);
* thinking models answer with ``reasoning_content`` before the content (guide/use-kimi-k2-thinking-model):
  K2.6 unless ``thinking: {type: disabled}``, K3 and K2.7 Code always;
* errors are ``{"error": {"type", "message"}}`` with Kimi's types: a 429 is
  ``rate_limit_reached_error``, ``exceeded_current_quota_error`` or ``engine_overloaded_error``,
  a context overflow is an ``invalid_request_error`` "Your request exceeded model token limit"
  (api/errors).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from arun.testing import sim_openai
from arun.testing.profiles import Profile
from arun.testing.profiles.common import (
    after_role,
    guarded,
    reasoning_message,
    request_usage,
    rewrite_chunks,
    thinking_disabled,
    usage_on_finish,
)

if TYPE_CHECKING:
    from aiohttp import web

    from arun.testing.simulator import Ctx

REASONING = ["Let me", " think", " this through."]
_FIXED_TEMPERATURE = re.compile(r"^kimi-(k2\.[5-9]|k3)")

_BY_TYPE = {
    "insufficient_quota": ("exceeded_current_quota_error", "You exceeded your current quota, please check your plan and billing details"),
    "overloaded": ("engine_overloaded_error", "The engine is currently overloaded, please try again later"),
    "context_length_exceeded": ("invalid_request_error", "Your request exceeded model token limit: 262144"),
    "content_filter": ("content_filter", "The request was rejected because it was considered high risk"),
}
_BY_STATUS = {
    400: ("invalid_request_error", "Invalid request: messages are malformed"),
    401: ("invalid_authentication_error", "Invalid Authentication"),
    403: ("permission_denied_error", "The API you are accessing is not open"),
    404: ("resource_not_found_error", "Not found the model or Permission denied"),
    429: ("rate_limit_reached_error", "Your account reached the max request per minute limit, please try again later"),
}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    known = _BY_TYPE.get(error_type or "")
    if known is not None:
        kind, text = known
    elif error_type == "invalid_request_error":
        kind, text = error_type, "Invalid request"
    else:
        kind, text = _BY_STATUS.get(status) or ("server_error", "Internal server error")
    return status, {"error": {"type": kind, "message": message or text}}


def _thinking(body: dict[str, Any]) -> bool:
    model = str(body.get("model") or "")
    if model.startswith(("kimi-k3", "kimi-k2.7")):
        return True
    return model.startswith("kimi-k2.6") and not thinking_disabled(body)


def _fixed_temperature(ctx: Ctx) -> web.StreamResponse | None:
    """A temperature the model does not take is refused before the answer."""
    body = ctx.body
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1 and _FIXED_TEMPERATURE.match(str(body.get("model") or "")):
        return ctx.error(400, "invalid_request_error", "invalid temperature: only 1 is allowed for this model")
    return None


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    thinking = _thinking(body)
    usage = request_usage(ctx, body)

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        chunk.pop("obfuscation", None)
        out = usage_on_finish(chunk, usage, into_choice=True)
        return after_role(chunk, REASONING) if thinking and out else out

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return reasoning_message(answer, REASONING) if _thinking(body) else answer


PROFILE = Profile(
    name="moonshot",
    sources=(
        "https://platform.kimi.ai/docs/api/errors",
        "https://platform.moonshot.cn/docs/guide/use-kimi-k2-thinking-model",
        "PROTOCOLS.md §8.2 (usage inside choices[0])",
        "https://github.com/HKUDS/nanobot/issues/202",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    routes=(("POST", "/chat/completions", guarded(_fixed_temperature, sim_openai.chat), "json", "/v1/chat/completions"),),
)
