"""OpenAI text embeddings: base64 float32 on the wire, batches of ``max_chunks``, inputs cut to ``context_size``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
from arun.errors import CredentialsValidateFailedError
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.openai_misc import build_embedding_body, parse_embedding_response
from arun.providers.openai._common import auth_headers, base_url


class OpenAITextEmbeddingModel(TextEmbeddingModel):
    encoding_format = "base64"

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
        body = build_embedding_body(model, inputs, encoding_format=self.encoding_format, user=user)
        resp = await self.http.request(
            "POST",
            base_url(credentials) + "/embeddings",
            headers=auth_headers(credentials),
            data=body,
            error_mapper=self.error_mapper(classify_error),
        )
        parsed = parse_embedding_response(self.provider_name, resp.body, expected=len(inputs))
        tokens = parsed.tokens
        if tokens is None:
            tokens = sum(await self.get_num_tokens(model, credentials, inputs))
        return TextEmbeddingResult(
            model=parsed.model or model,
            embeddings=parsed.embeddings,
            usage=self._calc_response_usage(schema, tokens),
        )

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            await self.require_schema(model, credentials)
            await self._invoke(model, credentials, ["ping"], None, EmbeddingInputType.DOCUMENT)
        except Exception as exc:
            raise CredentialsValidateFailedError(str(exc) or type(exc).__name__) from exc
