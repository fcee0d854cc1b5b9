"""Ollama chat models over the native ``/api/chat`` (NDJSON streaming)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from arun.entities.common import I18nObject
from arun.entities.llm import LLMMode, LLMResult, LLMResultChunk
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.entities.model import (
    AIModelEntity,
    DefaultParameterName,
    FetchFrom,
    ModelFeature,
    ModelPropertyKey,
    ModelType,
    ParameterRule,
    ParameterType,
    PriceConfig,
)
from arun.model_types.llm import LargeLanguageModel
from arun.protocols.ollama import (
    OllamaStreamAssembler,
    build_chat_body,
    classify_error,
    messages_to_wire,
    parse_chat_response,
)
from arun.providers.ollama._common import base_url, flag, headers, int_credential
from arun.wire.client import StreamResponse
from arun.protocols.streaming import assemble_stream
from arun.wire.decoders import NDJSONDecoder


def _label(en: str, zh: str | None = None) -> I18nObject:
    return I18nObject(en_US=en, zh_Hans=zh)


def _rule(name: str, kind: ParameterType, en: str, zh: str, help_en: str, **kw: Any) -> ParameterRule:
    return ParameterRule(name=name, label=_label(en, zh), type=kind, help=_label(help_en), **kw)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0))
    except InvalidOperation:
        return Decimal(0)


def parameter_rules(max_tokens: int) -> list[ParameterRule]:
    F, I, S, T = ParameterType.FLOAT, ParameterType.INT, ParameterType.STRING, ParameterType.TEXT
    return [
        _rule("temperature", F, "Temperature", "温度", "Higher values make answers more varied. (Ollama default 0.8)",
              use_template=DefaultParameterName.TEMPERATURE.value, default=0.1, min=0, max=1, precision=2),
        _rule("top_p", F, "Top P", "Top P", "Nucleus sampling, used together with top-k. (Ollama default 0.9)",
              use_template=DefaultParameterName.TOP_P.value, default=0.9, min=0, max=1, precision=2),
        _rule("top_k", I, "Top K", "Top K", "Sample only from the K most likely tokens. (Ollama default 40)",
              min=1, max=100),
        _rule("repeat_penalty", F, "Repeat Penalty", "重复惩罚",
              "How strongly repetitions are penalised. (Ollama default 1.1)", min=-2, max=2, precision=2),
        _rule("num_predict", I, "Num Predict", "最大生成长度",
              "Maximum tokens to generate (-1 = unlimited, -2 = fill the context).",
              use_template=DefaultParameterName.MAX_TOKENS.value, default=512 if max_tokens >= 768 else 128,
              min=-2, max=max_tokens),
        _rule("num_ctx", I, "Context window", "上下文窗口大小",
              "Context window used for this request. (Ollama default 2048)", min=1),
        _rule("seed", I, "Seed", "随机数种子", "A fixed seed makes the output repeatable for the same prompt."),
        _rule("mirostat", I, "Mirostat sampling", "Mirostat 采样", "0 = off, 1 = Mirostat, 2 = Mirostat 2.0.",
              min=0, max=2),
        _rule("mirostat_eta", F, "Mirostat Eta", "Mirostat 学习率", "Mirostat learning rate. (default 0.1)",
              precision=2),
        _rule("mirostat_tau", F, "Mirostat Tau", "Mirostat 目标熵", "Balance of coherence and diversity. (default 5.0)",
              precision=2),
        _rule("repeat_last_n", I, "Repeat last N", "重复回看长度",
              "How far back repetitions are checked (0 = off, -1 = num_ctx).", min=-1),
        _rule("num_gpu", I, "GPU layers", "GPU 层数", "Layers offloaded to the GPU.", min=-1),
        _rule("num_thread", I, "Threads", "线程数", "CPU threads used for generation.", min=1),
        _rule("keep_alive", S, "Keep Alive", "模型保留时间",
              "How long the model stays loaded after the request, e.g. 5m, 24h, -1 (forever), 0 (unload)."),
        _rule("format", T, "Format", "返回格式", "json, or a JSON schema the answer must follow."),
    ]


class OllamaLargeLanguageModel(LargeLanguageModel):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        max_tokens = int_credential(credentials, "max_tokens", 4096)
        features: list[ModelFeature] = []
        if flag(credentials, "vision_support"):
            features.append(ModelFeature.VISION)
        if flag(credentials, "function_call_support"):
            features.extend((ModelFeature.TOOL_CALL, ModelFeature.MULTI_TOOL_CALL, ModelFeature.STREAM_TOOL_CALL))
        mode = str(credentials.get("mode") or LLMMode.CHAT.value)
        return AIModelEntity(
            model=model,
            label=_label(model),
            model_type=ModelType.LLM,
            features=features,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.MODE.value: mode,
                ModelPropertyKey.CONTEXT_SIZE.value: int_credential(credentials, "context_size", 4096),
            },
            parameter_rules=parameter_rules(max_tokens),
            pricing=PriceConfig(
                input=_decimal(credentials.get("input_price")),
                output=_decimal(credentials.get("output_price")),
                unit=_decimal(credentials.get("unit")),
                currency=str(credentials.get("currency") or "USD"),
            ),
        )

    # -- invoke ------------------------------------------------------------------------------

    def _usage_fn(
        self, schema: AIModelEntity | None, messages: list[PromptMessage], tools: list[PromptMessageTool] | None
    ) -> Any:
        # Ollama omits a count when it is zero (e.g. a fully cached prompt): count locally then
        from arun.tokenizers import count_tokens

        return self._usage_with_fallback(
            schema, lambda: sum(count_tokens(s) for s in _count_strings(messages, tools)), "gpt2"
        )

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
        mode = schema.property(ModelPropertyKey.MODE, "chat") if schema else "chat"
        body = build_chat_body(
            model, prompt_messages, model_parameters, tools, stop, stream, completion_mode=mode == "completion"
        )
        url = base_url(credentials) + "/api/chat"
        hdrs = headers(credentials)
        mapper = self.error_mapper(classify_error)
        usage_fn = self._usage_fn(schema, prompt_messages, tools)
        provider = self.provider_name
        return await self._exchange(
            url,
            hdrs,
            body,
            mapper,
            stream,
            lambda raw: parse_chat_response(provider, raw, model, prompt_messages, usage_fn),
            lambda resp: _iterate(resp, OllamaStreamAssembler(provider, model, prompt_messages, usage_fn)),
        )

    async def get_num_tokens(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Sequence[PromptMessage],
        tools: Sequence[PromptMessageTool] | None = None,
    ) -> int:
        """GPT-2 tokens over every key and value of the wire messages (Dify's approximation)."""
        from arun.tokenizers import acount_many

        strings = _count_strings(list(prompt_messages), list(tools) if tools else None)
        return sum(await acount_many(strings)) if strings else 0

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        """One tiny non-streamed chat; every failure becomes CredentialsValidateFailedError."""
        int_credential(credentials, "context_size", 4096)
        int_credential(credentials, "max_tokens", 4096)
        await self._validate_by_invoking(model, credentials, {"num_predict": 5})


def _count_strings(messages: list[PromptMessage], tools: list[PromptMessageTool] | None) -> list[str]:
    try:
        wire = messages_to_wire(messages)
    except Exception:  # e.g. a remote image URL: count the text only
        wire = [{"role": m.role.value, "content": m.text()} for m in messages]
    out: list[str] = []
    for item in wire:
        for key, value in item.items():
            out.append(key)
            out.append(value if isinstance(value, str) else msgspec.json.encode(value).decode())
    for tool in tools or ():
        out.append(msgspec.json.encode(tool).decode())
    return out


def _iterate(resp: StreamResponse, asm: OllamaStreamAssembler) -> AsyncIterator[LLMResultChunk]:
    """Read NDJSON to the end of the body; the terminal chunk last (or StreamInterrupted)."""
    return assemble_stream(resp, NDJSONDecoder(), asm, asm.feed)
