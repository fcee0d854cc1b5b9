"""The rerank family: one adapter for every rerank wire shape (:mod:`arun.protocols.rerank`).

Options: ``shape`` (``results`` | ``rankings`` | ``dashscope``; default ``results``),
``return_documents`` (sent when set), ``customizable_defaults: {context_size}``, ``score``
(``sigmoid``: the server's scores are logits, reported as ``1 / (1 + e^-logit)`` in [0, 1] so a
``score_threshold`` means what it means elsewhere — NVIDIA's rankings, as Dify reports them).  A
``rerank_endpoint_url`` credential (the compatible form's) replaces the whole URL.  The base
class applies ``score_threshold`` and ``top_n`` and skips the request when there are no docs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.embedding import RerankDocument, RerankResult
from arun.entities.model import AIModelEntity, FetchFrom, ModelPropertyKey, ModelType
from arun.families.base import FamilyModel
from arun.families.helpers import (
    cred_int,
    cred_text,
    price_config,
    validate_by,
)
from arun.model_types.call_options import current_extras
from arun.model_types.rerank import RerankModel
from arun.protocols.openai_chat import classify_error
from arun.protocols.rerank import build_rerank_body, parse_rerank_response

__all__ = ["RerankFamily"]


class RerankFamily(FamilyModel, RerankModel):
    family = "rerank"

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        if not self.builds_schemas:
            return None
        defaults = self.options.get("customizable_defaults") or {}
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.RERANK,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", int(defaults.get("context_size", 4096)))
            },
            parameter_rules=[],
            pricing=price_config(credentials, output=False),
        )

    def _url(self, credentials: Mapping[str, Any], url: str) -> str:
        custom = cred_text(credentials, "rerank_endpoint_url")
        if custom and custom.startswith(("http://", "https://")):
            return custom
        return url

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
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        body = build_rerank_body(
            str(self.options.get("shape", "results")),
            wire_model,
            query,
            docs,
            top_n,
            return_documents=self.options.get("return_documents"),
            extra={**endpoint.wire_parameters(model, {}), **(extras.body or {} if extras else {})},
        )
        resp = await self.http.request(
            "POST",
            self._url(credentials, url),
            headers=headers,
            data=body,
            error_mapper=self.error_mapper(classify_error),
        )
        documents, _ = parse_rerank_response(self.provider_name, resp.body, docs)
        if self.options.get("score") == "sigmoid":
            documents = [RerankDocument(index=d.index, text=d.text, score=_sigmoid(d.score)) for d in documents]
        return RerankResult(model=model, docs=documents)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        await validate_by(lambda: self.require_schema(model, credentials), credentials, self.context.secret_fields)
        await validate_by(lambda: self._invoke(
            model, credentials, "What is the capital of France?", ["Paris is the capital of France."], None, 1, None
        ), credentials, self.context.secret_fields)  # fmt: skip


def _sigmoid(logit: float) -> float:
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)  # no overflow for very negative logits
    return z / (1.0 + z)
