"""The spellings of each model type as ``Literal`` types, so ``get_model_instance(provider,
"llm")`` is typed as a :class:`~arun.LargeLanguageModel` (and so on) under ``mypy --strict``.

Each alias lists the enum member and every string :meth:`ModelType.value_of` accepts for it.
"""

from __future__ import annotations

from typing import Literal

from arun.entities.model import ModelType

__all__ = ["LLMKind", "TextEmbeddingKind", "RerankKind", "Speech2TextKind", "TTSKind", "ModerationKind"]

LLMKind = Literal[ModelType.LLM, "llm", "text-generation"]
TextEmbeddingKind = Literal[ModelType.TEXT_EMBEDDING, "text-embedding", "text_embedding", "embeddings", "text-embeddings"]
RerankKind = Literal[ModelType.RERANK, "rerank", "reranking"]
Speech2TextKind = Literal[ModelType.SPEECH2TEXT, "speech2text"]
TTSKind = Literal[ModelType.TTS, "tts"]
ModerationKind = Literal[ModelType.MODERATION, "moderation"]
