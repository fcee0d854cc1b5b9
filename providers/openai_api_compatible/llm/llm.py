"""LLMs behind any OpenAI-compatible server (customizable-model only).

Chat mode is the OpenAI chat family (:class:`OpenAIFamilyLLM`) pointed at
``endpoint_url``. Completion mode speaks ``POST /completions`` (``prompt`` in,
``choices[].text`` out), streamed or not.

Differences from Dify's implementation, on purpose:
- every non-2xx status is classified (401/403 -> Authorization, 429 -> RateLimit with
  ``retry_after``, 5xx/529 -> ServerUnavailable, ...) instead of a base ``InvokeError``,
  so load balancing cools down and fails over;
- streams are read with a real SSE decoder, so ``stream_mode_delimiter`` is accepted
  but not needed; a stream that ends with a finish reason but without ``[DONE]`` is
  complete, one that ends with neither is an ``InvokeStreamInterruptedError``;
- ``function_calling_type: function_call`` sends the modern ``tools`` field (every
  current server reads it; the legacy ``functions`` field is deprecated upstream);
  ``no_call`` sends no tools at all, like Dify.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from arun.entities.common import I18nObject
from arun.entities.llm import LLMMode, LLMResult, LLMResultChunk
from arun.entities.messages import AssistantPromptMessage, PromptMessage, PromptMessageTool
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
from arun.errors import CredentialsValidateFailedError, InvokeServerUnavailableError
from arun.model_types.ai_model import as_validation_error
from arun.protocols.openai_chat import ChatStreamAssembler, classify_error
from arun.protocols.openai_llm import OpenAIFamilyLLM, iterate_chat_stream
from arun.providers.openai_api_compatible._common import (
    PROVIDER,
    cred_int,
    price_config,
    require_endpoint,
    url_for,
    wire_model,
)

_MODES = ("chat", "completion")
_INT_LIMIT = 2147483647


def _label(en: str, zh: str) -> I18nObject:
    return I18nObject(en_US=en, zh_Hans=zh)


def _mode(credentials: Mapping[str, Any]) -> str:
    mode = credentials.get("mode") or "chat"
    if mode not in _MODES:
        raise CredentialsValidateFailedError(f"Variable mode should be one of {list(_MODES)}, got {mode!r}")
    return str(mode)


def build_llm_schema(model: str, credentials: Mapping[str, Any]) -> AIModelEntity:
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
    max_tokens = cred_int(credentials, "max_tokens_to_sample", 4096)
    rules = [
        ParameterRule(
            name=DefaultParameterName.TEMPERATURE.value,
            use_template="temperature",
            label=_label("Temperature", "温度"),
            type=ParameterType.FLOAT,
            default=0.7,
            min=0,
            max=2,
            precision=2,
        ),
        ParameterRule(
            name=DefaultParameterName.TOP_P.value,
            use_template="top_p",
            label=_label("Top P", "Top P"),
            type=ParameterType.FLOAT,
            default=1.0,
            min=0,
            max=1,
            precision=2,
        ),
        ParameterRule(
            name=DefaultParameterName.TOP_K.value,
            label=_label("Top K", "取样数量"),
            type=ParameterType.INT,
            default=50,
            min=-_INT_LIMIT,
            max=_INT_LIMIT,
            precision=0,
        ),
        ParameterRule(
            name=DefaultParameterName.FREQUENCY_PENALTY.value,
            use_template="frequency_penalty",
            label=_label("Frequency Penalty", "频率惩罚"),
            type=ParameterType.FLOAT,
            default=0.0,
            min=-2,
            max=2,
        ),
        ParameterRule(
            name=DefaultParameterName.PRESENCE_PENALTY.value,
            use_template="presence_penalty",
            label=_label("Presence Penalty", "存在惩罚"),
            type=ParameterType.FLOAT,
            default=0.0,
            min=-2,
            max=2,
        ),
        ParameterRule(
            name=DefaultParameterName.MAX_TOKENS.value,
            use_template="max_tokens",
            label=_label("Max Tokens", "最大标记"),
            type=ParameterType.INT,
            default=min(512, max_tokens),
            min=1,
            max=max_tokens,
            precision=0,
        ),
    ]
    return AIModelEntity(
        model=model,
        label=I18nObject(en_US=model),
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


# -- completion mode wire structs ------------------------------------------------------------


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _TextChoice(msgspec.Struct):
    text: str | None = None
    index: int = 0
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_TextChoice] = []
    usage: _Usage | None = None
    error: Any = None
    system_fingerprint: str | None = None


_completion_decoder = msgspec.json.Decoder(_Completion)


def _decode_completion(payload: bytes) -> _Completion:
    try:
        parsed = _completion_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, malformed response: {exc}") from None
    if parsed.error is not None:
        raise classify_error(PROVIDER, 500, {}, payload)
    return parsed


class OAICompatLargeLanguageModel(OpenAIFamilyLLM):
    def endpoint(self, credentials: Mapping[str, Any], path: str) -> str:
        return url_for(credentials, path)

    def headers(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        return self.bearer(credentials.get("api_key"))

    def include_usage(self, credentials: Mapping[str, Any]) -> bool:
        return True

    def wire_model_name(self, model: str, credentials: Mapping[str, Any]) -> str:
        return wire_model(model, credentials)

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        return build_llm_schema(model, credentials)

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
        if (credentials.get("function_calling_type") or "no_call") == "no_call":
            tools = None
        if _mode(credentials) == "completion":
            return await self._invoke_completion(model, credentials, prompt_messages, model_parameters, stop, stream, user)
        return await super()._invoke(model, credentials, prompt_messages, model_parameters, tools, stop, stream, user)

    # -- completion mode ---------------------------------------------------------------------

    async def _invoke_completion(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: list[PromptMessage],
        parameters: dict[str, Any],
        stop: list[str] | None,
        stream: bool,
        user: str | None,
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        schema = await self.get_model_schema(model, credentials)
        body: dict[str, Any] = {"model": wire_model(model, credentials), "prompt": "\n\n".join(m.text() for m in prompt_messages)}
        body.update(parameters)
        if stop:
            body["stop"] = stop
        if user:
            body["user"] = user
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        url = url_for(credentials, "/completions")
        headers = self.headers(credentials)
        usage_fn = self._usage_fn(schema, model, prompt_messages, None)
        data = msgspec.json.encode(body)
        if not stream:
            resp = await self.http.request("POST", url, headers=headers, data=data, error_mapper=self.error_mapper(classify_error))
            parsed = _decode_completion(resp.body)
            if not parsed.choices:
                raise InvokeServerUnavailableError(f"[{PROVIDER}] Server Unavailable Error, the response has no choices")
            choice = parsed.choices[0]
            text = choice.text or ""
            u = parsed.usage
            return LLMResult(
                model=model,
                prompt_messages=prompt_messages,
                message=AssistantPromptMessage(content=text),
                usage=usage_fn(u.prompt_tokens if u else None, u.completion_tokens if u else None, text),
                system_fingerprint=parsed.system_fingerprint,
                finish_reason=choice.finish_reason,
            )
        resp_stream = await self.http.stream("POST", url, headers=headers, data=data, error_mapper=self.error_mapper(classify_error))
        return iterate_chat_stream(resp_stream, ChatStreamAssembler(PROVIDER, model, prompt_messages, usage_fn))

    # -- validation ------------------------------------------------------------------------

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        """Check the form values, then send one tiny non-streamed request; every failure is wrapped."""
        require_endpoint(credentials)
        try:
            build_llm_schema(model, credentials)
        except Exception as exc:
            raise as_validation_error(exc) from exc
        await self._validate_by_invoking(model, credentials)
