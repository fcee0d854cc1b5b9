"""The OpenAI Chat Completions family: every provider that speaks ``POST /chat/completions``.

The wire format is :mod:`arun.protocols.openai_chat` (pure functions); this adapter wires
it to the runtime's client through the provider's :class:`~arun.families.endpoint.Endpoint`.
A model whose ``mode`` is ``completion`` speaks the legacy ``POST /completions``.

Customizable models (``configurate_methods: [customizable-model]``) get Dify's
OpenAI-compatible schema built from their credential form (``context_size``,
``max_tokens_to_sample``, ``mode``, ``function_calling_type``, ``stream_function_calling``,
``vision_support``, prices); a customizable model without tool features is sent no tools.

Quirks (``model_types.llm.quirks`` in the provider's ``arun:`` block):

* ``no_stream_usage`` — do not ask for ``stream_options.include_usage`` (servers that reject it);
  usage is then counted locally when the stream carries none;
* ``think_tags`` — the reasoning arrives inline as ``<think>...</think>`` at the start of
  ``content`` (MiniMax, some self-hosted reasoning models): it is moved to ``reasoning_content``
  (non-stream) and left out of the streamed content;
* ``no_user`` — never send the ``user`` field (servers that reject unknown fields).

Everything else a provider of the family may send is read generically: ``reasoning_content``
or ``reasoning``, usage inside ``choices[0]`` (Moonshot) or under ``x_groq`` (Groq), errors
inside a 200 body or stream (``error`` objects, MiniMax's ``base_resp``), keep-alive comments,
non-standard finish reasons (see :mod:`arun.protocols.openai_chat`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import cached_property
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
)
from arun.errors import CredentialsValidateFailedError, ParameterValidationError
from arun.families.base import FamilyModel
from arun.families.helpers import cred_int, price_config, validate_by
from arun.model_types.call_options import current_extras
from arun.model_types.llm import LargeLanguageModel
from arun.protocols.openai_chat import (
    ChatStreamAssembler,
    build_chat_body,
    build_completion_body,
    classify_error,
    parse_chat_response,
    parse_completion_response,
)
from arun.protocols.openai_tokens import num_tokens_from_messages
from arun.wire.client import StreamResponse
from arun.wire.decoders import SSEDecoder
from arun.wire.stream import AssembledStream, assemble_stream

__all__ = ["OpenAIChatLLM", "build_openai_compatible_llm_schema", "iterate_chat_stream"]

_MODES = ("chat", "completion")
_INT_LIMIT = 2147483647


def iterate_chat_stream(resp: StreamResponse, asm: ChatStreamAssembler) -> AssembledStream:
    """Read SSE bytes to the end of the body, yielding chunks; the terminal chunk last."""
    return assemble_stream(resp, SSEDecoder(data_only=True), asm, asm.feed_into)


def _label(en: str, zh: str) -> I18nObject:
    return I18nObject(en_US=en, zh_Hans=zh)


def _mode(credentials: Mapping[str, Any]) -> str:
    mode = credentials.get("mode") or "chat"
    if mode not in _MODES:
        raise CredentialsValidateFailedError(f"Variable mode should be one of {list(_MODES)}, got {mode!r}")
    return str(mode)


def build_openai_compatible_llm_schema(model: str, credentials: Mapping[str, Any]) -> AIModelEntity:
    """Dify's rules for a user-added OpenAI-compatible LLM, read from its credentials."""
    features: list[ModelFeature] = []
    calling = credentials.get("function_calling_type") or "no_call"
    if calling == "function_call":
        features.append(ModelFeature.TOOL_CALL)
    elif calling == "tool_call":
        features.append(ModelFeature.MULTI_TOOL_CALL)
    # the form's default is not_supported (Dify's code assumed "supported" when the key is absent)
    if credentials.get("stream_function_calling") == "supported":
        features.append(ModelFeature.STREAM_TOOL_CALL)
    if credentials.get("vision_support") == "support":
        features.append(ModelFeature.VISION)
    if credentials.get("structured_output_support") == "supported":
        features.append(ModelFeature.STRUCTURED_OUTPUT)
    # Dify's compatible form says max_tokens_to_sample; Fireworks', Tongyi's, SiliconFlow's, Volcengine's
    # and Moonshot's say max_tokens
    max_tokens = cred_int(credentials, "max_tokens_to_sample", cred_int(credentials, "max_tokens", 4096))
    FLOAT, INT = ParameterType.FLOAT, ParameterType.INT
    rules = [
        ParameterRule(name=DefaultParameterName.TEMPERATURE.value, use_template="temperature",
                      label=_label("Temperature", "温度"), type=FLOAT, default=0.7, min=0, max=2, precision=2),
        ParameterRule(name=DefaultParameterName.TOP_P.value, use_template="top_p",
                      label=_label("Top P", "Top P"), type=FLOAT, default=1.0, min=0, max=1, precision=2),
        ParameterRule(name=DefaultParameterName.TOP_K.value, label=_label("Top K", "取样数量"), type=INT,
                      default=50, min=-_INT_LIMIT, max=_INT_LIMIT, precision=0),
        ParameterRule(name=DefaultParameterName.FREQUENCY_PENALTY.value, use_template="frequency_penalty",
                      label=_label("Frequency Penalty", "频率惩罚"), type=FLOAT, default=0.0, min=-2, max=2),
        ParameterRule(name=DefaultParameterName.PRESENCE_PENALTY.value, use_template="presence_penalty",
                      label=_label("Presence Penalty", "存在惩罚"), type=FLOAT, default=0.0, min=-2, max=2),
        ParameterRule(name=DefaultParameterName.MAX_TOKENS.value, use_template="max_tokens",
                      label=_label("Max Tokens", "最大标记"), type=INT, default=min(512, max_tokens), min=1,
                      max=max_tokens, precision=0),
    ]  # fmt: skip
    # Fireworks' form asks for display names (model_label_en_US / model_label_zh_Hans)
    en = credentials.get("model_label_en_US")
    zh = credentials.get("model_label_zh_Hans")
    label = I18nObject(en_US=en if isinstance(en, str) and en else model, zh_Hans=zh if isinstance(zh, str) and zh else None)
    return AIModelEntity(
        model=model,
        label=label,
        model_type=ModelType.LLM,
        fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
        features=features,
        model_properties={
            ModelPropertyKey.CONTEXT_SIZE.value: cred_int(credentials, "context_size", 4096),
            ModelPropertyKey.MODE.value: LLMMode.value_of(_mode(credentials)).value,
        },
        parameter_rules=rules,
        pricing=price_config(credentials, output=True),
    )


def native_json_mode(parameters: dict[str, Any]) -> dict[str, Any]:
    """``response_format: json_schema`` + the ``json_schema`` text -> OpenAI's ``response_format`` object."""
    params = dict(parameters)
    schema_text = params.pop("json_schema", None)
    fmt = params.pop("response_format", None)
    if fmt == "json_schema":
        if not schema_text:
            raise ParameterValidationError(
                "Model Parameter json_schema is required when response_format is json_schema.",
                parameter="json_schema",
                rule="required",
            )
        try:
            schema = msgspec.json.decode(schema_text) if isinstance(schema_text, (str, bytes)) else schema_text
        except msgspec.DecodeError as exc:
            raise ParameterValidationError(
                f"Model Parameter json_schema should be valid JSON: {exc}", parameter="json_schema", rule="type"
            ) from None
        params["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt in ("json_object", "text"):
        params["response_format"] = {"type": fmt}
    elif fmt is not None:
        params["response_format"] = fmt
    return params


def _has_tools(schema: AIModelEntity | None) -> bool:
    features = schema.features or [] if schema is not None else []
    return ModelFeature.TOOL_CALL in features or ModelFeature.MULTI_TOOL_CALL in features


def _count_prompt(model: str, messages: list[PromptMessage], tools: list[PromptMessageTool] | None) -> int:
    return num_tokens_from_messages(model, messages, tools)


class OpenAIChatLLM(FamilyModel, LargeLanguageModel):
    """Chat Completions over the runtime's pooled client; code providers override the hooks below."""

    family = "openai_chat"

    # -- hooks a provider's code may override ------------------------------------------------

    def wire_parameters(self, model: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters as the provider spells them: the block's renames and drops, and the
        native JSON modes (``response_format`` ``json_object`` / ``json_schema`` with ``json_schema``)."""
        params = self.endpoint.wire_parameters(model, parameters)
        if "response_format" in params or "json_schema" in params:
            params = native_json_mode(params)
        return params

    def rules_model(self, model: str, credentials: Mapping[str, Any]) -> str:
        """The model whose parameter spelling (the block's ``models:`` patterns) applies to a call of ``model``."""
        return model

    def include_usage(self, credentials: Mapping[str, Any]) -> bool:
        return not self._flags[2]

    def first_byte_timeout(self, credentials: Mapping[str, Any]) -> float | None:
        """This call's wait for the first byte of the answer; None: the runtime's."""
        return None

    @cached_property
    def _flags(self) -> tuple[bool, bool, bool]:
        """``(no_user, think_tags, no_stream_usage)`` from the quirks, read once per model object."""
        quirks = self.quirks
        return "no_user" in quirks, "think_tags" in quirks, "no_stream_usage" in quirks

    # -- schemas -----------------------------------------------------------------------------

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        base = self.base_model_schema(model, credentials)
        if base is not None:
            return base
        if not self.builds_schemas:
            return None
        return build_openai_compatible_llm_schema(model, credentials)

    # -- invoke ------------------------------------------------------------------------------

    def _usage_fn(
        self, schema: AIModelEntity | None, model: str, messages: list[PromptMessage], tools: list[PromptMessageTool] | None
    ) -> Any:
        return self._usage_with_fallback(schema, lambda: _count_prompt(model, messages, tools))

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
        if tools and schema is not None and schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL and not _has_tools(schema):
            tools = None  # Dify: a compatible model configured without function calling is sent none
        extras = current_extras()
        endpoint = self.endpoint
        completion = schema is not None and schema.property(ModelPropertyKey.MODE) == LLMMode.COMPLETION
        path = self.type_spec.options.get("completion_path", "/completions") if completion else None
        url, headers, wire_model = endpoint.resolve(credentials, model, path, extra=extras.headers if extras else None)
        params = self.wire_parameters(self.rules_model(model, credentials), dict(model_parameters))
        no_user, think, _ = self._flags
        if no_user:
            user = None
        usage_fn = self._usage_fn(schema, model, prompt_messages, tools)
        provider = self.provider_name
        if completion:
            body = build_completion_body(
                wire_model, prompt_messages, params, stop, stream, user,
                include_usage=self.include_usage(credentials), extra=extras.body if extras else None,
            )  # fmt: skip
            parse: Any = lambda raw: parse_completion_response(provider, raw, model, prompt_messages, usage_fn)  # noqa: E731
        else:
            body = build_chat_body(
                wire_model, prompt_messages, params, tools, stop, stream, user,
                include_usage=self.include_usage(credentials), extra=extras.body if extras else None,
            )  # fmt: skip
            parse = lambda raw: parse_chat_response(provider, raw, model, prompt_messages, usage_fn, think_tags=think)  # noqa: E731
        return await self._exchange(
            url,
            headers,
            body,
            self.error_mapper(classify_error),
            stream,
            parse,
            lambda resp: iterate_chat_stream(
                resp, ChatStreamAssembler(provider, model, prompt_messages, usage_fn, think_tags=think, incremental_tool_calls=bool(extras and extras.incremental_tool_calls))
            ),
            self.first_byte_timeout(credentials),
        )

    async def get_num_tokens(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Sequence[PromptMessage],
        tools: Sequence[PromptMessageTool] | None = None,
    ) -> int:
        return await asyncio.to_thread(_count_prompt, model, list(prompt_messages), list(tools) if tools else None)

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        if self.customizable:
            await validate_by(lambda: self.require_schema(model, credentials), credentials, self.context.secret_fields)
        await self._validate_by_invoking(model, credentials)
