"""Text embedding and rerank results."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

import msgspec

__all__ = ["EmbeddingInputType", "EmbeddingUsage", "TextEmbeddingResult", "RerankDocument", "RerankResult"]


class EmbeddingInputType(str, Enum):
    DOCUMENT = "document"
    QUERY = "query"


class EmbeddingUsage(msgspec.Struct):
    tokens: int
    total_tokens: int
    unit_price: Decimal
    price_unit: Decimal
    total_price: Decimal
    currency: str
    latency: float


class TextEmbeddingResult(msgspec.Struct):
    model: str
    embeddings: list[list[float]]
    usage: EmbeddingUsage


class RerankDocument(msgspec.Struct):
    index: int
    text: str
    score: float


class RerankResult(msgspec.Struct):
    model: str
    docs: list[RerankDocument]
