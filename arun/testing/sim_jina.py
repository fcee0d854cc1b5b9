"""Jina rerank protocol (PROTOCOLS.md §6); embeddings share the OpenAI route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from .content import rerank_score, rerank_tokens

if TYPE_CHECKING:  # pragma: no cover
    from .simulator import Ctx

AUTH = True
_encode = msgspec.json.encode

_MESSAGES = {
    400: "Invalid request",
    401: "Unauthorized: invalid API key",
    402: "Insufficient balance",
    404: "Model not found",
    413: "Request entity too large",
    422: "Validation error",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
}


def base_headers(ctx: "Ctx") -> dict[str, str]:
    return {"x-request-id": ctx.rid}


def error_response(ctx: "Ctx", status: int, error_type: str | None = None, message: str | None = None) -> web.Response:
    if message is None:
        if status == 404:
            model = ctx.body.get("model") if isinstance(ctx.body, dict) else None
            message = f"Model {model} not found"
        else:
            message = _MESSAGES.get(status) or error_type or "Error"
    return web.Response(body=_encode({"detail": message}), status=status, headers=ctx.headers("application/json"))


def stream_error_event(ctx: "Ctx") -> bytes:
    return b""


def _doc_text(d: Any) -> str | None:
    if isinstance(d, str):
        return d
    if isinstance(d, dict):
        t = d.get("text")
        return t if isinstance(t, str) else None
    return None


async def rerank(ctx: "Ctx") -> web.StreamResponse:
    body = ctx.body
    query = body.get("query")
    if isinstance(query, dict):
        query = query.get("text")
    docs_in = body.get("documents")
    if not isinstance(query, str) or not isinstance(docs_in, list):
        return ctx.error(422, None, "query and documents are required")
    docs = [_doc_text(d) for d in docs_in]
    if any(d is None for d in docs):
        return ctx.error(422, None, "documents must be strings or objects with a text field")
    texts: list[str] = [d for d in docs if d is not None]
    scored = sorted(((rerank_score(query, d), i) for i, d in enumerate(texts)), key=lambda x: (-x[0], x[1]))
    top_n = body.get("top_n")
    if isinstance(top_n, int) and top_n >= 0:
        scored = scored[:top_n]
    return_docs = body.get("return_documents", True) is not False
    results = []
    for score, i in scored:
        r: dict[str, Any] = {"index": i, "relevance_score": score}
        if return_docs:
            r["document"] = {"text": texts[i]}
        results.append(r)
    answer = {"model": body.get("model"), "usage": {"total_tokens": rerank_tokens(query, texts)}, "results": results}
    if ctx.profile is not None and ctx.profile.response_body is not None:
        answer = ctx.profile.response_body(ctx, "rerank", answer)
    return ctx.respond_json(answer)
