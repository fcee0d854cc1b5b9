"""Jina-style embeddings and the generic rerank wire shape, as pure functions.

The rerank shape (``model``, ``query``, ``documents``, ``top_n``, ``return_documents`` in;
``results[].index / relevance_score / document.text`` out) is shared by Jina, SiliconFlow,
Xinference and other services, so its functions carry generic names. Voyage answers
with ``data`` instead of ``results``; the parser accepts both.

Embeddings are OpenAI-shaped (``model``, ``input`` -> ``data[].embedding`` by ``index``),
plus Jina's ``task`` (``retrieval.query`` / ``retrieval.passage``) and ``dimensions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from arun.entities.embedding import RerankDocument
from arun.errors import InvokeError, InvokeQuotaExhaustedError, InvokeServerUnavailableError
from arun.protocols import openai_chat
from arun.protocols.errors import build_error

__all__ = [
    "build_embedding_body",
    "parse_embedding_response",
    "build_rerank_body",
    "parse_rerank_response",
    "classify_error",
]

# -- embeddings -------------------------------------------------------------------------------


def build_embedding_body(
    model: str,
    texts: Sequence[str],
    *,
    task: str | None = None,
    dimensions: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {"model": model, "input": list(texts)}
    if task:
        body["task"] = task
    if dimensions:
        body["dimensions"] = dimensions
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


class _EmbeddingItem(msgspec.Struct):
    embedding: list[float]
    index: int | None = None


class _EmbeddingUsage(msgspec.Struct):
    total_tokens: int | None = None
    prompt_tokens: int | None = None


class _EmbeddingResponse(msgspec.Struct):
    data: list[_EmbeddingItem] = []
    model: str | None = None
    usage: _EmbeddingUsage | None = None


_embedding_decoder = msgspec.json.Decoder(_EmbeddingResponse)


def parse_embedding_response(
    provider: str, body: bytes, expected: int
) -> tuple[list[list[float]], int | None, str | None]:
    """-> (vectors in input order, total tokens or None, model)."""
    try:
        resp = _embedding_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    items = resp.data
    if len(items) != expected:
        raise InvokeServerUnavailableError(
            f"[{provider}] Server Unavailable Error, expected {expected} embeddings, got {len(items)}"
        )
    if all(item.index is not None for item in items):
        ordered: list[list[float] | None] = [None] * expected
        for item in items:
            i = item.index
            assert i is not None
            if not 0 <= i < expected or ordered[i] is not None:
                raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, bad embedding index {i}")
            ordered[i] = item.embedding
        vectors = [v for v in ordered if v is not None]
    else:
        vectors = [item.embedding for item in items]
    usage = resp.usage
    tokens = None
    if usage is not None:
        tokens = usage.total_tokens if usage.total_tokens is not None else usage.prompt_tokens
    return vectors, tokens, resp.model


# -- rerank ------------------------------------------------------------------------------------


def build_rerank_body(
    model: str,
    query: str,
    documents: Sequence[str],
    top_n: int | None = None,
    *,
    return_documents: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {"model": model, "query": query, "documents": list(documents)}
    if top_n is not None:
        body["top_n"] = top_n
    body["return_documents"] = return_documents
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


class _RerankDocumentBody(msgspec.Struct):
    text: str | None = None


class _RerankItem(msgspec.Struct):
    index: int
    relevance_score: float
    document: _RerankDocumentBody | str | None = None


class _RerankResponse(msgspec.Struct):
    results: list[_RerankItem] | None = None
    data: list[_RerankItem] | None = None
    model: str | None = None


_rerank_decoder = msgspec.json.Decoder(_RerankResponse)


def parse_rerank_response(provider: str, body: bytes, documents: Sequence[str]) -> tuple[list[RerankDocument], str | None]:
    """-> (scored documents in the server's order, model). The text falls back to the sent document."""
    try:
        resp = _rerank_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    items = resp.results if resp.results is not None else resp.data
    if items is None:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the response has no results")
    out = []
    for item in items:
        if not 0 <= item.index < len(documents):
            raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, bad result index {item.index}")
        doc = item.document
        if isinstance(doc, str):
            text = doc
        elif doc is not None and doc.text is not None:
            text = doc.text
        else:
            text = documents[item.index]
        out.append(RerankDocument(index=item.index, text=text, score=float(item.relevance_score)))
    return out, resp.model


# -- errors --------------------------------------------------------------------------------------


def _detail(body: bytes) -> str | None:
    try:
        data = msgspec.json.decode(body.strip() or b"null")
    except msgspec.DecodeError:
        return body[:500].decode("utf-8", "replace").strip() or None
    if isinstance(data, dict):
        for key in ("detail", "error", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if value:
                return value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return None


def classify_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> InvokeError:
    """``{"detail": ...}`` (FastAPI), ``{"error": ...}`` or text; 402 (no balance) -> quota exhausted."""
    if status == 402:
        text = _detail(body) or "insufficient balance"
        return build_error(InvokeQuotaExhaustedError, provider, status, text, headers, body)
    return openai_chat.classify_error(provider, status, headers, body)
