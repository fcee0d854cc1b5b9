"""Rerank through an OpenAI-compatible server's ``POST {endpoint_url}/rerank`` (Jina/Cohere shape).

Request ``{model, query, documents, top_n}``; response ``results[]`` with ``index``,
``relevance_score`` and optionally ``document.text`` (the input text is used when
the server does not echo it). ``rerank_endpoint_url`` overrides the full URL. The
base class applies ``score_threshold`` and ``top_n`` and skips the request for no docs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from arun.entities.common import I18nObject
from arun.entities.embedding import RerankDocument, RerankResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.errors import InvokeServerUnavailableError
from arun.model_types.rerank import RerankModel
from arun.protocols.openai_chat import classify_error
from arun.providers.openai_api_compatible._common import (
    PROVIDER,
    auth_headers,
    cred_int,
    price_config,
    require_endpoint,
    url_for,
    wire_model,
    wrap_validation,
)


class _Document(msgspec.Struct):
    text: str | None = None


class _Result(msgspec.Struct):
    index: int
    relevance_score: float | None = None
    score: float | None = None
    document: _Document | str | None = None


class _Response(msgspec.Struct):
    results: list[_Result] | None = None
    data: list[_Result] | None = None  # Voyage-style servers
    model: str | None = None


_decoder = msgspec.json.Decoder(_Response)


def build_rerank_schema(model: str, credentials: Mapping[str, Any]) -> AIModelEntity:
    return AIModelEntity(
        model=model,
        label=I18nObject(en_US=model),
        model_type=ModelType.RERANK,
        fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
        model_properties={ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", 4096)},
        parameter_rules=[],
        pricing=price_config(credentials, output=False),
    )


def _rerank_url(credentials: Mapping[str, Any]) -> str:
    custom = credentials.get("rerank_endpoint_url")
    if isinstance(custom, str) and custom.strip().startswith(("http://", "https://")):
        return custom.strip()
    return url_for(credentials, "/rerank")


def parse_rerank(body: bytes, docs: list[str]) -> list[RerankDocument]:
    try:
        response = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, malformed rerank response: {exc}") from None
    results = response.results if response.results is not None else response.data
    if results is None:
        raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, the rerank response has no results")
    out = []
    for r in results:
        if not 0 <= r.index < len(docs):
            raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, rerank index {r.index} out of range")
        score = r.relevance_score if r.relevance_score is not None else r.score
        if score is None:
            raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, rerank result without a score")
        doc = r.document
        text = doc if isinstance(doc, str) else (doc.text if doc is not None and doc.text is not None else docs[r.index])
        out.append(RerankDocument(index=r.index, text=text, score=float(score)))
    return out


class OAICompatRerankModel(RerankModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return build_rerank_schema(model, credentials)

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        query: str,
        docs: list[str],
        score_threshold: float | None,
        top_n: int | None,
        user: str | None,
    ) -> RerankResult:
        body: dict[str, Any] = {"model": wire_model(model, credentials), "query": query, "documents": docs}
        if top_n is not None:
            body["top_n"] = top_n
        resp = await self.http.request(
            "POST",
            _rerank_url(credentials),
            headers=auth_headers(credentials),
            data=msgspec.json.encode(body),
            error_mapper=self.error_mapper(classify_error),
        )
        return RerankResult(model=model, docs=parse_rerank(resp.body, docs))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        require_endpoint(credentials)
        try:
            build_rerank_schema(model, credentials)
            await self._invoke(model, credentials, "What is the capital of France?", ["Paris is the capital of France."], None, 1, None)
        except Exception as exc:
            raise wrap_validation(exc) from exc
