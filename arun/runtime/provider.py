"""``ModelProvider``: one provider folder (YAML + code), bound to a runtime.

Model classes are imported lazily from ``<provider>/<type_folder>/<type_folder>.py``
(Dify's convention) the first time a model type is asked for.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arun.entities.model import AIModelEntity, FetchFrom, ModelType
from arun.entities.provider import ConfigurateMethod, ProviderEntity
from arun.errors import CredentialsValidateFailedError, ModelTypeNotSupportedError, SchemaError
from arun.model_types.ai_model import AIModel
from arun.schema.credentials import validate_credential_form
from arun.schema.loader import load_model_entities, load_provider_entity, merge_rule_template
from arun.schema.templates import PARAMETER_RULE_TEMPLATE

if TYPE_CHECKING:
    from arun.runtime.model_runtime import ModelRuntime

__all__ = ["ModelProvider"]

PACKAGE = "arun.providers"


class ModelProvider:
    """Override :meth:`validate_provider_credentials` in ``<provider>/<provider>.py`` when needed."""

    def __init__(self, runtime: ModelRuntime, name: str, folder: Path) -> None:
        self.runtime = runtime
        self.name = name
        self.folder = folder
        self._schema: ProviderEntity | None = None
        self._instances: dict[ModelType, AIModel] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def get_provider_schema(self) -> ProviderEntity:
        if self._schema is None:
            path = self.folder / f"{self.name}.yaml"
            if not path.is_file():
                raise SchemaError(f"{path}: provider YAML is missing", file=str(path))
            schema = load_provider_entity(path)
            if schema.provider != self.name:
                raise SchemaError(f"{path}: provider {schema.provider!r} != folder {self.name!r}", file=str(path))
            self._schema = schema
        return self._schema

    def load_models(self, model_type: ModelType) -> list[AIModelEntity]:
        return load_model_entities(self.folder / model_type.folder)

    async def models(self, model_type: ModelType) -> list[AIModelEntity]:
        """The predefined models of a type (empty unless the provider supports it)."""
        schema = self.get_provider_schema()
        if model_type not in schema.supported_model_types:
            return []
        if ConfigurateMethod.PREDEFINED_MODEL not in schema.configurate_methods:
            return []
        return await self.get_model_instance(model_type).predefined_models()

    def get_model_instance(self, model_type: ModelType | str) -> AIModel:
        try:
            kind = model_type if isinstance(model_type, ModelType) else ModelType.value_of(model_type)
        except ValueError:
            raise ModelTypeNotSupportedError(f"Unknown model type {model_type!r}") from None
        instance = self._instances.get(kind)
        if instance is None:
            if kind not in self.get_provider_schema().supported_model_types:
                raise ModelTypeNotSupportedError(
                    f"Provider {self.name!r} does not support model type {kind.value!r}"
                )
            instance = self._model_class(kind)(self)
            self._instances[kind] = instance
        return instance

    def _model_class(self, kind: ModelType) -> type[AIModel]:
        module_name = f"{PACKAGE}.{self.name}.{kind.folder}.{kind.folder}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ModelTypeNotSupportedError(f"Provider {self.name!r} has no code for {kind.value!r}") from exc
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, AIModel)
                and value.__module__ == module.__name__
                and not inspect.isabstract(value)
            ):
                return value
        raise ModelTypeNotSupportedError(f"{module_name} defines no AIModel subclass")

    def fill_rule_templates(self, schema: AIModelEntity, fetch_from: FetchFrom) -> AIModelEntity:
        """For customizable schemas: fill templated rule fields only where the value is falsy (Dify)."""
        import msgspec

        rules = []
        for rule in schema.parameter_rules:
            template = PARAMETER_RULE_TEMPLATE.get(rule.use_template or "")
            if template:
                merged = msgspec.to_builtins(rule)
                for key in ("max", "min", "default", "precision", "required", "help"):
                    if not merged.get(key) and template.get(key) is not None:
                        merged[key] = template[key]
                rule = msgspec.convert(merge_rule_template(merged), type(rule), strict=False)
            rules.append(rule)
        return msgspec.structs.replace(schema, parameter_rules=rules, fetch_from=fetch_from)

    def validate_credential_form(self, credentials: Mapping[str, Any]) -> dict[str, Any]:
        form = self.get_provider_schema().provider_credential_schema
        return validate_credential_form(form.credential_form_schemas if form else [], dict(credentials))

    async def validate_provider_credentials(self, credentials: Mapping[str, Any]) -> None:
        """Default: validate the first predefined LLM (or any type) with these credentials."""
        schema = self.get_provider_schema()
        for kind in schema.supported_model_types:
            models = await self.models(kind)
            if models:
                await self.get_model_instance(kind).validate_credentials(models[0].model, credentials)
                return
        raise CredentialsValidateFailedError(f"Provider {self.name} has no predefined model to validate with")
