"""The Ollama family: native ``POST /api/chat`` (NDJSON streaming) and ``POST /api/embed``.

Ollama serves user-added models only (``customizable-model``): the schema is built from the
model credentials (``mode``, ``context_size``, ``max_tokens``, ``vision_support``,
``function_call_support``, prices), with Ollama's own sampling options as parameter rules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import msgspec

from arun.entities.common import I18nObject
from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
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
)
from arun.families.base import FamilyModel
from arun.families.helpers import (
    cred_flag,
    cred_int,
    price_config,
    validate_by,
)
from arun.model_types.call_options import current_extras
from arun.model_types.llm import LargeLanguageModel
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.protocols.ollama import (
    OllamaStreamAssembler,
    build_chat_body,
    build_embed_body,
    classify_error,
    messages_to_wire,
    parse_chat_response,
    parse_embed_response,
)
from arun.wire.client import StreamResponse
from arun.wire.decoders import NDJSONDecoder
from arun.wire.stream import AssembledStream, assemble_stream

__all__ = ["OllamaChatLLM", "OllamaEmbedding", "parameter_rules"]

#: texts per /api/embed request (Ollama embeds a list in one call)
EMBED_MAX_CHUNKS = 32


def _label(en: str, zh: str | None = None) -> I18nObject:
    return I18nObject(en_US=en, zh_Hans=zh)


def _rule(name: str, kind: ParameterType, en: str, zh: str, help_en: str, **kw: Any) -> ParameterRule:
    return ParameterRule(name=name, label=_label(en, zh), type=kind, help=_label(help_en), **kw)


def parameter_rules(max_tokens: int) -> list[ParameterRule]:
    FLOAT, INT, STRING, TEXT = ParameterType.FLOAT, ParameterType.INT, ParameterType.STRING, ParameterType.TEXT
    return [
        _rule("temperature", FLOAT, "Temperature", "温度", "Higher values make answers more varied. (Ollama default 0.8)",
              use_template=DefaultParameterName.TEMPERATURE.value, default=0.1, min=0, max=1, precision=2),
        _rule("top_p", FLOAT, "Top P", "Top P", "Nucleus sampling, used together with top-k. (Ollama default 0.9)",
              use_template=DefaultParameterName.TOP_P.value, default=0.9, min=0, max=1, precision=2),
        _rule("top_k", INT, "Top K", "Top K", "Sample only from the K most likely tokens. (Ollama default 40)",
              min=1, max=100),
        _rule("repeat_penalty", FLOAT, "Repeat Penalty", "重复惩罚",
              "How strongly repetitions are penalised. (Ollama default 1.1)", min=-2, max=2, precision=2),
        _rule("num_predict", INT, "Num Predict", "最大生成长度",
              "Maximum tokens to generate (-1 = unlimited, -2 = fill the context).",
              use_template=DefaultParameterName.MAX_TOKENS.value, default=512 if max_tokens >= 768 else 128,
              min=-2, max=max_tokens),
        _rule("num_ctx", INT, "Context window", "上下文窗口大小",
              "Context window used for this request. (Ollama default 2048)", min=1),
        _rule("seed", INT, "Seed", "随机数种子", "A fixed seed makes the output repeatable for the same prompt."),
        _rule("mirostat", INT, "Mirostat sampling", "Mirostat 采样", "0 = off, 1 = Mirostat, 2 = Mirostat 2.0.",
              min=0, max=2),
        _rule("mirostat_eta", FLOAT, "Mirostat Eta", "Mirostat 学习率", "Mirostat learning rate. (default 0.1)",
              precision=2),
        _rule("mirostat_tau", FLOAT, "Mirostat Tau", "Mirostat 目标熵", "Balance of coherence and diversity. (default 5.0)",
              precision=2),
        _rule("repeat_last_n", INT, "Repeat last N", "重复回看长度",
              "How far back repetitions are checked (0 = off, -1 = num_ctx).", min=-1),
        _rule("num_gpu", INT, "GPU layers", "GPU 层数", "Layers offloaded to the GPU.", min=-1),
        _rule("num_thread", INT, "Threads", "线程数", "CPU threads used for generation.", min=1),
        _rule("keep_alive", STRING, "Keep Alive", "模型保留时间",
              "How long the model stays loaded after the request, e.g. 5m, 24h, -1 (forever), 0 (unload)."),
        _rule("format", TEXT, "Format", "返回格式", "json, or a JSON schema the answer must follow."),
    ]


class OllamaChatLLM(FamilyModel, LargeLanguageModel):
    family = "ollama_chat"

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        max_tokens = cred_int(credentials, "max_tokens", 4096)
        features: list[ModelFeature] = []
        if cred_flag(credentials, "vision_support"):
            features.append(ModelFeature.VISION)
        if cred_flag(credentials, "function_call_support"):
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
                ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", 4096),
            },
            parameter_rules=parameter_rules(max_tokens),
            pricing=price_config(credentials, output=True),
        )

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
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        body = build_chat_body(
            wire_model, prompt_messages, endpoint.wire_parameters(model, model_parameters), tools, stop, stream,
            completion_mode=mode == "completion", extra=extras.body if extras else None,
        )  # fmt: skip
        usage_fn = self._usage_fn(schema, prompt_messages, tools)
        provider = self.provider_name
        return await self._exchange(
            url,
            headers,
            body,
            self.error_mapper(classify_error),
            stream,
            lambda raw: parse_chat_response(provider, raw, model, prompt_messages, usage_fn),
            lambda resp: _iterate(resp, OllamaStreamAssembler(provider, model, prompt_messages, usage_fn, incremental_tool_calls=bool(extras and extras.incremental_tool_calls))),
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
        cred_int(credentials, "context_size", 4096)  # a malformed number: CredentialsValidateFailedError
        cred_int(credentials, "max_tokens", 4096)
        await self._validate_by_invoking(model, credentials, {"num_predict": 5})


def _count_strings(messages: list[PromptMessage], tools: list[PromptMessageTool] | None) -> list[str]:
    try:
        wire = messages_to_wire(messages)
    except Exception:  # noqa: BLE001 - e.g. a remote image URL: count the text only
        wire = [{"role": m.role.value, "content": m.text()} for m in messages]
    out: list[str] = []
    for item in wire:
        for key, value in item.items():
            out.append(key)
            out.append(value if isinstance(value, str) else msgspec.json.encode(value).decode())
    for tool in tools or ():
        out.append(msgspec.json.encode(tool).decode())
    return out


def _iterate(resp: StreamResponse, asm: OllamaStreamAssembler) -> AssembledStream:
    """Read NDJSON to the end of the body; the terminal chunk last (or StreamInterrupted)."""
    return assemble_stream(resp, NDJSONDecoder(), asm, asm.feed_into)


class OllamaEmbedding(FamilyModel, TextEmbeddingModel):
    family = "ollama_embedding"

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return AIModelEntity(
            model=model,
            label=I18nObject(en_US=model),
            model_type=ModelType.TEXT_EMBEDDING,
            fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
            model_properties={
                ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", 512),
                ModelPropertyKey.MAX_CHUNKS.value: EMBED_MAX_CHUNKS,
            },
            pricing=price_config(credentials, output=False),
        )

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        texts: list[str],
        user: str | None,
        input_type: EmbeddingInputType,
    ) -> TextEmbeddingResult:
        schema = await self.get_model_schema(model, credentials)
        inputs = await self._truncate(schema, texts, "gpt2")
        endpoint = self.endpoint
        extras = current_extras()
        url, headers, wire_model = endpoint.resolve(credentials, model, extra=extras.headers if extras else None)
        resp = await self.http.request(
            "POST",
            url,
            headers=headers,
            data=build_embed_body(wire_model, inputs, options=None, extra=extras.body if extras else None),
            error_mapper=self.error_mapper(classify_error),
        )
        vectors, tokens = parse_embed_response(self.provider_name, resp.body, len(inputs))
        if tokens is None:
            from arun.tokenizers import acount_many

            tokens = sum(await acount_many(inputs))
        return TextEmbeddingResult(model=model, embeddings=vectors, usage=self._calc_response_usage(schema, tokens))

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        cred_int(credentials, "context_size", 512)  # a malformed number: CredentialsValidateFailedError
        await validate_by(lambda: self._invoke(model, credentials, ["ping"], None, EmbeddingInputType.DOCUMENT), credentials, self.context.secret_fields)
