"""MiniMax's OpenAI-compatible chat and its native embeddings (platform.minimaxi.com / platform.minimax.io).

* the M2.x models put their thinking inline at the start of ``content`` as ``<think>...</think>``
  (streamed in pieces like the answer) unless the request sets ``reasoning_split``
  (api-reference/text-openai-api);
* answers carry ``base_resp: {status_code, status_msg}``; a nonzero ``status_code`` is an error,
  also inside a 200 answer (whose ``choices`` is then null) and inside a stream
  (api-reference/errorcode).  The simulator answers with such a 200 when the last user message
  contains ``[sim:base_resp:<code>]``; a stream's error event is ``1027 output new_sensitive``;
* error statuses come with a ``base_resp`` body whose code matches the status (1002 for a 429,
  1004 for a 401 ...) [I: the pairing of codes with HTTP statuses is not documented];
* embeddings are native: ``POST /v1/embeddings?GroupId=`` with ``texts`` and ``type`` (``db`` or
  ``query``) answers ``vectors`` and ``total_tokens`` (the embeddings API; the minimax Dify plugin).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import after_role, data_event, last_user_text, rewrite_chunks

if TYPE_CHECKING:
    from aiohttp import web

    from arun.testing.simulator import Ctx

REASONING = ["The user", " wants a", " short answer."]
_OK = {"status_code": 0, "status_msg": ""}
_FORCED = re.compile(r"\[sim:base_resp:(\d+)\]")

#: the documented message of each code (api-reference/errorcode)
MESSAGES = {
    1000: "unknown error", 1001: "request timeout", 1002: "rate limit", 1004: "not authorized",
    1008: "insufficient balance", 1024: "internal error", 1026: "input new_sensitive",
    1027: "output new_sensitive", 1039: "token limit", 2013: "invalid params", 2049: "invalid api key",
    2056: "usage limit exceeded",
}  # fmt: skip
_BY_STATUS = {400: 2013, 401: 1004, 403: 1004, 404: 2013, 408: 1001, 413: 2013, 422: 2013, 429: 1002}
_BY_TYPE = {"insufficient_quota": 1008, "content_filter": 1026, "invalid_api_key": 2049, "usage_limit": 2056}


def _base_resp(code: int) -> dict[str, Any]:
    return {"status_code": code, "status_msg": MESSAGES.get(code, "error")}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    code = _BY_TYPE.get(error_type or "") or _BY_STATUS.get(status) or 1000
    resp = _base_resp(code)
    if message:
        resp["status_msg"] = message
    return status, {"base_resp": resp}


def _forced(text: str) -> int | None:
    found = _FORCED.search(text)
    return int(found.group(1)) if found else None


def _thinks_inline(body: dict[str, Any]) -> bool:
    return str(body.get("model") or "").startswith("MiniMax-M2") and not body.get("reasoning_split")


def _failed_answer(body: dict[str, Any], code: int) -> dict[str, Any]:
    return {"id": "", "choices": None, "created": int(time.time()), "model": body.get("model"), "base_resp": _base_resp(code)}


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    forced = _forced(last_user_text(body))
    if forced is not None:
        return [data_event(_failed_answer(body, forced))]
    inline = _thinks_inline(body)

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        chunk.pop("obfuscation", None)
        choices = chunk.get("choices") or []
        if not choices:  # the usage chunk ends the stream
            chunk["base_resp"] = dict(_OK)
            return [chunk]
        delta = choices[0].get("delta") or {}
        if inline and not delta.get("tool_calls"):
            return after_role(chunk, ["<think>", *REASONING, "</think>\n\n"], field="content")
        return [chunk]

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    forced = _forced(last_user_text(body))
    if forced is not None:
        return _failed_answer(body, forced)
    message = answer["choices"][0]["message"]
    if _thinks_inline(body) and message.get("content"):
        message["content"] = "<think>" + "".join(REASONING) + "</think>\n\n" + message["content"]
    answer["base_resp"] = dict(_OK)
    return answer


def stream_error(ctx: Ctx) -> bytes:
    return data_event({"id": "", "choices": None, "base_resp": _base_resp(1027)})


async def embeddings(ctx: Ctx) -> web.StreamResponse:
    """The native embeddings endpoint: ``texts`` + ``type`` in, ``vectors`` out."""
    from arun.testing.content import embedding_tokens, embedding_vector

    body = ctx.body
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or body.get("type") not in ("db", "query"):
        return ctx.respond_json({"vectors": None, "base_resp": _base_resp(2013)})
    forced = next((code for t in texts if (code := _forced(str(t))) is not None), None)
    if forced is not None:
        return ctx.respond_json({"vectors": None, "total_tokens": 0, "base_resp": _base_resp(forced)})
    dim = ctx.config.embedding_dim
    # the simulator folds the type into the vector, so a test can tell db and query apart
    vectors = [embedding_vector(f"{body['type']}:{t}", dim) for t in texts]
    return ctx.respond_json({"vectors": vectors, "total_tokens": embedding_tokens(texts), "base_resp": {"status_code": 0, "status_msg": "success"}})


PROFILE = Profile(
    name="minimax",
    sources=(
        "https://platform.minimaxi.com/docs/api-reference/text-openai-api",
        "https://platform.minimax.io/docs/api-reference/errorcode",
        "https://platform.minimaxi.com/docs/api-reference/embeddings",
        "dify-official-plugins models/minimax/models/text_embedding/text_embedding.py",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    stream_error=stream_error,
    routes=(("POST", "/embeddings", embeddings, "json", "/v1/embeddings"),),
)
