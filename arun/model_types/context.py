"""What a model object is given when it is built: nothing reaches up into the runtime.

A model object gets its HTTP client, its schemas and (for a provider on a known wire
family) the resolved ``arun:`` block of its provider — the :class:`~arun.families.Endpoint`
that knows URLs, auth and parameter spelling — from the :class:`ModelContext` its provider
builds for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from arun.entities.model import AIModelEntity, ModelType

if TYPE_CHECKING:
    from arun.families.endpoint import Endpoint
    from arun.schema.spec import ModelTypeSpec, ProviderSpec
    from arun.wire.client import HttpClient

__all__ = ["ModelContext", "SchemaLookup"]

#: ``(provider, model_type, model) -> predefined schema or None``: another provider's models
#: (a customizable Azure deployment takes the schema of the OpenAI model it serves).
SchemaLookup = Callable[[str, ModelType, str], "AIModelEntity | None"]


@dataclass(frozen=True)
class ModelContext:
    provider: str
    model_type: ModelType
    http: HttpClient
    #: the provider's predefined models of this type, loaded on first use
    predefined: Callable[[], list[AIModelEntity]]
    spec: ProviderSpec | None = None
    type_spec: ModelTypeSpec | None = None
    endpoint: Endpoint | None = None
    #: the provider takes user-added models (``customizable-model``)
    customizable: bool = False
    #: credential fields the provider's forms mark ``secret-input`` (provider and model level)
    secret_fields: frozenset[str] = frozenset()
    lookup: SchemaLookup | None = field(default=None, repr=False)
