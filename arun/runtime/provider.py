"""``ModelProvider``: one provider's YAML (and code, where it has any), bound to a runtime.

The model class of a type is, in this order:

1. the provider's own code, ``<folder>/<type_folder>/<type_folder>.py`` (Dify's convention:
   the one :class:`~arun.AIModel` subclass defined there) — imported by package name for a
   built-in provider, by path for a user folder; a Dify folder's Python (which imports Dify,
   not arun) is ignored with a warning;
2. the family adapter its ``arun:`` block names for the type (``model_types.<type>.family``);
3. for a folder without an ``arun:`` block (a Dify folder as it is), the block and code of
   the built-in provider of the same id.

Schemas come from ``<folder>/<type_folder>/*.yaml`` (or, for a Dify plugin, the files its
``models.<type>.predefined`` globs name).  One bad model file is skipped and reported in
:attr:`ModelProvider.problems`; it does not take its folder or its provider down.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from arun.entities.model import AIModelEntity, ModelType
from arun.entities.provider import ConfigurateMethod, ProviderEntity
from arun.errors import CredentialsValidateFailedError, ModelTypeNotSupportedError, SchemaError
from arun.model_types.ai_model import AIModel
from arun.model_types.context import ModelContext
from arun.model_types.kinds import model_type_of
from arun.runtime.sources import ProviderSource
from arun.schema.credentials import validate_credential_form
from arun.schema.loader import (
    LoadProblem,
    glob_model_files,
    load_model_entities,
    load_model_files,
    provider_entity_from_dict,
    read_id_list,
    read_yaml,
)
from arun.schema.spec import SPEC_KEY, ProviderSpec, parse_provider_spec

if TYPE_CHECKING:
    from arun.model_types import (
        LargeLanguageModel,
        ModerationModel,
        RerankModel,
        Speech2TextModel,
        TextEmbeddingModel,
        TTSModel,
    )
    from arun.model_types.kinds import LLMKind, ModerationKind, RerankKind, Speech2TextKind, TextEmbeddingKind, TTSKind
    from arun.runtime.model_runtime import ModelRuntime

__all__ = ["ModelProvider", "model_type_of"]

log = logging.getLogger("arun.runtime")

_USER_MODULES = "arun._user_providers"

T = TypeVar("T")




def defined_class(module: ModuleType, base: type[T]) -> type[T] | None:
    """The concrete subclass of ``base`` that ``module`` itself defines (Dify's one-class-per-file
    convention), or None; classes it only imports do not count."""
    for value in vars(module).values():
        if (
            inspect.isclass(value)
            and issubclass(value, base)
            and value.__module__ == module.__name__
            and not inspect.isabstract(value)
        ):
            return value
    return None


class ModelProvider:
    """Override :meth:`validate_provider_credentials` in ``<provider>/<provider>.py`` when needed."""

    def __init__(self, runtime: ModelRuntime, source: ProviderSource) -> None:
        self.runtime = runtime
        self.source = source
        self.name = source.id
        self.folder = source.folder
        self._schema: ProviderEntity | None = None
        self._block: Any = None  # the provider YAML's arun: block as read, None when it has none
        self._instances: dict[ModelType, AIModel] = {}
        self._models: dict[ModelType, list[AIModelEntity]] = {}
        #: what was wrong in this provider's files (skipped model files, ignored values, ignored code)
        self.problems: list[LoadProblem] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # -- schema ------------------------------------------------------------------------------

    def get_provider_schema(self) -> ProviderEntity:
        if self._schema is None:
            path = self.source.yaml_path
            data = read_yaml(path)
            schema = provider_entity_from_dict(data, path)
            if schema.provider != self.name:
                raise SchemaError(f"{path}: provider {schema.provider!r} != folder {self.name!r}", file=str(path), key="provider")
            self._block = data.get(SPEC_KEY)
            self._schema = schema
        return self._schema

    @functools.cached_property
    def spec(self) -> ProviderSpec | None:
        """The provider's ``arun:`` block (validated), or the built-in provider's of the same id."""
        return self._load_spec()

    def _credential_variables(self) -> set[str]:
        schema = self.get_provider_schema()
        names: set[str] = set()
        for form in (schema.provider_credential_schema, schema.model_credential_schema):
            if form is not None:
                names.update(f.variable for f in form.credential_form_schemas)
        return names

    def _load_spec(self) -> ProviderSpec | None:
        from arun.families import FAMILIES, QUIRKS

        schema = self.get_provider_schema()
        block = self._block
        if block is None:
            builtin = self.runtime._builtin_provider(self.name)
            return builtin.spec if builtin is not None and builtin is not self else None
        return parse_provider_spec(
            block,
            self.source.yaml_path,
            credential_variables=self._credential_variables(),
            supported=schema.supported_model_types,
            families=FAMILIES,
            quirks=QUIRKS,
        )

    def secret_fields(self) -> frozenset[str]:
        schema = self.get_provider_schema()
        return frozenset(schema.secret_variables() | schema.secret_variables(model_level=True))

    def load_models(self, model_type: ModelType) -> list[AIModelEntity]:
        """The predefined model schemas of a type (bad files skipped and reported in :attr:`problems`)."""
        models = self._models.get(model_type)
        if models is None:
            source = self.source
            if source.layout == "plugin":
                patterns, position = source.model_globs.get(model_type, ([], None))
                order = read_id_list(position) if position is not None else []
                models = load_model_files(glob_model_files(source.folder, patterns), order, self.problems)
            else:
                models = load_model_entities(source.folder / model_type.folder, self.problems)
            self._models[model_type] = models
        return models

    async def models(self, model_type: ModelType) -> list[AIModelEntity]:
        """The predefined models of a type (empty unless the provider supports it)."""
        schema = self.get_provider_schema()
        if model_type not in schema.supported_model_types:
            return []
        if ConfigurateMethod.PREDEFINED_MODEL not in schema.configurate_methods:
            return []
        return await self.get_model_instance(model_type).predefined_models()

    async def remote_models(self, model_type: ModelType, credentials: Mapping[str, Any]) -> list[AIModelEntity]:
        """fetch-from-remote: the models the account lists (for providers whose block declares ``remote_models``)."""
        spec = self.spec
        if spec is None or spec.remote_models is None or ModelType.value_of(spec.remote_models.model_type) is not model_type:
            return []
        instance = self.get_model_instance(model_type)
        fetch = getattr(instance, "remote_models", None)
        return list(await fetch(credentials)) if fetch is not None else []

    # -- model objects -----------------------------------------------------------------------

    @overload
    def get_model_instance(self, model_type: LLMKind) -> LargeLanguageModel: ...
    @overload
    def get_model_instance(self, model_type: TextEmbeddingKind) -> TextEmbeddingModel: ...
    @overload
    def get_model_instance(self, model_type: RerankKind) -> RerankModel: ...
    @overload
    def get_model_instance(self, model_type: Speech2TextKind) -> Speech2TextModel: ...
    @overload
    def get_model_instance(self, model_type: TTSKind) -> TTSModel: ...
    @overload
    def get_model_instance(self, model_type: ModerationKind) -> ModerationModel: ...
    @overload
    def get_model_instance(self, model_type: ModelType | str) -> AIModel: ...

    def get_model_instance(self, model_type: ModelType | str) -> AIModel:
        """The model object of a type (typed per type: ``"llm"`` gives a :class:`LargeLanguageModel`)."""
        kind = model_type_of(model_type)
        instance = self._instances.get(kind)
        if instance is None:
            if kind not in self.get_provider_schema().supported_model_types:
                raise ModelTypeNotSupportedError(f"Provider {self.name!r} does not support model type {kind.value!r}")
            instance = self._model_class(kind)(self._context(kind))
            self._instances[kind] = instance
        return instance

    def _context(self, kind: ModelType) -> ModelContext:
        spec = self.spec
        type_spec = spec.for_type(kind) if spec is not None else None
        endpoint = None
        if spec is not None and type_spec is not None:
            from arun.families import default_path
            from arun.families.endpoint import Endpoint

            endpoint = Endpoint(self.name, spec, type_spec, default_path(type_spec.family, kind), self.runtime.endpoint_override(self.name))
        return ModelContext(
            provider=self.name,
            model_type=kind,
            http=self.runtime.http,
            predefined=lambda: self.load_models(kind),
            spec=spec,
            type_spec=type_spec,
            endpoint=endpoint,
            customizable=ConfigurateMethod.CUSTOMIZABLE_MODEL in self.get_provider_schema().configurate_methods,
            secret_fields=self.secret_fields(),
            lookup=self.runtime.predefined_schema,
        )

    def _model_class(self, kind: ModelType) -> type[AIModel]:
        found = self._code_class(kind)
        if found is not None:
            return found
        spec = self.spec
        if spec is not None and not self.source.builtin:
            builtin = self.runtime._builtin_provider(self.name)
            if builtin is not None and builtin.spec is spec:  # the block is the built-in's: so is the code
                found = builtin._code_class(kind)
                if found is not None:
                    return found
        type_spec = spec.for_type(kind) if spec is not None else None
        if type_spec is not None:
            from arun.families import adapter_class

            return adapter_class(type_spec.family, kind)
        raise ModelTypeNotSupportedError(
            f"Provider {self.name!r} declares {kind.value!r} but has neither code for it "
            f"({kind.folder}/{kind.folder}.py) nor a family in its arun: block "
            f"(arun.model_types.{kind.value}.family; see docs/PROVIDERS.md)"
        )

    def _code_class(self, kind: ModelType) -> type[AIModel] | None:
        path = self.folder / kind.folder / f"{kind.folder}.py"
        if self.source.layout != "folder" or not path.is_file():
            return None
        package = self.source.package
        try:
            if package is not None:
                module = importlib.import_module(f"{package}.{kind.folder}.{kind.folder}")
            else:
                module = self._import_path(kind, path)
        except ImportError as exc:
            missing = (exc.name or "").split(".")[0]
            if package is None and missing and missing != "arun":
                text = f"ignored {path.name}: it imports {exc.name!r}, not arun (Dify code)"
                log.warning("%s: %s", path, text)
                self.problems.append(LoadProblem(str(path), text, "warning"))
                return None
            raise
        found = defined_class(module, AIModel)
        if found is None:
            raise ModelTypeNotSupportedError(f"{path} defines no AIModel subclass")
        return found

    def _import_path(self, kind: ModelType, path: Path) -> ModuleType:
        name = f"{_USER_MODULES}.{self.name}.{kind.folder}"
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None) == str(path):
            return module
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ModelTypeNotSupportedError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    # -- credentials -------------------------------------------------------------------------

    def validate_credential_form(self, credentials: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(credentials, Mapping):
            raise CredentialsValidateFailedError("Credentials should be a mapping of form variables")
        form = self.get_provider_schema().provider_credential_schema
        return validate_credential_form(form.credential_form_schemas if form else [], dict(credentials))

    async def validate_provider_credentials(self, credentials: Mapping[str, Any]) -> None:
        """Default: validate the ``arun.validate_model`` (else the first predefined model) with these credentials."""
        schema = self.get_provider_schema()
        spec = self.spec
        if spec is not None and spec.validate_model:
            for kind in schema.supported_model_types:
                if any(m.model == spec.validate_model for m in self.load_models(kind)):
                    await self.get_model_instance(kind).validate_credentials(spec.validate_model, credentials)
                    return
        for kind in schema.supported_model_types:
            models = await self.models(kind)
            if models:
                await self.get_model_instance(kind).validate_credentials(models[0].model, credentials)
                return
        raise CredentialsValidateFailedError(f"Provider {self.name} has no predefined model to validate with")

    # -- checks ------------------------------------------------------------------------------

    def check(self) -> list[LoadProblem]:
        """Load everything (schema, block, every model file, every model class) and return the problems."""
        problems: list[LoadProblem] = []
        try:
            schema = self.get_provider_schema()
            self.spec  # noqa: B018 - validates the arun: block
        except SchemaError as exc:
            return [LoadProblem.of(exc, self.source.yaml_path)]
        for kind in schema.supported_model_types:
            if kind is ModelType.TEXT2IMG:
                continue
            try:
                self.load_models(kind)
                self._model_class(kind)
            except (SchemaError, ModelTypeNotSupportedError) as exc:
                problems.append(LoadProblem(str(getattr(exc, "file", None) or self.source.yaml_path), str(exc), "error", getattr(exc, "key", None)))
        spec = self.spec
        if spec is not None and spec.model_names:
            known = {m.model for kind in schema.supported_model_types for m in self.load_models(kind)}
            for model in spec.model_names:
                if known and model not in known:
                    problems.append(LoadProblem(str(self.source.yaml_path), f"model_names maps {model!r}, which no model file declares", "error", f"{SPEC_KEY}.model_names.{model}"))
        return self.problems + problems
