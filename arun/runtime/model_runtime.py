"""``ModelRuntime``: provider registry + factory, owner of the pooled HTTP client.

::

    async with ModelRuntime() as rt:
        llm = rt.get_model_instance("openai", "llm")
        result = await llm.invoke(model="gpt-4o-mini", credentials=..., prompt_messages=[...], stream=False)

Providers are discovered (without importing their code) from ``provider_paths`` and
``ARUN_PROVIDERS_PATH`` first, then the built-in folders of ``arun.providers``, ordered by
``_position.yaml`` (see :mod:`arun.runtime.sources`); ``ARUN_PROVIDER_PINS``,
``ARUN_PROVIDER_INCLUDES`` and ``ARUN_PROVIDER_EXCLUDES`` (comma-separated) reorder and
filter them like Dify's ``POSITION_PROVIDER_*``.

``endpoint_overrides={"deepseek": "http://127.0.0.1:8000"}`` sends a provider's requests to
another origin (a proxy, a simulator) while keeping the paths of its default base URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

from arun.entities.model import AIModelEntity, ModelType
from arun.entities.provider import ProviderEntity, SimpleProviderEntity
from arun.errors import CredentialsValidateFailedError, ProviderNotFoundError, SchemaError
from arun.model_types.ai_model import AIModel
from arun.model_types.kinds import model_type_of
from arun.runtime.provider import ModelProvider, defined_class
from arun.runtime.sources import ProviderSource, builtin_sources, discover
from arun.schema.credentials import validate_credential_form
from arun.schema.loader import LoadProblem, read_yaml
from arun.schema.spec import SPEC_KEY
from arun.wire.client import HttpClient, HttpConfig

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

__all__ = ["ModelRuntime", "discover_providers"]


def discover_providers(paths: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Path]:
    """Provider name -> folder, in position order, without importing provider code."""
    return {name: source.folder for name, source in discover(paths).items()}


class ModelRuntime:
    """The entry point: ``async with ModelRuntime() as rt``. Owns every socket."""

    def __init__(
        self,
        *,
        http: HttpConfig | None = None,
        provider_paths: Sequence[str | os.PathLike[str]] = (),
        endpoint_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.http = HttpClient(http)
        self.provider_paths = [Path(p) for p in provider_paths]
        self._overrides = dict(endpoint_overrides or {})
        self._sources: dict[str, ProviderSource] | None = None
        self._builtins: dict[str, ModelProvider] = {}
        self._providers: dict[str, ModelProvider] = {}
        #: problems found while discovering providers (unreadable plugin manifests, missing paths)
        self.discovery_problems: list[LoadProblem] = []

    async def __aenter__(self) -> ModelRuntime:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        await self.http.start()

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- registry ----------------------------------------------------------------------

    def _discover(self) -> dict[str, ProviderSource]:
        if self._sources is None:
            self.discovery_problems = []
            self._sources = discover(self.provider_paths, self.discovery_problems)
        return self._sources

    def provider_names(self) -> list[str]:
        return list(self._discover())

    def provider_source(self, name: str) -> ProviderSource:
        source = self._discover().get(name) if isinstance(name, str) else None
        if source is None:
            raise ProviderNotFoundError(f"Invalid provider: {name!r}")
        return source

    def get_provider(self, name: str) -> ModelProvider:
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        source = self.provider_source(name)
        provider = self._provider_class(source)(self, source)
        self._providers[name] = provider
        return provider

    def _builtin_provider(self, name: str) -> ModelProvider | None:
        """The built-in provider of an id (its block and code serve a user's Dify folder of that id)."""
        current = self._discover().get(name)
        if current is not None and current.builtin:
            return self.get_provider(name)
        provider = self._builtins.get(name)
        if provider is None:
            source = builtin_sources().get(name)
            if source is None:
                return None
            provider = self._builtins[name] = self._provider_class(source)(self, source)
        return provider

    def _provider_class(self, source: ProviderSource) -> type[ModelProvider]:
        """The ``ModelProvider`` subclass of a built-in's ``<id>/<id>.py``; a folder without an
        ``arun:`` block gets the built-in provider's of its id (with its block and model code)."""
        import importlib

        if not source.builtin:
            builtin = builtin_sources().get(source.id)
            return self._provider_class(builtin) if builtin is not None and not _has_block(source) else ModelProvider
        path = source.folder / f"{source.id}.py"
        if source.layout != "folder" or source.package is None or not path.is_file():
            return ModelProvider
        return defined_class(importlib.import_module(f"{source.package}.{source.id}"), ModelProvider) or ModelProvider

    def endpoint_override(self, provider: str) -> str | None:
        return self._overrides.get(provider)

    def predefined_schema(self, provider: str, model_type: ModelType, model: str) -> AIModelEntity | None:
        """Another provider's predefined model (a customizable Azure deployment borrows OpenAI's)."""
        try:
            models = self.get_provider(provider).load_models(model_type)
        except ProviderNotFoundError:
            return None
        return next((m for m in models if m.model == model), None)

    @overload
    def get_model_instance(self, provider: str, model_type: LLMKind) -> LargeLanguageModel: ...
    @overload
    def get_model_instance(self, provider: str, model_type: TextEmbeddingKind) -> TextEmbeddingModel: ...
    @overload
    def get_model_instance(self, provider: str, model_type: RerankKind) -> RerankModel: ...
    @overload
    def get_model_instance(self, provider: str, model_type: Speech2TextKind) -> Speech2TextModel: ...
    @overload
    def get_model_instance(self, provider: str, model_type: TTSKind) -> TTSModel: ...
    @overload
    def get_model_instance(self, provider: str, model_type: ModerationKind) -> ModerationModel: ...
    @overload
    def get_model_instance(self, provider: str, model_type: ModelType | str) -> AIModel: ...

    def get_model_instance(self, provider: str, model_type: ModelType | str) -> AIModel:
        """The model object of a type (``"llm"``, ``"text-embedding"``, ...) for a provider,
        typed per type (``"llm"`` or ``ModelType.LLM`` gives a :class:`LargeLanguageModel`)."""
        return self.get_provider(provider).get_model_instance(model_type)

    # -- factory (Dify's ModelProviderFactory) ----------------------------------------

    def get_provider_schema(self, provider: str) -> ProviderEntity:
        return self.get_provider(provider).get_provider_schema()

    def get_providers(self) -> list[ProviderEntity]:
        """Every provider's schema, in position order; a provider that does not load is left out
        (and recorded in :attr:`discovery_problems`)."""
        out = []
        for name in self.provider_names():
            try:
                out.append(self.get_provider_schema(name))
            except Exception as exc:  # noqa: BLE001 - a broken folder must not hide the others
                self._does_not_load(name, exc)
        return out

    def _does_not_load(self, name: str, exc: Exception) -> None:
        """Record a provider left out of a listing, once however often it is listed."""
        problem = LoadProblem(name, f"provider does not load: {type(exc).__name__}: {exc}")
        if problem not in self.discovery_problems:
            self.discovery_problems.append(problem)

    async def get_models(
        self, provider: str | None = None, model_type: ModelType | str | None = None
    ) -> list[SimpleProviderEntity]:
        """Providers with their predefined models, filtered by provider and/or model type."""
        kind = None if model_type is None else model_type_of(model_type)
        names = [provider] if provider else self.provider_names()
        out: list[SimpleProviderEntity] = []
        for name in names:
            try:
                schema = self.get_provider_schema(name)
                kinds = [kind] if kind else list(schema.supported_model_types)
                if kind and kind not in schema.supported_model_types:
                    continue
                models = []
                for k in kinds:
                    models.extend(await self.get_provider(name).models(k))
            except Exception as exc:
                if provider:
                    raise
                self._does_not_load(name, exc)
                continue
            simple = schema.to_simple_provider()
            simple.models = models
            out.append(simple)
        return out

    async def provider_credentials_validate(self, provider: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """Check the form, then the provider; return the filtered credentials."""
        instance = self.get_provider(provider)
        filtered = instance.validate_credential_form(credentials)
        await instance.validate_provider_credentials(filtered)
        return filtered

    async def model_credentials_validate(
        self, provider: str, model_type: ModelType | str, model: str, credentials: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Check the model form (``__model_type`` injected, then dropped), then the model."""
        kind = model_type_of(model_type)
        instance = self.get_provider(provider)
        form = instance.get_provider_schema().model_credential_schema
        if form is None:
            raise CredentialsValidateFailedError(f"Provider {provider} does not accept model credentials")
        values = dict(credentials)
        values["__model_type"] = kind.value
        filtered = validate_credential_form(form.credential_form_schemas, values)
        model_instance: AIModel = instance.get_model_instance(kind)
        await model_instance.validate_credentials(model, filtered)
        return filtered


def _has_block(source: ProviderSource) -> bool:
    """Whether the provider YAML has an ``arun:`` block (one that does not read says yes: its
    error surfaces when the schema loads, from the provider's own class)."""
    try:
        data = read_yaml(source.yaml_path)
    except SchemaError:
        return True
    return not isinstance(data, dict) or SPEC_KEY in data
