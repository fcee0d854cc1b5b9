"""The OpenAI-family LLM: wires :mod:`arun.protocols.openai_chat` to the runtime's client.

A provider of the family subclasses :class:`OpenAIFamilyLLM` and says only how
to reach its server (:meth:`endpoint`, :meth:`headers`) and, when it differs,
how parameters are spelled on the wire (:meth:`wire_parameters`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.entities.model import AIModelEntity
from arun.model_types.llm import LargeLanguageModel
from arun.protocols.openai_chat import ChatStreamAssembler, build_chat_body, classify_error, parse_chat_response
from arun.redact import register_secret
from arun.wire.client import StreamResponse
from arun.protocols.streaming import assemble_stream
from arun.wire.decoders import SSEDecoder

__all__ = ["OpenAIFamilyLLM", "messages_as_dicts", "iterate_chat_stream"]


def messages_as_dicts(messages: list[PromptMessage]) -> list[dict[str, Any]]:
    """Plain dicts for the token counter (role, text content, name, tool calls)."""
    out = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role.value, "content": m.text()}
        if m.name:
            item["name"] = m.name
        calls = getattr(m, "tool_calls", None)
        if calls:
            item["tool_calls"] = [msgspec.to_builtins(c) for c in calls]
        out.append(item)
    return out


def iterate_chat_stream(resp: StreamResponse, asm: ChatStreamAssembler) -> AsyncIterator[LLMResultChunk]:
    """Read SSE bytes to the end of the body, yielding chunks; the terminal chunk last."""
    return assemble_stream(resp, SSEDecoder(data_only=True), asm, feed_into=asm.feed_into)


class OpenAIFamilyLLM(LargeLanguageModel):
    """Chat Completions over the runtime's pooled client."""

    default_base_url = "https://api.openai.com/v1"

    # -- what a provider of the family overrides ---------------------------------------

    def endpoint(self, credentials: Mapping[str, Any], path: str) -> str:
        return self.default_base_url + path

    def headers(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def wire_parameters(self, model: str, parameters: dict[str, Any]) -> dict[str, Any]:
        return parameters

    def include_usage(self, credentials: Mapping[str, Any]) -> bool:
        return True

    # -- shared --------------------------------------------------------------------------

    def bearer(self, key: Any) -> dict[str, str]:
        if not isinstance(key, str) or not key:
            return {"Content-Type": "application/json"}
        register_secret(key)
        return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def _usage_fn(
        self, schema: AIModelEntity | None, model: str, messages: list[PromptMessage], tools: list[PromptMessageTool] | None
    ) -> Any:
        def count_prompt() -> int:
            from arun.tokenizers import num_tokens_from_messages

            tool_dicts = [msgspec.to_builtins(t) for t in tools] if tools else None
            return num_tokens_from_messages(model, messages_as_dicts(messages), tool_dicts)

        return self._usage_with_fallback(schema, count_prompt)

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
        body = build_chat_body(
            self.wire_model_name(model, credentials),
            prompt_messages,
            self.wire_parameters(model, dict(model_parameters)),
            tools,
            stop,
            stream,
            user,
            include_usage=self.include_usage(credentials),
        )
        url = self.endpoint(credentials, "/chat/completions")
        headers = self.headers(credentials)
        mapper = self.error_mapper(classify_error)
        usage_fn = self._usage_fn(schema, model, prompt_messages, tools)
        provider = self.provider_name
        return await self._exchange(
            url,
            headers,
            body,
            mapper,
            stream,
            lambda raw: parse_chat_response(provider, raw, model, prompt_messages, usage_fn),
            lambda resp: iterate_chat_stream(resp, ChatStreamAssembler(provider, model, prompt_messages, usage_fn)),
        )

    def wire_model_name(self, model: str, credentials: Mapping[str, Any]) -> str:
        return model

    async def get_num_tokens(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Any,
        tools: Any = None,
    ) -> int:
        from arun.tokenizers import num_tokens_from_messages

        import asyncio

        tool_dicts = [msgspec.to_builtins(t) for t in tools] if tools else None
        return await asyncio.to_thread(num_tokens_from_messages, model, messages_as_dicts(list(prompt_messages)), tool_dicts)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        await self._validate_by_invoking(model, credentials)
