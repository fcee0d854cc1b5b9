"""The spellings of each model type: :func:`model_type_of` (any spelling to the enum), and the same
spellings as ``Literal`` types, so ``get_model_instance(provider,
"llm")`` is typed as a :class:`~arun.LargeLanguageModel` (and so on) under ``mypy --strict``.

Each alias lists the enum member and every string :meth:`ModelType.value_of` accepts for it.
"""

from __future__ import annotations

from typing import Literal

from arun.entities.model import ModelType
from arun.errors import ModelTypeNotSupportedError

__all__ = ["model_type_of", "LLMKind", "TextEmbeddingKind", "RerankKind", "Speech2TextKind", "TTSKind", "ModerationKind"]

LLMKind = Literal[ModelType.LLM, "llm", "text-generation"]
TextEmbeddingKind = Literal[ModelType.TEXT_EMBEDDING, "text-embedding", "text_embedding", "embeddings", "text-embeddings"]
RerankKind = Literal[ModelType.RERANK, "rerank", "reranking"]
Speech2TextKind = Literal[ModelType.SPEECH2TEXT, "speech2text"]
TTSKind = Literal[ModelType.TTS, "tts"]
ModerationKind = Literal[ModelType.MODERATION, "moderation"]


def model_type_of(value: ModelType | str) -> ModelType:
    """A model type given as the enum or any spelling :meth:`ModelType.value_of` accepts; an
    unknown one is a :class:`~arun.errors.ModelTypeNotSupportedError`."""
    if isinstance(value, ModelType):
        return value
    try:
        return ModelType.value_of(value)
    except ValueError:
        raise ModelTypeNotSupportedError(f"Unknown model type {value!r}") from None
