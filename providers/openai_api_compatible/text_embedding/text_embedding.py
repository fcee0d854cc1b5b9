"""Embeddings from any OpenAI-compatible ``POST {endpoint_url}/embeddings``.

One request per batch of ``max_chunks`` texts (the base class batches; the form's
default is 1, as in Dify's plugin, because many servers accept one input per call).
``encoding_format: float`` is always sent: strict gateways (LiteLLM) require it and
some servers do not implement base64. ``query_prefix`` / ``document_prefix`` are
prepended by input type when configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.protocols.openai_misc import build_embedding_body, parse_embedding_response
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


def build_embedding_schema(model: str, credentials: Mapping[str, Any]) -> AIModelEntity:
    return AIModelEntity(
        model=model,
        label=I18nObject(en_US=model),
        model_type=ModelType.TEXT_EMBEDDING,
        fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
        model_properties={
            ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", 4096),
            ModelPropertyKey.MAX_CHUNKS.value: cred_int(credentials, "max_chunks", 1),
        },
        parameter_rules=[],
        pricing=price_config(credentials, output=False),
    )


class OAICompatEmbeddingModel(TextEmbeddingModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return build_embedding_schema(model, credentials)

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        schema = await self.get_model_schema(model, credentials)
        prefix = credentials.get("query_prefix" if input_type is EmbeddingInputType.QUERY else "document_prefix")
        if isinstance(prefix, str) and prefix:
            texts = [prefix + t for t in texts]
        inputs = await self._truncate(schema, texts)
        body = build_embedding_body(wire_model(model, credentials), inputs, encoding_format="float", user=user)
        resp = await self.http.request(
            "POST",
            url_for(credentials, "/embeddings"),
            headers=auth_headers(credentials),
            data=body,
            error_mapper=self.error_mapper(classify_error),
        )
        parsed = parse_embedding_response(PROVIDER, resp.body, len(inputs))
        vectors, tokens = parsed.embeddings, parsed.tokens
        if tokens is None:
            tokens = sum(await self.get_num_tokens(model, credentials, inputs))
        return TextEmbeddingResult(model=model, embeddings=vectors, usage=self._calc_response_usage(schema, tokens))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        require_endpoint(credentials)
        try:
            build_embedding_schema(model, credentials)
            await self._invoke(model, credentials, ["ping"], None, EmbeddingInputType.DOCUMENT)
        except Exception as exc:
            raise wrap_validation(exc) from exc
