"""``FamilyModel``: what a family adapter reads from its provider's ``arun:`` block.

Mixed into each family's model class before the model type (``class OpenAIChatLLM(FamilyModel,
LargeLanguageModel)``).  Everything comes from the injected :class:`~arun.model_types.context.ModelContext`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from arun.entities.model import AIModelEntity, FetchFrom, ModelType
from arun.errors import CredentialsValidateFailedError, SchemaError

if TYPE_CHECKING:
    from arun.families.endpoint import Endpoint
    from arun.model_types.context import ModelContext
    from arun.schema.spec import ModelTypeSpec

__all__ = ["FamilyModel"]


class _RemoteModel(msgspec.Struct):
    id: str


class _ModelList(msgspec.Struct):
    data: list[_RemoteModel] = []


class FamilyModel:
    """The provider-facing side of a family adapter: endpoint, quirks, options."""

    family: ClassVar[str]
    context: ModelContext
    provider_name: str

    @cached_property
    def endpoint(self) -> Endpoint:  # cached: the context is fixed when the model object is built
        endpoint = self.context.endpoint
        if endpoint is None:
            raise SchemaError(
                f"provider {self.provider_name!r} uses {type(self).__name__} but its YAML has no "
                f"arun.model_types.{self.context.model_type.value} block (see docs/PROVIDERS.md)"
            )
        return endpoint

    @property
    def type_spec(self) -> ModelTypeSpec:
        return self.endpoint.type_spec

    @cached_property
    def quirks(self) -> frozenset[str]:
        """The quirks the provider's block names for this type (plus provider-wide ones)."""
        endpoint = self.context.endpoint
        if endpoint is None:
            return frozenset()
        return frozenset((*endpoint.type_spec.quirks, *endpoint.spec.quirks))

    @property
    def options(self) -> Mapping[str, Any]:
        endpoint = self.context.endpoint
        return endpoint.type_spec.options if endpoint is not None else {}

    @property
    def customizable(self) -> bool:
        return self.context.customizable

    @property
    def builds_schemas(self) -> bool:
        """Does the block ask the family to build user-added models' schemas from their credential
        form (``schema: credentials``)?  A provider that is customizable for other reasons
        (OpenAI's fine-tunes) does not accept any model name."""
        endpoint = self.context.endpoint
        return self.context.customizable and endpoint is not None and endpoint.type_spec.schema == "credentials"

    def _derived_schema(self, model: str) -> AIModelEntity | None:
        """A fine-tune of a predefined model: ``options.fine_tune_pattern`` extracts the base id
        (``ft:gpt-4o-mini-2024-07-18:org::id`` -> the longest predefined prefix)."""
        pattern = self.options.get("fine_tune_pattern")
        if not pattern:
            return None
        predefined: dict[str, AIModelEntity] = self._predefined()  # type: ignore[attr-defined]
        cache: dict[str, AIModelEntity] = self.__dict__.setdefault("_fine_tunes", {})
        if model in cache:
            return cache[model]
        match = re.match(str(pattern), model)
        if match is None:
            return None
        base = match.groupdict().get("base") or match.group(0)
        known = [name for name in predefined if base.startswith(name)]
        if not known:
            return None
        schema = msgspec.structs.replace(predefined[max(known, key=len)], model=model)
        if len(cache) > 1024:
            cache.clear()
        cache[model] = schema
        return schema

    async def remote_models(self, credentials: Mapping[str, Any]) -> list[AIModelEntity]:
        """fetch-from-remote: the account's models (``GET <base><remote_models.path>``, OpenAI's list
        shape), each with the schema of the predefined model it is or derives from (the longest
        predefined prefix of its base id); ids arun knows nothing about are left out."""
        endpoint = self.endpoint
        remote = endpoint.spec.remote_models
        if remote is None:
            return []
        from arun.protocols.openai_chat import classify_error

        http = self.context.http
        resp = await http.request(
            "GET",
            endpoint.url(credentials, None, remote.path),
            headers=endpoint.headers(credentials, content_type=None),
            error_mapper=self.error_mapper(classify_error),  # type: ignore[attr-defined]
        )
        try:
            listing = msgspec.json.decode(resp.body, type=_ModelList)
        except msgspec.DecodeError as exc:
            from arun.errors import InvokeServerUnavailableError

            raise InvokeServerUnavailableError(f"[{self.provider_name}] Server Unavailable Error, malformed model list: {exc}") from None
        predefined: dict[str, AIModelEntity] = self._predefined()  # type: ignore[attr-defined]
        pattern = re.compile(remote.base_pattern) if remote.base_pattern else None
        out = []
        for item in listing.data:
            base = item.id
            if pattern is not None and (match := pattern.match(item.id)) is not None:
                base = match.groupdict().get("base") or base
            known = [name for name in predefined if base.startswith(name)]
            if not known:
                continue
            schema = predefined[max(known, key=len)]
            out.append(msgspec.structs.replace(schema, model=item.id, fetch_from=FetchFrom.FETCH_FROM_REMOTE))
        return out

    def base_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        """A customizable model that serves a known model (Azure's ``base_model_name``): that model's
        schema, under the user's model name; None when the credential holds the type's
        ``options.custom_base_model`` (Volcengine's ``Custom``: the form describes the model)."""
        endpoint = self.context.endpoint
        name = endpoint.type_spec.base_model_credential if endpoint is not None else None
        if not name:
            return None
        base = credentials.get(name)
        if not isinstance(base, str) or not base:
            raise CredentialsValidateFailedError(f"Variable {name} is required")
        if base == self.options.get("custom_base_model"):
            return None  # the form's own choice: the schema comes from the credentials (schema: credentials)
        provider = endpoint.type_spec.base_model_provider if endpoint is not None else None
        kind: ModelType = self.context.model_type
        found = None
        if provider and self.context.lookup is not None:
            found = self.context.lookup(provider, kind, base)
        if found is None:
            found = next((m for m in self.context.predefined() if m.model == base), None)
        if found is None:
            raise CredentialsValidateFailedError(f"Variable {name}: {base!r} is not a known base model")
        return msgspec.structs.replace(found, model=model, fetch_from=FetchFrom.CUSTOMIZABLE_MODEL)
