"""Mistral's La Plateforme API (docs.mistral.ai/api).

* the request schemas refuse fields they do not define: a 422 whose ``message`` is an object
  ``{"detail": [{"type": "extra_forbidden", "loc": ["body", <field>], "msg": "Extra inputs are
  not permitted", ...}]}`` (reported for ``stream_options`` in dnakov/anon-kode#53, for
  ``frequency_penalty`` before Mistral took it in mistralai/platform-docs-public#7); OpenAI's
  ``seed`` is ``random_seed`` here and there is no ``user`` field;
* a stream needs no ``stream_options``: the usage comes on the chunk that carries the
  finish reason, and no separate usage chunk follows (dnakov/anon-kode#53: "Usage data is
  included by default");
* error bodies are flat, not under ``error``: ``{"object": "error", "message": ..., "type":
  ..., "param": ..., "code": ...}`` (resources/error-glossary); 429 ``"Rate limit exceeded",
  "type": "rate_limited", "code": "1300"`` (cline/cline#9085); a bad key gets
  ``{"message": "Unauthorized", "request_id": ...}`` (cline/cline#1734).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from arun.testing import sim_openai
from arun.testing.profiles import Profile
from arun.testing.profiles.common import guarded, request_usage, rewrite_chunks, usage_on_finish

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

#: the top-level fields of Mistral's chat-completion and embedding requests
CHAT_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n",
    "prediction", "parallel_tool_calls", "prompt_mode", "safe_prompt",
})  # fmt: skip
EMBEDDING_FIELDS = frozenset({"model", "input", "output_dimension", "output_dtype", "encoding_format"})


def _extra_forbidden(fields: frozenset[str]) -> Callable[[Ctx], web.StreamResponse | None]:
    """The request schema's check: a field outside ``fields`` is refused with a 422."""

    def refuse(ctx: Ctx) -> web.StreamResponse | None:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        extra = [name for name in body if name not in fields]
        if not extra:
            return None
        detail = [
            {"type": "extra_forbidden", "loc": ["body", name], "msg": "Extra inputs are not permitted", "input": body[name]}
            for name in extra
        ]
        obj = {"object": "error", "message": {"detail": detail}, "type": "invalid_request_error", "param": None, "code": None}
        return web.Response(body=msgspec.json.encode(obj), status=422, headers=ctx.headers("application/json"))

    return refuse


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    """Mistral's usage: the three counts, none of OpenAI's details."""
    return {k: usage[k] for k in ("prompt_tokens", "total_tokens", "completion_tokens")}


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    usage = _usage(request_usage(ctx, body))

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        for name in ("service_tier", "system_fingerprint", "obfuscation"):
            chunk.pop(name, None)
        return usage_on_finish(chunk, usage)

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    for name in ("service_tier", "system_fingerprint"):
        answer.pop(name, None)
    answer["usage"] = _usage(answer["usage"])
    return answer


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if status == 401 and error_type is None:
        return 401, {"message": message or "Unauthorized", "request_id": ctx.rid}
    if status == 429 and error_type is None:
        return 429, {"object": "error", "message": message or "Rate limit exceeded", "type": "rate_limited", "param": None, "code": "1300"}
    kind = "invalid_request_error" if status < 500 else "server_error"
    text = message or ("Invalid request" if status < 500 else "Internal server error")
    return status, {"object": "error", "message": text, "type": error_type or kind, "param": None, "code": None}


PROFILE = Profile(
    name="mistralai",
    sources=(
        "https://docs.mistral.ai/api",
        "https://docs.mistral.ai/resources/error-glossary",
        "https://github.com/dnakov/anon-kode/issues/53",
        "https://github.com/mistralai/platform-docs-public/issues/7",
        "https://github.com/cline/cline/issues/9085",
        "https://github.com/cline/cline/issues/1734",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    routes=(
        ("POST", "/chat/completions", guarded(_extra_forbidden(CHAT_FIELDS), sim_openai.chat), "json", "/v1/chat/completions"),
        ("POST", "/embeddings", guarded(_extra_forbidden(EMBEDDING_FIELDS), sim_openai.embeddings), "json", "/v1/embeddings"),
    ),
)
