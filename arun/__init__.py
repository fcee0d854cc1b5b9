"""arun: an asyncio-native model runtime faithful to the Dify Model Runtime contract.

Public names are loaded on first use, so ``import arun`` stays cheap (no aiohttp,
no YAML, no provider code until a runtime needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # runtime
    "ModelRuntime": "arun.runtime.model_runtime",
    "ModelProvider": "arun.runtime.provider",
    "HttpConfig": "arun.wire.client",
    "Callback": "arun.callbacks",
    # model types
    "AIModel": "arun.model_types.ai_model",
    "LargeLanguageModel": "arun.model_types.llm",
    "LLMStream": "arun.model_types.llm_stream",
    "TextEmbeddingModel": "arun.model_types.text_embedding",
    "RerankModel": "arun.model_types.rerank",
    "Speech2TextModel": "arun.model_types.speech2text",
    "TTSModel": "arun.model_types.tts",
    "ModerationModel": "arun.model_types.moderation",
}
for _name in (
    "PromptMessage SystemPromptMessage UserPromptMessage AssistantPromptMessage ToolPromptMessage "
    "PromptMessageTool PromptMessageFunction ToolCall ToolCallFunction PromptMessageRole "
    "TextPromptMessageContent ImagePromptMessageContent AudioPromptMessageContent "
    "VideoPromptMessageContent DocumentPromptMessageContent messages_from_dicts"
).split():
    _EXPORTS[_name] = "arun.entities.messages"
for _name in "LLMMode LLMUsage LLMResult LLMResultChunk LLMResultChunkDelta".split():
    _EXPORTS[_name] = "arun.entities.llm"
for _name in "EmbeddingInputType EmbeddingUsage TextEmbeddingResult RerankDocument RerankResult".split():
    _EXPORTS[_name] = "arun.entities.embedding"
for _name in "ModelType ModelFeature FetchFrom ParameterRule ParameterType PriceConfig AIModelEntity".split():
    _EXPORTS[_name] = "arun.entities.model"
for _name in "ProviderEntity SimpleProviderEntity ConfigurateMethod CredentialFormSchema FormType".split():
    _EXPORTS[_name] = "arun.entities.provider"
_EXPORTS["I18nObject"] = "arun.entities.common"
for _name in (
    "InvokeError InvokeConnectionError InvokeTimeoutError InvokeStreamInterruptedError "
    "InvokeServerUnavailableError InvokeRateLimitError InvokeQuotaExhaustedError InvokeAuthorizationError "
    "InvokeBadRequestError InvokeContextLengthExceededError InvokeContentFilteredError InvokeModelNotFoundError "
    "CredentialsValidateFailedError ArunUsageError ProviderNotFoundError ModelNotFoundError "
    "ModelTypeNotSupportedError ParameterValidationError SchemaError"
).split():
    _EXPORTS[_name] = "arun.errors"

__all__ = tuple(sorted(_EXPORTS)) + ("__version__",)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'arun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from arun.callbacks import Callback
    from arun.entities.common import I18nObject
    from arun.entities.embedding import (
        EmbeddingInputType,
        EmbeddingUsage,
        RerankDocument,
        RerankResult,
        TextEmbeddingResult,
    )
    from arun.entities.llm import LLMMode, LLMResult, LLMResultChunk, LLMResultChunkDelta, LLMUsage
    from arun.entities.messages import (
        AssistantPromptMessage,
        AudioPromptMessageContent,
        DocumentPromptMessageContent,
        ImagePromptMessageContent,
        PromptMessage,
        PromptMessageFunction,
        PromptMessageRole,
        PromptMessageTool,
        SystemPromptMessage,
        TextPromptMessageContent,
        ToolCall,
        ToolCallFunction,
        ToolPromptMessage,
        UserPromptMessage,
        VideoPromptMessageContent,
        messages_from_dicts,
    )
    from arun.entities.model import (
        AIModelEntity,
        FetchFrom,
        ModelFeature,
        ModelType,
        ParameterRule,
        ParameterType,
        PriceConfig,
    )
    from arun.entities.provider import (
        ConfigurateMethod,
        CredentialFormSchema,
        FormType,
        ProviderEntity,
        SimpleProviderEntity,
    )
    from arun.errors import (
        ArunUsageError,
        CredentialsValidateFailedError,
        InvokeAuthorizationError,
        InvokeBadRequestError,
        InvokeConnectionError,
        InvokeContentFilteredError,
        InvokeContextLengthExceededError,
        InvokeError,
        InvokeModelNotFoundError,
        InvokeQuotaExhaustedError,
        InvokeRateLimitError,
        InvokeServerUnavailableError,
        InvokeStreamInterruptedError,
        InvokeTimeoutError,
        ModelNotFoundError,
        ModelTypeNotSupportedError,
        ParameterValidationError,
        ProviderNotFoundError,
        SchemaError,
    )
    from arun.model_types.ai_model import AIModel
    from arun.model_types.llm import LargeLanguageModel
    from arun.model_types.llm_stream import LLMStream
    from arun.model_types.moderation import ModerationModel
    from arun.model_types.rerank import RerankModel
    from arun.model_types.speech2text import Speech2TextModel
    from arun.model_types.text_embedding import TextEmbeddingModel
    from arun.model_types.tts import TTSModel
    from arun.runtime.model_runtime import ModelRuntime
    from arun.runtime.provider import ModelProvider
    from arun.wire.client import HttpConfig
