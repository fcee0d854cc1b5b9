"""Jina embeddings: OpenAI-shaped ``POST {base}/embeddings`` plus ``task`` for task-aware models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.errors import CredentialsValidateFailedError
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.protocols.jina import build_embedding_body, classify_error, parse_embedding_response
from arun.providers.jina._common import auth_headers, base_url, int_credential

#: models that take ``task`` (LoRA adapters per task); the input type picks query vs passage
_TASK_MODELS = ("jina-embeddings-v3", "jina-embeddings-v4")
_TASKS = {EmbeddingInputType.DOCUMENT: "retrieval.passage", EmbeddingInputType.QUERY: "retrieval.query"}


def _switch(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


class JinaTextEmbeddingModel(TextEmbeddingModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.TEXT_EMBEDDING,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.CONTEXT_SIZE.value: int_credential(credentials, "context_size", 8192),
                ModelPropertyKey.MAX_CHUNKS.value: 2048,
            },
        )

    def _extra(self, model: str, credentials: Mapping[str, Any], input_type: EmbeddingInputType) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        task = credentials.get("task")
        if not task and model.startswith(_TASK_MODELS):
            task = _TASKS[input_type]
        if task:
            extra["task"] = task
        dimensions = int_credential(credentials, "dimensions", None)
        if dimensions:
            extra["dimensions"] = dimensions
        if _switch(credentials.get("late_chunking")):
            extra["late_chunking"] = True
        return extra

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        schema = await self.get_model_schema(model, credentials)
        inputs = await self._truncate(schema, texts)
        resp = await self.http.request(
            "POST",
            base_url(credentials) + "/embeddings",
            headers=auth_headers(credentials),
            data=build_embedding_body(model, inputs, extra=self._extra(model, credentials, input_type)),
            error_mapper=self.error_mapper(classify_error),
        )
        vectors, tokens, _model = parse_embedding_response(self.provider_name, resp.body, len(inputs))
        if tokens is None:
            from arun.tokenizers import acount_many

            tokens = sum(await acount_many(inputs))
        return TextEmbeddingResult(model=model, embeddings=vectors, usage=self._calc_response_usage(schema, tokens))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            await self._invoke(model, credentials, ["ping"], None, EmbeddingInputType.DOCUMENT)
        except CredentialsValidateFailedError:
            raise
        except Exception as exc:
            raise CredentialsValidateFailedError(f"An error occurred during credentials validation: {exc}") from exc
