"""The rerank wire shapes, as pure functions (request bytes out, scored documents in).

* ``results`` — Jina, Cohere, SiliconFlow, vLLM, Xinference and every compatible server:
  ``{model, query, documents, top_n}`` in; ``results[]`` (or ``data[]``) of ``{index,
  relevance_score | score, document: {text} | str}`` out;
* ``rankings`` — NVIDIA's ranking API: ``{model, query: {text}, passages: [{text}]}`` in;
  ``rankings[]`` of ``{index, logit}`` out (the score is the logit, as NVIDIA's docs present it);
* ``dashscope`` — DashScope's text-rerank: ``{model, input: {query, documents},
  parameters: {top_n, return_documents}}`` in; ``output.results[]`` out.

Every item's index is checked against the documents sent; a missing score or index is a typed
error, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from arun.entities.embedding import RerankDocument
from arun.errors import InvokeServerUnavailableError

__all__ = ["SHAPES", "build_rerank_body", "parse_rerank_response"]

SHAPES = ("results", "rankings", "dashscope")


class _Document(msgspec.Struct):
    text: str | None = None


class _Item(msgspec.Struct):
    index: int | None = None
    relevance_score: float | None = None
    score: float | None = None
    logit: float | None = None
    document: _Document | str | None = None


class _Output(msgspec.Struct):
    results: list[_Item] | None = None


class _Response(msgspec.Struct):
    results: list[_Item] | None = None
    data: list[_Item] | None = None
    rankings: list[_Item] | None = None
    output: _Output | None = None
    model: str | None = None


_decoder = msgspec.json.Decoder(_Response)


def build_rerank_body(
    shape: str,
    model: str,
    query: str,
    documents: Sequence[str],
    top_n: int | None = None,
    *,
    return_documents: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any]
    if shape == "rankings":
        body = {"model": model, "query": {"text": query}, "passages": [{"text": d} for d in documents]}
    elif shape == "dashscope":
        params: dict[str, Any] = {}
        if top_n is not None:
            params["top_n"] = top_n
        if return_documents is not None:
            params["return_documents"] = return_documents
        body = {"model": model, "input": {"query": query, "documents": list(documents)}, "parameters": params}
    else:
        body = {"model": model, "query": query, "documents": list(documents)}
        if top_n is not None:
            body["top_n"] = top_n
        if return_documents is not None:
            body["return_documents"] = return_documents
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


def parse_rerank_response(
    provider: str, body: bytes, documents: Sequence[str]
) -> tuple[list[RerankDocument], str | None]:
    """-> (scored documents in the server's order, model); the text falls back to the sent document."""
    try:
        resp = _decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed rerank response: {exc}") from None
    items = resp.results
    if items is None:
        items = resp.data if resp.data is not None else resp.rankings
    if items is None and resp.output is not None:
        items = resp.output.results
    if items is None:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the rerank response has no results")
    out = []
    for item in items:
        index = item.index
        if index is None or not 0 <= index < len(documents):
            raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, rerank index {index} out of range")
        score = item.relevance_score
        if score is None:
            score = item.score if item.score is not None else item.logit
        if score is None:
            raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, rerank result without a score")
        doc = item.document
        text = doc if isinstance(doc, str) else (doc.text if doc is not None and doc.text is not None else documents[index])
        out.append(RerankDocument(index=index, text=text, score=float(score)))
    return out, resp.model
