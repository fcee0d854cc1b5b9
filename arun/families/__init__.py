"""Family adapters: one model class per wire format and model type, configured by data.

A provider on a known family is YAML only: its ``arun:`` block names the family of each model
type (see :mod:`arun.schema.spec` and ``docs/PROVIDERS.md``).  Classes are imported on first
use, so listing families costs nothing.

==========================  ==================  ==================================================
family                      model type          wire format
==========================  ==================  ==================================================
``openai_chat``             llm                 ``POST /chat/completions`` (and ``/completions``)
``openai_embedding``        text-embedding      ``POST /embeddings``
``openai_transcription``    speech2text         ``POST /audio/transcriptions`` (multipart)
``openai_speech``           tts                 ``POST /audio/speech``
``openai_moderation``       moderation          ``POST /moderations``
``rerank``                  rerank              ``POST /rerank`` and the ranking shapes
``anthropic_messages``      llm                 ``POST /v1/messages``
``ollama_chat``             llm                 ``POST /api/chat`` (NDJSON)
``ollama_embedding``        text-embedding      ``POST /api/embed``
==========================  ==================  ==================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from arun.entities.model import ModelType

if TYPE_CHECKING:
    from arun.model_types.ai_model import AIModel

__all__ = ["FAMILIES", "QUIRKS", "adapter_class", "default_path"]

_LLM, _EMB, _RR = ModelType.LLM, ModelType.TEXT_EMBEDDING, ModelType.RERANK
_S2T, _TTS, _MOD = ModelType.SPEECH2TEXT, ModelType.TTS, ModelType.MODERATION

#: family -> model type -> (module, class, default path)
FAMILIES: dict[str, dict[ModelType, tuple[str, str, str]]] = {
    "openai_chat": {_LLM: ("arun.families.openai_chat", "OpenAIChatLLM", "/chat/completions")},
    "openai_embedding": {_EMB: ("arun.families.openai_embedding", "OpenAIEmbedding", "/embeddings")},
    "openai_transcription": {_S2T: ("arun.families.openai_audio", "OpenAITranscription", "/audio/transcriptions")},
    "openai_speech": {_TTS: ("arun.families.openai_audio", "OpenAISpeech", "/audio/speech")},
    "openai_moderation": {_MOD: ("arun.families.openai_moderation", "OpenAIModeration", "/moderations")},
    "rerank": {_RR: ("arun.families.rerank", "RerankFamily", "/rerank")},
    "anthropic_messages": {_LLM: ("arun.families.anthropic", "AnthropicMessagesLLM", "/v1/messages")},
    "ollama_chat": {_LLM: ("arun.families.ollama", "OllamaChatLLM", "/api/chat")},
    "ollama_embedding": {_EMB: ("arun.families.ollama", "OllamaEmbedding", "/api/embed")},
}

#: the quirk names each family understands (a provider naming another is a SchemaError at load)
QUIRKS: dict[str, frozenset[str]] = {
    "openai_chat": frozenset({"no_stream_usage", "think_tags", "no_user"}),
    "openai_embedding": frozenset({"no_user"}),
}


def default_path(family: str, kind: ModelType) -> str:
    return FAMILIES[family][kind][2]


def adapter_class(family: str, kind: ModelType) -> type[AIModel]:
    module, name, _ = FAMILIES[family][kind]
    cls: type[AIModel] = getattr(importlib.import_module(module), name)
    return cls
