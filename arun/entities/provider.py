"""Provider schema entities: credential forms, configuration methods, the provider itself."""

from __future__ import annotations

from enum import Enum
from typing import Any

import msgspec

from arun.entities.common import I18nObject
from arun.entities.model import AIModelEntity, ModelType

__all__ = [
    "ConfigurateMethod",
    "FormType",
    "FormShowOnObject",
    "FormOption",
    "CredentialFormSchema",
    "ProviderCredentialSchema",
    "FieldModelSchema",
    "ModelCredentialSchema",
    "ProviderHelpEntity",
    "ProviderEntity",
    "SimpleProviderEntity",
    "ProviderConfig",
]


class ConfigurateMethod(str, Enum):
    PREDEFINED_MODEL = "predefined-model"
    CUSTOMIZABLE_MODEL = "customizable-model"
    FETCH_FROM_REMOTE = "fetch-from-remote"  # documented by Dify, never implemented there; kept loadable


class FormType(str, Enum):
    TEXT_INPUT = "text-input"
    SECRET_INPUT = "secret-input"
    SELECT = "select"
    RADIO = "radio"
    SWITCH = "switch"


class FormShowOnObject(msgspec.Struct):
    variable: str
    value: str


class FormOption(msgspec.Struct, omit_defaults=True):
    label: I18nObject
    value: str
    show_on: list[FormShowOnObject] = []


class CredentialFormSchema(msgspec.Struct, omit_defaults=True):
    variable: str
    label: I18nObject
    type: FormType
    required: bool = True
    default: str | None = None
    options: list[FormOption] | None = None
    placeholder: I18nObject | None = None
    max_length: int = 0
    show_on: list[FormShowOnObject] = []


class ProviderCredentialSchema(msgspec.Struct):
    credential_form_schemas: list[CredentialFormSchema] = []


class FieldModelSchema(msgspec.Struct, omit_defaults=True):
    label: I18nObject
    placeholder: I18nObject | None = None


class ModelCredentialSchema(msgspec.Struct):
    model: FieldModelSchema
    credential_form_schemas: list[CredentialFormSchema] = []


class ProviderHelpEntity(msgspec.Struct):
    title: I18nObject
    url: I18nObject


class ProviderEntity(msgspec.Struct, omit_defaults=True):
    provider: str
    label: I18nObject
    supported_model_types: list[ModelType]
    configurate_methods: list[ConfigurateMethod]
    description: I18nObject | None = None
    icon_small: I18nObject | None = None
    icon_large: I18nObject | None = None
    background: str | None = None
    help: ProviderHelpEntity | None = None
    models: list[AIModelEntity] = []
    provider_credential_schema: ProviderCredentialSchema | None = None
    model_credential_schema: ModelCredentialSchema | None = None

    def to_simple_provider(self) -> SimpleProviderEntity:
        return SimpleProviderEntity(
            provider=self.provider,
            label=self.label,
            icon_small=self.icon_small,
            icon_large=self.icon_large,
            supported_model_types=self.supported_model_types,
            models=self.models,
        )

    def secret_variables(self, *, model_level: bool = False) -> set[str]:
        """Names of the ``secret-input`` fields of the provider (or model) credential form."""
        schema = self.model_credential_schema if model_level else self.provider_credential_schema
        if schema is None:
            return set()
        return {f.variable for f in schema.credential_form_schemas if f.type is FormType.SECRET_INPUT}


class SimpleProviderEntity(msgspec.Struct, omit_defaults=True):
    provider: str
    label: I18nObject
    supported_model_types: list[ModelType]
    icon_small: I18nObject | None = None
    icon_large: I18nObject | None = None
    models: list[AIModelEntity] = []


class ProviderConfig(msgspec.Struct):
    provider: str
    credentials: dict[str, Any]
