"""``TextEmbeddingModel``: batching by ``max_chunks``, truncation to ``context_size``, usage and price."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import Any, ClassVar

from arun.entities.embedding import EmbeddingInputType, EmbeddingUsage, TextEmbeddingResult
from arun.entities.model import AIModelEntity, ModelPropertyKey, ModelType, PriceType
from arun.errors import ParameterValidationError
from arun.model_types._batching import batched, gather_bounded
from arun.model_types.ai_model import AIModel
from arun.model_types.call_options import check_extras, use_extras

__all__ = ["TextEmbeddingModel"]


class TextEmbeddingModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.TEXT_EMBEDDING

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: Sequence[str],
        user: str | None = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
        *,
        max_concurrency: int = 4,
        on_progress: Callable[[int], None] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> TextEmbeddingResult:
        """Embed ``texts`` (in input order), in batches of the model's ``max_chunks``.

        ``on_progress(n)`` is called with the number of texts of each finished batch;
        ``extra_headers`` / ``extra_body`` add request headers and body fields for this call
        (``extra_body={"encoding_format": "float"}``, ``{"dimensions": 256}``).
        """
        extras = check_extras(extra_headers, extra_body)
        texts = self.check_inputs(texts)
        try:
            input_type = EmbeddingInputType(input_type)
        except ValueError:
            raise ParameterValidationError(f"input_type should be one of {[t.value for t in EmbeddingInputType]}", parameter="input_type") from None
        schema = await self.require_schema(model, credentials)
        started = perf_counter()
        if not texts:
            return TextEmbeddingResult(model=model, embeddings=[], usage=self._calc_response_usage(schema, 0))
        batches = batched(list(texts), self._get_max_chunks(schema))

        def job(batch: Sequence[str]) -> Callable[[], Any]:
            return lambda: self._invoke(model, credentials, list(batch), user, input_type)

        done = (lambda i: on_progress(len(batches[i]))) if on_progress else None
        try:
            with use_extras(extras):
                parts = await gather_bounded([job(b) for b in batches], max_concurrency, done)
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if error is exc:
                raise
            raise error from exc
        embeddings: list[list[float]] = []
        tokens = 0
        for part in parts:
            embeddings.extend(part.embeddings)
            tokens += part.usage.tokens
        usage = self._calc_response_usage(schema, tokens)
        usage.latency = round(perf_counter() - started, 6)
        return TextEmbeddingResult(model=parts[0].model or model, embeddings=embeddings, usage=usage)

    @staticmethod
    def check_inputs(texts: Any) -> list[str]:
        """``texts`` as a list of strings, or the typed error (a bare string is not a list of texts)."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise ParameterValidationError("texts should be a list of strings", parameter="texts")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ParameterValidationError(f"texts[{i}] should be a string", parameter="texts")
        return list(texts)

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        """Embed one batch (at most ``max_chunks`` texts)."""
        raise NotImplementedError

    async def get_num_tokens(self, model: str, credentials: Mapping[str, Any], texts: Sequence[str]) -> list[int]:
        from arun.tokenizers import acount_many

        return await acount_many(list(texts))

    def _get_context_size(self, schema: AIModelEntity | None) -> int:
        return int(schema.property(ModelPropertyKey.CONTEXT_SIZE, 1000)) if schema else 1000

    def _get_max_chunks(self, schema: AIModelEntity | None) -> int:
        return int(schema.property(ModelPropertyKey.MAX_CHUNKS, 1)) if schema else 1

    async def _truncate(self, schema: AIModelEntity | None, texts: list[str], encoding: str = "cl100k_base") -> list[str]:
        """Cut every text to ``context_size`` tokens (a text shorter in characters cannot be longer in tokens)."""
        limit = self._get_context_size(schema)
        if all(len(t) <= limit for t in texts):
            return texts
        import asyncio

        from arun.tokenizers import truncate_to_tokens

        def cut() -> list[str]:
            return [t if len(t) <= limit else truncate_to_tokens(t, limit, encoding) for t in texts]

        return await asyncio.to_thread(cut)

    def _calc_response_usage(self, schema: AIModelEntity | None, tokens: int) -> EmbeddingUsage:
        price = self.price(schema, PriceType.INPUT, tokens)
        return EmbeddingUsage(
            tokens=tokens,
            total_tokens=tokens,
            unit_price=price.unit_price,
            price_unit=price.unit,
            total_price=price.total_amount,
            currency=price.currency,
            latency=0.0,
        )


