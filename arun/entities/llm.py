"""LLM results, chunks and usage.

Results, chunks and usage are created per call and per streamed chunk and never
take part in reference cycles, so they are not tracked by the garbage collector
(``gc=False``): a stream of thousands of chunks adds no collector work.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

import msgspec

from arun.entities.messages import AssistantPromptMessage, PromptMessage

__all__ = ["LLMMode", "LLMUsage", "LLMResult", "LLMResultChunk", "LLMResultChunkDelta", "NumTokensResult"]

_ZERO = Decimal("0")


class LLMMode(str, Enum):
    COMPLETION = "completion"
    CHAT = "chat"

    @classmethod
    def value_of(cls, value: str) -> LLMMode:
        for member in cls:
            if member.value == value:
                return member
        raise ValueError(f"invalid mode value {value}")


class LLMUsage(msgspec.Struct, gc=False):
    prompt_tokens: int
    prompt_unit_price: Decimal
    prompt_price_unit: Decimal
    prompt_price: Decimal
    completion_tokens: int
    completion_unit_price: Decimal
    completion_price_unit: Decimal
    completion_price: Decimal
    total_tokens: int
    total_price: Decimal
    currency: str
    latency: float
    time_to_first_token: float | None = None
    time_to_generate: float | None = None

    @classmethod
    def empty_usage(cls) -> LLMUsage:
        return cls(0, _ZERO, _ZERO, _ZERO, 0, _ZERO, _ZERO, _ZERO, 0, _ZERO, "USD", 0.0)

    def plus(self, other: LLMUsage) -> LLMUsage:
        """Dify's sum: an empty left side yields ``other``; units and currency come from ``other``."""
        if self.total_tokens == 0:
            return other
        return LLMUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            prompt_unit_price=other.prompt_unit_price,
            prompt_price_unit=other.prompt_price_unit,
            prompt_price=self.prompt_price + other.prompt_price,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            completion_unit_price=other.completion_unit_price,
            completion_price_unit=other.completion_price_unit,
            completion_price=self.completion_price + other.completion_price,
            total_tokens=self.total_tokens + other.total_tokens,
            total_price=self.total_price + other.total_price,
            currency=other.currency,
            latency=self.latency + other.latency,
        )

    __add__ = plus


class LLMResult(msgspec.Struct, omit_defaults=True, gc=False):
    model: str
    message: AssistantPromptMessage
    usage: LLMUsage
    prompt_messages: list[PromptMessage] = []
    id: str | None = None
    system_fingerprint: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None


class LLMResultChunkDelta(msgspec.Struct, omit_defaults=True, gc=False):
    index: int
    message: AssistantPromptMessage
    usage: LLMUsage | None = None
    finish_reason: str | None = None


class LLMResultChunk(msgspec.Struct, omit_defaults=True, gc=False):
    model: str
    delta: LLMResultChunkDelta
    prompt_messages: list[PromptMessage] = []
    system_fingerprint: str | None = None


class NumTokensResult(msgspec.Struct):
    tokens: int
    unit_price: Decimal = _ZERO
    unit: Decimal = _ZERO
    total_amount: Decimal = _ZERO
    currency: str = "USD"


