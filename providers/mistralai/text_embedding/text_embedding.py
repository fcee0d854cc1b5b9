"""Mistral embeddings: the openai_embedding family without the ``user`` field.

Mistral's embedding request (docs.mistral.ai/api, embeddings) has no ``user`` field and the API
refuses unknown fields with a 422 ``extra_forbidden``, so a caller's user id is not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.families.openai_embedding import OpenAIEmbedding


class MistralEmbedding(OpenAIEmbedding):
    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        return await super()._invoke(model, credentials, texts, None, input_type)
