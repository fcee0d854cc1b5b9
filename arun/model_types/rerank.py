"""``RerankModel``: score documents against a query, filter by threshold, keep the top N."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from arun.entities.embedding import RerankResult
from arun.entities.model import ModelType
from arun.errors import ParameterValidationError
from arun.model_types.ai_model import AIModel
from arun.model_types.call_options import check_extras, use_extras

__all__ = ["RerankModel"]


class RerankModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.RERANK

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        query: str,
        docs: Sequence[str],
        score_threshold: float | None = None,
        top_n: int | None = None,
        user: str | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> RerankResult:
        """Documents sorted by score (desc), those below ``score_threshold`` dropped, at most ``top_n``."""
        extras = check_extras(extra_headers, extra_body)
        self.check_inputs(query, docs, score_threshold, top_n)
        await self.require_schema(model, credentials)
        if not docs:
            return RerankResult(model=model, docs=[])
        try:
            with use_extras(extras):
                result = await self._invoke(model, credentials, query, list(docs), score_threshold, top_n, user)
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if error is exc:
                raise
            raise error from exc
        kept = [d for d in result.docs if score_threshold is None or d.score >= score_threshold]
        kept.sort(key=lambda d: d.score, reverse=True)
        if top_n is not None:
            kept = kept[:top_n]
        return RerankResult(model=result.model or model, docs=kept)

    @staticmethod
    def check_inputs(query: Any, docs: Any, score_threshold: Any = None, top_n: Any = None) -> None:
        if not isinstance(query, str):
            raise ParameterValidationError("query should be a string", parameter="query")
        if isinstance(docs, str) or not isinstance(docs, Sequence) or not all(isinstance(d, str) for d in docs):
            raise ParameterValidationError("docs should be a list of strings", parameter="docs")
        if score_threshold is not None and (not isinstance(score_threshold, (int, float)) or isinstance(score_threshold, bool)):
            raise ParameterValidationError("score_threshold should be a number", parameter="score_threshold")
        if top_n is not None and (not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1):
            raise ParameterValidationError("top_n should be a positive int", parameter="top_n")

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
        raise NotImplementedError


