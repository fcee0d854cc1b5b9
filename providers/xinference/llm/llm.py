"""Xinference chat models: the schema of a user-added model is read from the running model.

Xinference serves OpenAI's chat API under ``{server_url}/v1`` (the ``openai_chat`` family does
the talking; the wire model is the ``model_uid``).  What the family cannot know from a form
is what the launched model can do, so, like Dify's Xinference provider, the schema comes from
``GET /v1/models/{model_uid}`` (:mod:`arun.protocols.xinference`):

* mode: ``chat`` when ``model_ability`` lists ``chat``, else ``completion`` for ``generate``;
  a uid that is neither (an embedding or audio model) is refused;
* context size: ``context_length`` (Dify's fallback 2048 when the server gives none);
* ``tools`` -> tool calls (parallel and streamed: Xinference answers OpenAI ``tool_calls``),
  ``vision`` -> image input;
* rules: Dify's for Xinference (temperature, top_p, max_tokens up to the context size, default
  512; presence / frequency penalty -2..2) plus ``think``, sent as Xinference's request-level
  ``enable_thinking`` (the block renames it; hybrid-thinking models, Xinference >= 1.17).

A form value (``mode``, ``context_size``, ``function_calling_type``, ``stream_function_calling``,
``vision_support``) overrides what the server says; the description is fetched only while one
of them is empty.  The runtime keeps each schema per model and credentials, so a model is
described once.  ``invoke_timeout`` (Dify's form, default 60 s) bounds the wait for the first
byte of every request; it can only tighten the runtime's own first-byte timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.common import I18nObject
from arun.entities.llm import LLMMode
from arun.entities.model import (
    AIModelEntity,
    FetchFrom,
    ModelFeature,
    ModelPropertyKey,
    ModelType,
    ParameterRule,
    ParameterType,
)
from arun.errors import CredentialsValidateFailedError, InvokeError
from arun.families.helpers import cred_int, cred_text
from arun.families.openai_chat import OpenAIChatLLM
from arun.protocols.openai_chat import classify_error
from arun.protocols.xinference import (
    ModelDescription,
    check_model_uid,
    model_path,
    parse_model_description,
)
from arun.wire.client import HttpClient

__all__ = ["XinferenceLLM", "build_schema", "invoke_timeout"]

#: the form fields that, when all set, make the description unnecessary
OVERRIDES = ("mode", "context_size", "function_calling_type", "stream_function_calling", "vision_support")
_DEFAULT_CONTEXT = 2048  # Dify's value when the description has no context_length


def invoke_timeout(http: HttpClient, credentials: Mapping[str, Any]) -> float:
    """``invoke_timeout`` seconds (default 60), never longer than the runtime's first-byte timeout."""
    return float(min(cred_int(credentials, "invoke_timeout", 60), http.config.first_byte_timeout))


def _label(en: str, zh: str) -> I18nObject:
    return I18nObject(en_US=en, zh_Hans=zh)


def _mode(model: str, credentials: Mapping[str, Any], info: ModelDescription | None) -> str:
    mode = cred_text(credentials, "mode")
    if mode is not None:
        if mode not in ("chat", "completion"):
            raise CredentialsValidateFailedError(f"Variable mode should be chat or completion, got {mode!r}")
        return mode
    abilities = info.abilities if info is not None else frozenset()
    if "chat" in abilities:
        return LLMMode.CHAT.value
    if "generate" in abilities:
        return LLMMode.COMPLETION.value
    kind = info.model_type if info is not None else None
    raise CredentialsValidateFailedError(
        f"Xinference model {credentials.get('model_uid')!r} ({kind or 'unknown type'}, abilities "
        f"{sorted(abilities)}) can neither chat nor generate: it is not an LLM"
    )


def build_schema(model: str, credentials: Mapping[str, Any], info: ModelDescription | None) -> AIModelEntity:
    """The schema from the form's overrides and the model's description (see the module docstring)."""
    abilities = info.abilities if info is not None else frozenset()
    mode = _mode(model, credentials, info)
    described = info.context_length if info is not None and info.context_length else _DEFAULT_CONTEXT
    context = cred_int(credentials, "context_size", described)
    calling = cred_text(credentials, "function_calling_type") or ("tool_call" if "tools" in abilities else "no_call")
    streamed = cred_text(credentials, "stream_function_calling") or ("supported" if "tools" in abilities else "not_supported")
    vision = cred_text(credentials, "vision_support") or ("support" if "vision" in abilities else "no_support")
    features: list[ModelFeature] = []
    if calling == "tool_call":
        features += [ModelFeature.TOOL_CALL, ModelFeature.MULTI_TOOL_CALL]
    elif calling == "function_call":
        features.append(ModelFeature.TOOL_CALL)
    if calling != "no_call" and streamed == "supported":
        features.append(ModelFeature.STREAM_TOOL_CALL)
    if vision == "support":
        features.append(ModelFeature.VISION)
    FLOAT, INT = ParameterType.FLOAT, ParameterType.INT
    rules = [
        ParameterRule(name="temperature", use_template="temperature", label=_label("Temperature", "温度"), type=FLOAT),
        ParameterRule(name="top_p", use_template="top_p", label=_label("Top P", "Top P"), type=FLOAT),
        ParameterRule(name="max_tokens", use_template="max_tokens", label=_label("Max Tokens", "最大生成长度"), type=INT,
                      min=1, max=context, default=min(512, context), precision=0),
        ParameterRule(name="presence_penalty", use_template="presence_penalty", label=_label("Presence Penalty", "存在惩罚"),
                      type=FLOAT, default=0.0, min=-2.0, max=2.0, precision=2),
        ParameterRule(name="frequency_penalty", use_template="frequency_penalty", label=_label("Frequency Penalty", "频率惩罚"),
                      type=FLOAT, default=0.0, min=-2.0, max=2.0, precision=2),
        ParameterRule(name="think", label=_label("Thinking", "思考模式"), type=ParameterType.BOOLEAN,
                      help=_label("Hybrid-thinking models: turn thinking on or off (Xinference's enable_thinking).",
                                  "混合思考模型：开启或关闭思考（Xinference 的 enable_thinking）。")),
    ]  # fmt: skip
    return AIModelEntity(
        model=model,
        label=I18nObject(en_US=model),
        model_type=ModelType.LLM,
        fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
        features=features,
        model_properties={ModelPropertyKey.MODE.value: mode, ModelPropertyKey.CONTEXT_SIZE.value: context},
        parameter_rules=rules,
    )


class XinferenceLLM(OpenAIChatLLM):
    """``openai_chat`` with the schema read from the model's description and Dify's ``invoke_timeout``."""

    async def describe(self, credentials: Mapping[str, Any]) -> ModelDescription:
        uid = check_model_uid(credentials.get("model_uid"))
        endpoint = self.endpoint
        resp = await self.http.request(
            "GET",
            endpoint.url(credentials, None, model_path(uid)),
            headers=endpoint.headers(credentials, content_type=None),
            error_mapper=self.error_mapper(classify_error),
            first_byte_timeout=invoke_timeout(self.http, credentials),
        )
        return parse_model_description(self.provider_name, resp.body)

    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        check_model_uid(credentials.get("model_uid"))
        info = None
        if any(cred_text(credentials, name) is None for name in OVERRIDES):
            try:
                info = await self.describe(credentials)
            except InvokeError as exc:
                if exc.model is None:
                    exc.model = model  # the schema is read before the call the error would belong to
                raise
        return build_schema(model, credentials, info)

    def first_byte_timeout(self, credentials: Mapping[str, Any]) -> float | None:
        return invoke_timeout(self.http, credentials)
