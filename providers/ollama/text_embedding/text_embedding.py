"""Ollama embedding models over ``/api/embed`` (one request per batch of texts)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType, PriceConfig
from arun.errors import CredentialsValidateFailedError
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.protocols.ollama import build_embed_body, classify_error, parse_embed_response
from arun.providers.ollama._common import base_url, headers, int_credential

#: texts per /api/embed request (Ollama embeds a list in one call)
MAX_CHUNKS = 32


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return Decimal(0)


class OllamaTextEmbeddingModel(TextEmbeddingModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.TEXT_EMBEDDING,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.CONTEXT_SIZE.value: int_credential(credentials, "context_size", 512),
                ModelPropertyKey.MAX_CHUNKS.value: MAX_CHUNKS,
            },
            pricing=PriceConfig(
                input=_decimal(credentials.get("input_price")),
                unit=_decimal(credentials.get("unit")),
                currency=str(credentials.get("currency") or "USD"),
            ),
        )

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        schema = await self.get_model_schema(model, credentials)
        inputs = await self._truncate(schema, texts, "gpt2")
        resp = await self.http.request(
            "POST",
            base_url(credentials) + "/api/embed",
            headers=headers(credentials),
            data=build_embed_body(model, inputs),
            error_mapper=self.error_mapper(classify_error),
        )
        vectors, tokens = parse_embed_response(self.provider_name, resp.body, len(inputs))
        if tokens is None:
            from arun.tokenizers import acount_many

            tokens = sum(await acount_many(inputs))
        return TextEmbeddingResult(model=model, embeddings=vectors, usage=self._calc_response_usage(schema, tokens))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            int_credential(credentials, "context_size", 512)
            await self._invoke(model, credentials, ["ping"], None, EmbeddingInputType.DOCUMENT)
        except CredentialsValidateFailedError:
            raise
        except Exception as exc:
            raise CredentialsValidateFailedError(f"An error occurred during credentials validation: {exc}") from exc
