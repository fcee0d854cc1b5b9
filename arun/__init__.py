"""arun: an asyncio-native model runtime faithful to the Dify Model Runtime contract.

Public names are loaded on first use, so ``import arun`` stays cheap (no aiohttp, no YAML,
no provider code until a runtime needs them).  The names below are the whole public surface:
``__all__`` lists them, and the ``TYPE_CHECKING`` block re-exports each one explicitly, so
``from arun import ModelRuntime`` type-checks under ``mypy --strict`` in user code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AIModel": "arun.model_types.ai_model",
    "AIModelEntity": "arun.entities.model",
    "ArunError": "arun.errors",
    "ArunUsageError": "arun.errors",
    "AssistantPromptMessage": "arun.entities.messages",
    "AudioPromptMessageContent": "arun.entities.messages",
    "Callback": "arun.callbacks",
    "ConfigurateMethod": "arun.entities.provider",
    "CredentialFormSchema": "arun.entities.provider",
    "CredentialsValidateFailedError": "arun.errors",
    "DocumentPromptMessageContent": "arun.entities.messages",
    "EmbeddingInputType": "arun.entities.embedding",
    "EmbeddingUsage": "arun.entities.embedding",
    "FetchFrom": "arun.entities.model",
    "FormType": "arun.entities.provider",
    "HttpConfig": "arun.wire.client",
    "I18nObject": "arun.entities.common",
    "ImagePromptMessageContent": "arun.entities.messages",
    "InvokeAuthorizationError": "arun.errors",
    "InvokeBadRequestError": "arun.errors",
    "InvokeConnectionError": "arun.errors",
    "InvokeContentFilteredError": "arun.errors",
    "InvokeContextLengthExceededError": "arun.errors",
    "InvokeError": "arun.errors",
    "InvokeModelNotFoundError": "arun.errors",
    "InvokeOverloadedError": "arun.errors",
    "InvokePermissionDeniedError": "arun.errors",
    "InvokeQuotaExhaustedError": "arun.errors",
    "InvokeRateLimitError": "arun.errors",
    "InvokeServerUnavailableError": "arun.errors",
    "InvokeStreamInterruptedError": "arun.errors",
    "InvokeTimeoutError": "arun.errors",
    "LLMMode": "arun.entities.llm",
    "LLMResult": "arun.entities.llm",
    "LLMResultChunk": "arun.entities.llm",
    "LLMResultChunkDelta": "arun.entities.llm",
    "LLMStream": "arun.model_types.llm_stream",
    "LLMUsage": "arun.entities.llm",
    "LargeLanguageModel": "arun.model_types.llm",
    "ModelFeature": "arun.entities.model",
    "ModelNotFoundError": "arun.errors",
    "ModelProvider": "arun.runtime.provider",
    "ModelRuntime": "arun.runtime.model_runtime",
    "ModelType": "arun.entities.model",
    "ModelTypeNotSupportedError": "arun.errors",
    "ModerationModel": "arun.model_types.moderation",
    "ParameterRule": "arun.entities.model",
    "ParameterType": "arun.entities.model",
    "ParameterValidationError": "arun.errors",
    "PriceConfig": "arun.entities.model",
    "PromptMessage": "arun.entities.messages",
    "PromptMessageFunction": "arun.entities.messages",
    "PromptMessageRole": "arun.entities.messages",
    "PromptMessageTool": "arun.entities.messages",
    "ProviderEntity": "arun.entities.provider",
    "ProviderNotFoundError": "arun.errors",
    "RerankDocument": "arun.entities.embedding",
    "RerankModel": "arun.model_types.rerank",
    "RerankResult": "arun.entities.embedding",
    "SchemaError": "arun.errors",
    "SimpleProviderEntity": "arun.entities.provider",
    "Speech2TextModel": "arun.model_types.speech2text",
    "SystemPromptMessage": "arun.entities.messages",
    "TTSModel": "arun.model_types.tts",
    "TextEmbeddingModel": "arun.model_types.text_embedding",
    "TextEmbeddingResult": "arun.entities.embedding",
    "TextPromptMessageContent": "arun.entities.messages",
    "ToolCall": "arun.entities.messages",
    "ToolCallFunction": "arun.entities.messages",
    "ToolPromptMessage": "arun.entities.messages",
    "UserPromptMessage": "arun.entities.messages",
    "VideoPromptMessageContent": "arun.entities.messages",
    "messages_from_dicts": "arun.entities.messages",
}

__all__ = [
    "AIModel",
    "AIModelEntity",
    "ArunError",
    "ArunUsageError",
    "AssistantPromptMessage",
    "AudioPromptMessageContent",
    "Callback",
    "ConfigurateMethod",
    "CredentialFormSchema",
    "CredentialsValidateFailedError",
    "DocumentPromptMessageContent",
    "EmbeddingInputType",
    "EmbeddingUsage",
    "FetchFrom",
    "FormType",
    "HttpConfig",
    "I18nObject",
    "ImagePromptMessageContent",
    "InvokeAuthorizationError",
    "InvokeBadRequestError",
    "InvokeConnectionError",
    "InvokeContentFilteredError",
    "InvokeContextLengthExceededError",
    "InvokeError",
    "InvokeModelNotFoundError",
    "InvokeOverloadedError",
    "InvokePermissionDeniedError",
    "InvokeQuotaExhaustedError",
    "InvokeRateLimitError",
    "InvokeServerUnavailableError",
    "InvokeStreamInterruptedError",
    "InvokeTimeoutError",
    "LLMMode",
    "LLMResult",
    "LLMResultChunk",
    "LLMResultChunkDelta",
    "LLMStream",
    "LLMUsage",
    "LargeLanguageModel",
    "ModelFeature",
    "ModelNotFoundError",
    "ModelProvider",
    "ModelRuntime",
    "ModelType",
    "ModelTypeNotSupportedError",
    "ModerationModel",
    "ParameterRule",
    "ParameterType",
    "ParameterValidationError",
    "PriceConfig",
    "PromptMessage",
    "PromptMessageFunction",
    "PromptMessageRole",
    "PromptMessageTool",
    "ProviderEntity",
    "ProviderNotFoundError",
    "RerankDocument",
    "RerankModel",
    "RerankResult",
    "SchemaError",
    "SimpleProviderEntity",
    "Speech2TextModel",
    "SystemPromptMessage",
    "TTSModel",
    "TextEmbeddingModel",
    "TextEmbeddingResult",
    "TextPromptMessageContent",
    "ToolCall",
    "ToolCallFunction",
    "ToolPromptMessage",
    "UserPromptMessage",
    "VideoPromptMessageContent",
    "messages_from_dicts",
    "__version__",
]


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
    from arun.callbacks import (
        Callback as Callback,
    )
    from arun.entities.common import (
        I18nObject as I18nObject,
    )
    from arun.entities.embedding import (
        EmbeddingInputType as EmbeddingInputType,
        EmbeddingUsage as EmbeddingUsage,
        RerankDocument as RerankDocument,
        RerankResult as RerankResult,
        TextEmbeddingResult as TextEmbeddingResult,
    )
    from arun.entities.llm import (
        LLMMode as LLMMode,
        LLMResult as LLMResult,
        LLMResultChunk as LLMResultChunk,
        LLMResultChunkDelta as LLMResultChunkDelta,
        LLMUsage as LLMUsage,
    )
    from arun.entities.messages import (
        AssistantPromptMessage as AssistantPromptMessage,
        AudioPromptMessageContent as AudioPromptMessageContent,
        DocumentPromptMessageContent as DocumentPromptMessageContent,
        ImagePromptMessageContent as ImagePromptMessageContent,
        PromptMessage as PromptMessage,
        PromptMessageFunction as PromptMessageFunction,
        PromptMessageRole as PromptMessageRole,
        PromptMessageTool as PromptMessageTool,
        SystemPromptMessage as SystemPromptMessage,
        TextPromptMessageContent as TextPromptMessageContent,
        ToolCall as ToolCall,
        ToolCallFunction as ToolCallFunction,
        ToolPromptMessage as ToolPromptMessage,
        UserPromptMessage as UserPromptMessage,
        VideoPromptMessageContent as VideoPromptMessageContent,
        messages_from_dicts as messages_from_dicts,
    )
    from arun.entities.model import (
        AIModelEntity as AIModelEntity,
        FetchFrom as FetchFrom,
        ModelFeature as ModelFeature,
        ModelType as ModelType,
        ParameterRule as ParameterRule,
        ParameterType as ParameterType,
        PriceConfig as PriceConfig,
    )
    from arun.entities.provider import (
        ConfigurateMethod as ConfigurateMethod,
        CredentialFormSchema as CredentialFormSchema,
        FormType as FormType,
        ProviderEntity as ProviderEntity,
        SimpleProviderEntity as SimpleProviderEntity,
    )
    from arun.errors import (
        ArunError as ArunError,
        ArunUsageError as ArunUsageError,
        CredentialsValidateFailedError as CredentialsValidateFailedError,
        InvokeAuthorizationError as InvokeAuthorizationError,
        InvokeBadRequestError as InvokeBadRequestError,
        InvokeConnectionError as InvokeConnectionError,
        InvokeContentFilteredError as InvokeContentFilteredError,
        InvokeContextLengthExceededError as InvokeContextLengthExceededError,
        InvokeError as InvokeError,
        InvokeModelNotFoundError as InvokeModelNotFoundError,
        InvokeOverloadedError as InvokeOverloadedError,
        InvokePermissionDeniedError as InvokePermissionDeniedError,
        InvokeQuotaExhaustedError as InvokeQuotaExhaustedError,
        InvokeRateLimitError as InvokeRateLimitError,
        InvokeServerUnavailableError as InvokeServerUnavailableError,
        InvokeStreamInterruptedError as InvokeStreamInterruptedError,
        InvokeTimeoutError as InvokeTimeoutError,
        ModelNotFoundError as ModelNotFoundError,
        ModelTypeNotSupportedError as ModelTypeNotSupportedError,
        ParameterValidationError as ParameterValidationError,
        ProviderNotFoundError as ProviderNotFoundError,
        SchemaError as SchemaError,
    )
    from arun.model_types.ai_model import (
        AIModel as AIModel,
    )
    from arun.model_types.llm import (
        LargeLanguageModel as LargeLanguageModel,
    )
    from arun.model_types.llm_stream import (
        LLMStream as LLMStream,
    )
    from arun.model_types.moderation import (
        ModerationModel as ModerationModel,
    )
    from arun.model_types.rerank import (
        RerankModel as RerankModel,
    )
    from arun.model_types.speech2text import (
        Speech2TextModel as Speech2TextModel,
    )
    from arun.model_types.text_embedding import (
        TextEmbeddingModel as TextEmbeddingModel,
    )
    from arun.model_types.tts import (
        TTSModel as TTSModel,
    )
    from arun.runtime.model_runtime import (
        ModelRuntime as ModelRuntime,
    )
    from arun.runtime.provider import (
        ModelProvider as ModelProvider,
    )
    from arun.wire.client import (
        HttpConfig as HttpConfig,
    )
