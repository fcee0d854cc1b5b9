"""Jina rerank: ``POST {base}/rerank`` (the shared rerank wire shape)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.embedding import RerankResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.errors import CredentialsValidateFailedError
from arun.model_types.rerank import RerankModel
from arun.protocols.jina import build_rerank_body, classify_error, parse_rerank_response
from arun.providers.jina._common import auth_headers, base_url, int_credential


class JinaRerankModel(RerankModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.RERANK,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={ModelPropertyKey.CONTEXT_SIZE.value: int_credential(credentials, "context_size", 8192)},
        )

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
        resp = await self.http.request(
            "POST",
            base_url(credentials) + "/rerank",
            headers=auth_headers(credentials),
            data=build_rerank_body(model, query, docs, top_n, return_documents=True),
            error_mapper=self.error_mapper(classify_error),
        )
        scored, returned_model = parse_rerank_response(self.provider_name, resp.body, docs)
        return RerankResult(model=model, docs=scored)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        try:
            await self._invoke(
                model,
                credentials,
                "What is the capital of France?",
                ["Paris is the capital of France.", "Berlin is in Germany."],
                None,
                None,
                None,
            )
        except CredentialsValidateFailedError:
            raise
        except Exception as exc:
            raise CredentialsValidateFailedError(f"An error occurred during credentials validation: {exc}") from exc
