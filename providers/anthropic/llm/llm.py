"""Anthropic Claude models over the Messages API (``POST {anthropic_api_url}/v1/messages``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.entities.model import AIModelEntity
from arun.model_types.llm import LargeLanguageModel
from arun.protocols.anthropic_messages import (
    API_VERSION,
    DEFAULT_MAX_TOKENS,
    MessagesStreamAssembler,
    build_messages_body,
    classify_error,
    parse_messages_response,
)
from arun.redact import register_secret
from arun.wire.client import StreamResponse
from arun.protocols.streaming import assemble_stream
from arun.wire.decoders import SSEDecoder

DEFAULT_BASE = "https://api.anthropic.com"


def base_url(credentials: Mapping[str, Any]) -> str:
    """``anthropic_api_url`` as Dify stores it (with or without ``/v1``), else the public API."""
    base = str(credentials.get("anthropic_api_url") or DEFAULT_BASE).rstrip("/")
    return base[:-3] if base.endswith("/v1") else base


def auth_headers(credentials: Mapping[str, Any]) -> dict[str, str]:
    key = credentials.get("anthropic_api_key") or ""
    register_secret(key)
    return {"x-api-key": str(key), "anthropic-version": API_VERSION, "content-type": "application/json"}


def _messages_as_dicts(messages: Sequence[PromptMessage]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role.value, "content": m.text()}
        calls = getattr(m, "tool_calls", None)
        if calls:
            item["tool_calls"] = [msgspec.to_builtins(c) for c in calls]
        out.append(item)
    return out


def _count_prompt(messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool] | None) -> int:
    """Offline estimate: Claude's tokenizer is not public, so cl100k_base (OpenAI's recipe) approximates it."""
    from arun.tokenizers import num_tokens_from_messages

    tool_dicts = [msgspec.to_builtins(t) for t in tools] if tools else None
    return num_tokens_from_messages("claude", _messages_as_dicts(messages), tool_dicts)


def _iterate(resp: StreamResponse, asm: MessagesStreamAssembler) -> AsyncIterator[LLMResultChunk]:
    """Read the SSE body to its end, yielding content chunks, then the terminal chunk."""
    feed = asm.feed
    return assemble_stream(
        resp,
        SSEDecoder(),
        asm,
        lambda item: feed(item[0], item[1]),
        lambda item: feed(item[0], item[1], tail=True),
    )


class AnthropicLargeLanguageModel(LargeLanguageModel):
    def _max_tokens_default(self, schema: AIModelEntity | None) -> int:
        if schema is not None:
            for rule in schema.parameter_rules:
                if rule.name == "max_tokens" and isinstance(rule.default, int) and not isinstance(rule.default, bool):
                    return rule.default
        return DEFAULT_MAX_TOKENS

    def _usage_fn(
        self, schema: AIModelEntity | None, messages: list[PromptMessage], tools: list[PromptMessageTool] | None
    ) -> Any:
        return self._usage_with_fallback(schema, lambda: _count_prompt(messages, tools))

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
        body = build_messages_body(
            model,
            prompt_messages,
            model_parameters,
            tools,
            stop,
            stream,
            user,
            default_max_tokens=self._max_tokens_default(schema),
        )
        url = base_url(credentials) + "/v1/messages"
        headers = auth_headers(credentials)
        mapper = self.error_mapper(classify_error)
        usage_fn = self._usage_fn(schema, prompt_messages, tools)
        provider = self.provider_name
        return await self._exchange(
            url,
            headers,
            body,
            mapper,
            stream,
            lambda raw: parse_messages_response(provider, raw, model, prompt_messages, usage_fn),
            lambda resp: _iterate(resp, MessagesStreamAssembler(provider, model, prompt_messages, usage_fn)),
        )

    async def get_num_tokens(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Sequence[PromptMessage],
        tools: Sequence[PromptMessageTool] | None = None,
    ) -> int:
        """An offline approximation (cl100k_base); Anthropic's exact count needs a network call."""
        return await asyncio.to_thread(_count_prompt, list(prompt_messages), list(tools) if tools else None)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        await self._validate_by_invoking(model, credentials)
