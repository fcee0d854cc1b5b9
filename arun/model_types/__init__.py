"""The six model types on a common :class:`AIModel`."""

from arun.model_types.ai_model import AIModel
from arun.model_types.llm import LargeLanguageModel
from arun.model_types.llm_stream import LLMStream
from arun.model_types.moderation import ModerationModel
from arun.model_types.rerank import RerankModel
from arun.model_types.speech2text import Speech2TextModel
from arun.model_types.text_embedding import TextEmbeddingModel
from arun.model_types.tts import TTSModel

__all__ = [
    "AIModel",
    "LargeLanguageModel",
    "LLMStream",
    "TextEmbeddingModel",
    "RerankModel",
    "Speech2TextModel",
    "TTSModel",
    "ModerationModel",
]
