"""Model schema entities: model types, features, parameter rules, pricing."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any

import msgspec

from arun.entities.common import I18nObject

__all__ = [
    "ModelType",
    "FetchFrom",
    "ModelFeature",
    "DefaultParameterName",
    "ParameterType",
    "ModelPropertyKey",
    "ProviderModel",
    "ParameterRule",
    "PriceConfig",
    "AIModelEntity",
    "PriceType",
    "PriceInfo",
]


class ModelType(str, Enum):
    LLM = "llm"
    TEXT_EMBEDDING = "text-embedding"
    RERANK = "rerank"
    SPEECH2TEXT = "speech2text"
    MODERATION = "moderation"
    TTS = "tts"
    TEXT2IMG = "text2img"

    @classmethod
    def value_of(cls, origin: str) -> ModelType:
        """Accept the YAML spelling, the folder spelling and Dify's DB (origin) spelling."""
        try:
            return _SPELLINGS[origin]
        except (KeyError, TypeError):
            raise ValueError(f"invalid origin model type {origin}") from None

    def to_origin_model_type(self) -> str:
        return _ORIGIN.get(self, self.value)

    @property
    def folder(self) -> str:
        """The provider sub-folder holding this type's model YAMLs and code."""
        return self.value.replace("-", "_")


_ORIGIN = {ModelType.LLM: "text-generation", ModelType.TEXT_EMBEDDING: "embeddings", ModelType.RERANK: "reranking"}
_SPELLINGS: dict[str, ModelType] = {}
for _member in ModelType:
    _SPELLINGS[_member.value] = _member
    _SPELLINGS[_member.value.replace("-", "_")] = _member
for _member, _origin in _ORIGIN.items():
    _SPELLINGS[_origin] = _member
_SPELLINGS["text-embeddings"] = ModelType.TEXT_EMBEDDING


class FetchFrom(str, Enum):
    PREDEFINED_MODEL = "predefined-model"
    CUSTOMIZABLE_MODEL = "customizable-model"
    FETCH_FROM_REMOTE = "fetch-from-remote"  # listed by the provider's list-models API (arun; Dify documents it only)


class ModelFeature(str, Enum):
    TOOL_CALL = "tool-call"
    MULTI_TOOL_CALL = "multi-tool-call"
    AGENT_THOUGHT = "agent-thought"
    VISION = "vision"
    STREAM_TOOL_CALL = "stream-tool-call"
    DOCUMENT = "document"
    VIDEO = "video"
    AUDIO = "audio"
    STRUCTURED_OUTPUT = "structured-output"


class DefaultParameterName(str, Enum):
    TEMPERATURE = "temperature"
    TOP_P = "top_p"
    TOP_K = "top_k"
    PRESENCE_PENALTY = "presence_penalty"
    FREQUENCY_PENALTY = "frequency_penalty"
    MAX_TOKENS = "max_tokens"
    RESPONSE_FORMAT = "response_format"
    JSON_SCHEMA = "json_schema"


class ParameterType(str, Enum):
    FLOAT = "float"
    INT = "int"
    STRING = "string"
    BOOLEAN = "boolean"
    TEXT = "text"


class ModelPropertyKey(str, Enum):
    MODE = "mode"
    CONTEXT_SIZE = "context_size"
    MAX_CHUNKS = "max_chunks"
    FILE_UPLOAD_LIMIT = "file_upload_limit"
    SUPPORTED_FILE_EXTENSIONS = "supported_file_extensions"
    MAX_CHARACTERS_PER_CHUNK = "max_characters_per_chunk"
    DEFAULT_VOICE = "default_voice"
    VOICES = "voices"
    WORD_LIMIT = "word_limit"
    AUDIO_TYPE = "audio_type"
    MAX_WORKERS = "max_workers"


class ParameterRule(msgspec.Struct, omit_defaults=True):
    name: str
    label: I18nObject
    type: ParameterType
    use_template: str | None = None
    help: I18nObject | None = None
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[str] = []


class PriceConfig(msgspec.Struct):
    input: Decimal
    output: Decimal | None = None
    unit: Decimal = Decimal("0")
    currency: str = "USD"


class ProviderModel(msgspec.Struct, omit_defaults=True):
    model: str
    label: I18nObject
    model_type: ModelType
    features: list[ModelFeature] | None = None
    fetch_from: FetchFrom = FetchFrom.PREDEFINED_MODEL
    model_properties: dict[str, Any] = {}
    deprecated: bool = False


class AIModelEntity(ProviderModel):
    parameter_rules: list[ParameterRule] = []
    pricing: PriceConfig | None = None

    def property(self, key: ModelPropertyKey | str, default: Any = None) -> Any:
        value = self.model_properties.get(key)  # a ModelPropertyKey is the str it names
        return default if value is None else value


class PriceType(str, Enum):
    INPUT = "input"
    OUTPUT = "output"


class PriceInfo(msgspec.Struct):
    unit_price: Decimal
    unit: Decimal
    total_amount: Decimal
    currency: str
