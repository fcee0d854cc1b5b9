"""The Anthropic Messages family: ``POST /v1/messages`` with ``x-api-key`` and ``anthropic-version``.

Token counts are offline approximations (Claude's tokenizer is not public, so cl100k_base
with OpenAI's recipe stands in); the exact count needs a network call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from arun.entities.llm import LLMResult, LLMResultChunk
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.entities.model import AIModelEntity
from arun.families.base import FamilyModel
from arun.model_types.call_options import current_extras
from arun.model_types.llm import LargeLanguageModel
from arun.protocols.anthropic_messages import (
    API_VERSION,
    DEFAULT_MAX_TOKENS,
    MessagesStreamAssembler,
    build_messages_body,
    classify_error,
    parse_messages_response,
)
from arun.protocols.openai_tokens import num_tokens_from_messages
from arun.wire.client import StreamResponse
from arun.wire.decoders import SSEDecoder
from arun.wire.stream import AssembledStream, assemble_stream

__all__ = ["AnthropicMessagesLLM"]


def _count_prompt(messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool] | None) -> int:
    return num_tokens_from_messages("claude", messages, tools)


def _iterate(resp: StreamResponse, asm: MessagesStreamAssembler) -> AssembledStream:
    """Read the SSE body to its end, yielding content chunks, then the terminal chunk."""
    return assemble_stream(resp, SSEDecoder(), asm, asm.feed_into, asm.feed_tail_into)


class AnthropicMessagesLLM(FamilyModel, LargeLanguageModel):
    family = "anthropic_messages"

    def _max_tokens_default(self, schema: AIModelEntity | None) -> int:
        if schema is not None:
            for rule in schema.parameter_rules:
                if rule.name == "max_tokens" and isinstance(rule.default, int) and not isinstance(rule.default, bool):
                    return rule.default
        return DEFAULT_MAX_TOKENS

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None,
        stop: list[str] | None,
        stream: bool,
        user: str | None,
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        schema = await self.get_model_schema(model, credentials)
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        body = build_messages_body(
            wire_model,
            prompt_messages,
            endpoint.wire_parameters(model, model_parameters),
            tools,
            stop,
            stream,
            user,
            default_max_tokens=self._max_tokens_default(schema),
            extra=extras.body if extras else None,
        )
        headers.setdefault("anthropic-version", API_VERSION)
        usage_fn = self._usage_with_fallback(schema, lambda: _count_prompt(prompt_messages, tools))
        provider = self.provider_name
        return await self._exchange(
            url,
            headers,
            body,
            self.error_mapper(classify_error),
            stream,
            lambda raw: parse_messages_response(provider, raw, model, prompt_messages, usage_fn),
            lambda resp: _iterate(resp, MessagesStreamAssembler(provider, model, prompt_messages, usage_fn, incremental_tool_calls=bool(extras and extras.incremental_tool_calls))),
        )

    async def get_num_tokens(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Sequence[PromptMessage],
        tools: Sequence[PromptMessageTool] | None = None,
    ) -> int:
        return await asyncio.to_thread(_count_prompt, list(prompt_messages), list(tools) if tools else None)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        await self._validate_by_invoking(model, credentials)
