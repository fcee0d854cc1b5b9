"""``ModelRuntime``: provider registry + factory, owner of the pooled HTTP client.

::

    async with ModelRuntime() as rt:
        llm = rt.get_model_instance("openai", "llm")
        result = await llm.invoke(model="gpt-4o-mini", credentials=..., prompt_messages=[...], stream=False)

Providers are discovered from the folders of ``arun.providers`` (without importing
their code) and ordered by ``_position.yaml``; ``ARUN_PROVIDER_PINS``,
``ARUN_PROVIDER_INCLUDES`` and ``ARUN_PROVIDER_EXCLUDES`` (comma-separated)
reorder and filter them like Dify's ``POSITION_PROVIDER_*``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from arun.entities.model import ModelType
from arun.entities.provider import ProviderEntity, SimpleProviderEntity
from arun.errors import CredentialsValidateFailedError, ProviderNotFoundError
from arun.model_types.ai_model import AIModel
from arun.runtime.provider import PACKAGE, ModelProvider
from arun.schema.credentials import validate_credential_form
from arun.schema.loader import read_position, sort_by_position
from arun.wire.client import HttpClient, HttpConfig

__all__ = ["ModelRuntime", "discover_providers"]


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def discover_providers() -> dict[str, Path]:
    """Provider name -> folder, in position order, without importing provider code."""
    import arun.providers as package

    found: dict[str, Path] = {}
    roots: list[Path] = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        root = Path(getattr(info.module_finder, "path", ""))
        folder = root / info.name
        if info.name not in found and (folder / f"{info.name}.yaml").is_file():
            found[info.name] = folder
            if root not in roots:
                roots.append(root)
    position: list[str] = []
    for root in roots:
        position.extend(read_position(root))
    pins = _env_list("ARUN_PROVIDER_PINS")
    names = sort_by_position(list(found), pins + position, key=lambda n: n)
    includes, excludes = set(_env_list("ARUN_PROVIDER_INCLUDES")), set(_env_list("ARUN_PROVIDER_EXCLUDES"))
    names = [n for n in names if (not includes or n in includes) and n not in excludes]
    return {name: found[name] for name in names}


class ModelRuntime:
    """The entry point: ``async with ModelRuntime() as rt``. Owns every socket."""

    def __init__(self, *, http: HttpConfig | None = None) -> None:
        self.http = HttpClient(http)
        self._folders: dict[str, Path] | None = None
        self._providers: dict[str, ModelProvider] = {}

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

    def provider_names(self) -> list[str]:
        if self._folders is None:
            self._folders = discover_providers()
        return list(self._folders)

    def get_provider(self, name: str) -> ModelProvider:
        provider = self._providers.get(name)
        if provider is not None:
            return provider
        self.provider_names()
        assert self._folders is not None
        folder = self._folders.get(name) if isinstance(name, str) else None
        if folder is None:
            raise ProviderNotFoundError(f"Invalid provider: {name!r}")
        provider = self._provider_class(name)(self, name, folder)
        self._providers[name] = provider
        return provider

    def _provider_class(self, name: str) -> type[ModelProvider]:
        try:
            module = importlib.import_module(f"{PACKAGE}.{name}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{PACKAGE}.{name}.{name}":
                raise
            return ModelProvider
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, ModelProvider) and value.__module__ == module.__name__:
                return value
        return ModelProvider

    def get_model_instance(self, provider: str, model_type: ModelType | str) -> Any:
        """The model object of a type (``"llm"``, ``"text-embedding"``, ...) for a provider."""
        return self.get_provider(provider).get_model_instance(model_type)

    # -- factory (Dify's ModelProviderFactory) ----------------------------------------

    def get_provider_schema(self, provider: str) -> ProviderEntity:
        return self.get_provider(provider).get_provider_schema()

    def get_providers(self) -> list[ProviderEntity]:
        """Every provider's schema, in position order (fresh copies: nothing accumulates)."""
        return [self.get_provider_schema(name) for name in self.provider_names()]

    async def get_models(
        self, provider: str | None = None, model_type: ModelType | str | None = None
    ) -> list[SimpleProviderEntity]:
        """Providers with their predefined models, filtered by provider and/or model type."""
        kind = None
        if model_type is not None:
            kind = model_type if isinstance(model_type, ModelType) else _model_type(model_type)
        names = [provider] if provider else self.provider_names()
        out: list[SimpleProviderEntity] = []
        for name in names:
            schema = self.get_provider_schema(name)
            kinds = [kind] if kind else list(schema.supported_model_types)
            if kind and kind not in schema.supported_model_types:
                continue
            models = []
            for k in kinds:
                models.extend(await self.get_provider(name).models(k))
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
        kind = model_type if isinstance(model_type, ModelType) else _model_type(model_type)
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


def _model_type(value: str) -> ModelType:
    from arun.errors import ModelTypeNotSupportedError

    try:
        return ModelType.value_of(value)
    except ValueError:
        raise ModelTypeNotSupportedError(f"Unknown model type {value!r}") from None
