"""The ``arun:`` block of a provider YAML: how a provider speaks a known wire family.

Dify ignores unknown top-level keys, so the block rides along in a Dify-format provider
YAML and a folder with it needs no Python at all::

    arun:
      base_url: https://api.deepseek.com
      base_url_credential: endpoint_url        # a credential that overrides the default
      auth: {style: bearer, credential: api_key}
      model_types:
        llm:
          family: openai_chat
          quirks: [keepalive_comments]

Every key is checked when the provider loads (a typo, an unknown family or quirk, an auth
style whose credential the forms do not define, a model mapped to nothing): the error is a
:class:`~arun.errors.SchemaError` naming the file and the key, never a surprise at the
first call.  ``docs/PROVIDERS.md`` documents every key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from arun.entities.model import ModelType
from arun.errors import SchemaError

__all__ = [
    "AuthSpec",
    "ParamSpec",
    "ModelTypeSpec",
    "RemoteModelsSpec",
    "ProviderSpec",
    "parse_provider_spec",
    "SPEC_KEY",
]

SPEC_KEY = "arun"

AuthStyle = Literal["bearer", "header", "query", "none"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """Typos in our own block fail at load (the Dify part of the YAML stays tolerant)."""


class AuthSpec(_Strict, frozen=True):
    """How the key goes on the wire.

    ``bearer``: ``Authorization: Bearer <key>``; ``header``: ``<header>: <prefix><key>``
    (``api-key`` for Azure, ``x-api-key`` ...); ``query``: ``?<query>=<key>``; ``none``.
    ``optional``: send nothing when the credential is empty (local servers take no key).
    """

    style: AuthStyle = "bearer"
    credential: str | None = None
    header: str | None = None
    prefix: str = ""
    query: str | None = None
    optional: bool = False


class ParamSpec(_Strict, frozen=True):
    """Wire spelling of validated parameters: ``rename`` (``max_tokens: max_completion_tokens``),
    ``drop`` (never sent), ``set`` (fixed body fields), ``values`` (a parameter's value as the
    provider wants it: ``thinking: {"true": {type: enabled}, "false": {type: disabled}}``; keys are
    the value spelled as text, booleans lower-case)."""

    rename: dict[str, str] = {}
    drop: list[str] = []
    set: dict[str, Any] = {}
    values: dict[str, dict[str, Any]] = {}

    def merged(self, other: ParamSpec | None) -> ParamSpec:
        if other is None:
            return self
        return ParamSpec(
            rename={**self.rename, **other.rename},
            drop=[*self.drop, *(d for d in other.drop if d not in self.drop)],
            set={**self.set, **other.set},
            values={**self.values, **other.values},
        )


class ModelTypeSpec(_Strict, frozen=True):
    """One model type of the provider: its family and what differs from the family's defaults.

    ``models`` maps model ids (``fnmatch`` patterns, first match wins) to parameter
    overrides for those models, e.g. ``deepseek-reasoner: {drop: [temperature]}``.
    ``options`` are the family's own settings (``encoding_format``, a rerank ``shape`` ...).
    """

    family: str
    path: str | None = None
    base_url: str | None = None
    parameters: ParamSpec = ParamSpec()
    models: dict[str, ParamSpec] = {}
    quirks: list[str] = []
    options: dict[str, Any] = {}
    #: Customizable models: ``schema: credentials`` lets the family build a user-added model's
    #: schema from its credential form; ``base_model_credential`` copies the predefined model a
    #: credential names instead (Azure's ``base_model_name``).
    schema: Literal["credentials"] | None = None
    base_model_credential: str | None = None
    base_model_provider: str | None = None

    def parameters_for(self, model: str) -> ParamSpec:
        from fnmatch import fnmatchcase

        for pattern, spec in self.models.items():
            if fnmatchcase(model, pattern):
                return self.parameters.merged(spec)
        return self.parameters


class RemoteModelsSpec(_Strict, frozen=True):
    """``fetch-from-remote``: list the account's models (``GET <base><path>``, OpenAI's
    ``{"data": [{"id": ...}]}``) and offer each with the schema of the predefined model whose id
    is its longest prefix (``base_pattern`` extracts the base id first: ``ft:(?P<base>[^:]+):``)."""

    path: str = "/models"
    model_type: str = "llm"
    base_pattern: str | None = None


class ProviderSpec(_Strict, frozen=True):
    base_url: str | None = None
    base_url_credential: str | None = None
    #: appended to a base URL that does not end with it (Dify stores ``openai_api_base`` without ``/v1``)
    base_url_suffix: str = ""
    #: removed from the end of a base URL (a pasted ``/api`` or ``/v1`` on Ollama's)
    base_url_strip: list[str] = []
    #: a select credential choosing among fixed base URLs (regions): ``{credential: region, options: {cn: ..., intl: ...}}``
    base_url_choices: dict[str, Any] = {}
    auth: AuthSpec = AuthSpec()
    headers: dict[str, str] = {}
    #: headers read from credentials when set: ``{OpenAI-Organization: openai_organization}``
    header_credentials: dict[str, str] = {}
    #: query parameters on every request: fixed values, or ``{param: {credential: name, default: value}}``
    query: dict[str, Any] = {}
    #: the upstream's model id: a credential that names it (deployments), or a fixed mapping
    model_name_credential: str | None = None
    model_names: dict[str, str] = {}
    quirks: list[str] = []
    #: the provider's error codes / types -> the Invoke class each means, whatever the HTTP status they
    #: arrive with (Zhipu's 1113 arrears as a 429, DashScope's Arrearage as a 400); read from an error's
    #: ``code``, ``error.code`` / ``error.type`` or a top-level ``code`` of its body
    error_codes: dict[str, str] = {}
    model_types: dict[str, ModelTypeSpec] = {}
    remote_models: RemoteModelsSpec | None = None
    #: the model that checks provider credentials (default: the first predefined model)
    validate_model: str | None = None
    #: the simulator profile that speaks this provider's quirks (tests and the demo)
    simulator: str | None = None

    def for_type(self, kind: ModelType) -> ModelTypeSpec | None:
        return self.model_types.get(kind.value)


def _fail(path: Path, key: str, message: str) -> SchemaError:
    return SchemaError(f"{path}: {SPEC_KEY}.{key}: {message}", file=str(path), key=f"{SPEC_KEY}.{key}")


def parse_provider_spec(
    data: Any,
    path: Path,
    *,
    credential_variables: Iterable[str],
    supported: Iterable[ModelType],
    families: Mapping[str, Mapping[ModelType, Any]],
    quirks: Mapping[str, frozenset[str]],
) -> ProviderSpec:
    """Validate the block of ``path`` against the provider's forms and the known families.

    ``families`` maps a family name to the model types it serves; ``quirks`` maps a family
    name to the quirk names it understands (provider-level quirks must be known to every
    family the provider uses).
    """
    if not isinstance(data, dict):
        raise _fail(path, "", "expected a mapping")
    types = data.get("model_types")
    if isinstance(types, dict):
        for name in list(types):
            try:
                canonical = ModelType.value_of(name).value
            except ValueError:
                raise _fail(path, f"model_types.{name}", "unknown model type") from None
            if canonical != name:
                types[canonical] = types.pop(name)
    try:
        spec = msgspec.convert(data, ProviderSpec, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        key = text.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in text else ""
        raise _fail(path, key, text) from None
    variables = set(credential_variables)
    supported_types = set(supported)

    def need_credential(name: str | None, key: str) -> None:
        if name is not None and name not in variables:
            raise _fail(path, key, f"credential {name!r} is not a variable of the provider's or model's credential form")

    auth = spec.auth
    if auth.style != "none":
        if auth.credential is None:
            raise _fail(path, "auth.credential", f"auth style {auth.style!r} needs the credential that holds the key")
        need_credential(auth.credential, "auth.credential")
    if auth.style == "header" and not auth.header:
        raise _fail(path, "auth.header", "auth style 'header' needs the header name")
    if auth.style == "query" and not auth.query:
        raise _fail(path, "auth.query", "auth style 'query' needs the query parameter name")
    need_credential(spec.base_url_credential, "base_url_credential")
    need_credential(spec.model_name_credential, "model_name_credential")
    if spec.base_url_choices:
        need_credential(spec.base_url_choices.get("credential"), "base_url_choices.credential")
        options = spec.base_url_choices.get("options")
        if not isinstance(options, dict) or not options:
            raise _fail(path, "base_url_choices.options", "expected a mapping of choice -> base URL")
    from arun.protocols.errors import ERROR_CLASSES

    for code, name in spec.error_codes.items():
        if name not in ERROR_CLASSES:
            raise _fail(path, f"error_codes.{code}", f"unknown class {name!r} (known: {', '.join(sorted(ERROR_CLASSES))})")
    for header, name in spec.header_credentials.items():
        need_credential(name, f"header_credentials.{header}")
    for param, value in spec.query.items():
        if isinstance(value, dict):
            need_credential(value.get("credential"), f"query.{param}.credential")
    for model, wire in spec.model_names.items():
        if not isinstance(wire, str) or not wire.strip():
            raise _fail(path, f"model_names.{model}", "maps the model to nothing")
    for base in (spec.base_url, *(t.base_url for t in spec.model_types.values())):
        if base is not None and not base.startswith(("http://", "https://")):
            raise _fail(path, "base_url", f"{base!r} is not an http(s) URL")
    for name, mt in spec.model_types.items():
        kind = ModelType.value_of(name)
        if kind not in supported_types:
            raise _fail(path, f"model_types.{name}", "the provider does not list this type in supported_model_types")
        served = families.get(mt.family)
        if served is None:
            known = ", ".join(sorted(families))
            raise _fail(path, f"model_types.{name}.family", f"unknown family {mt.family!r} (known: {known})")
        if kind not in served:
            raise _fail(path, f"model_types.{name}.family", f"family {mt.family!r} does not serve {name}")
        allowed = quirks.get(mt.family, frozenset())
        for quirk in (*mt.quirks, *spec.quirks):
            if quirk not in allowed:
                raise _fail(path, f"model_types.{name}.quirks", f"family {mt.family!r} knows no quirk {quirk!r} (known: {', '.join(sorted(allowed)) or 'none'})")
        need_credential(mt.base_model_credential, f"model_types.{name}.base_model_credential")
        if mt.base_url is None and spec.base_url is None and spec.base_url_credential is None and not spec.base_url_choices:
            raise _fail(path, f"model_types.{name}", "no base URL: set base_url, base_url_credential or base_url_choices")
    if spec.remote_models is not None:
        try:
            ModelType.value_of(spec.remote_models.model_type)
        except ValueError:
            raise _fail(path, "remote_models.model_type", "unknown model type") from None
    return spec
