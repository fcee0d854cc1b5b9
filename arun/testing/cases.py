"""Test cases derived from the discovered providers: every provider x every model type it declares.

:func:`provider_cases` reads each provider's forms and ``arun:`` block and says how to call
it against the simulator: which model (its first predefined model, or a user-added one for
customizable providers), which credentials (the key field filled with a valid key, the
base-URL credential pointed at the simulator's profile, required form fields from their
defaults or first options), and which simulator profile speaks its quirks.  The conformance
suite is parametrised from this, so a new provider is tested the day its folder is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from arun.entities.model import ModelType
from arun.entities.provider import ConfigurateMethod, CredentialFormSchema, FormType
from arun.runtime.model_runtime import ModelRuntime
from arun.testing.profiles import get_profile

__all__ = ["ProviderCase", "provider_cases", "VALID_KEY", "INVALID_KEY"]

VALID_KEY = "sk-conformance-0123456789abcdef"
INVALID_KEY = "invalid-conformance-key"

#: values a customizable model's form gets in tests (what Dify's forms ask a user for)
_MODEL_FORM = {
    "context_size": "8192",
    "max_tokens_to_sample": "1024",
    "max_tokens": "1024",
    "max_chunks": "16",
    "mode": "chat",
    "function_calling_type": "tool_call",
    "function_call_support": "true",
    "stream_function_calling": "supported",
    "vision_support": "support",
}


@dataclass(frozen=True)
class ProviderCase:
    provider: str
    model_type: ModelType
    model: str
    customizable: bool
    profile: str
    key_field: str | None
    base_field: str | None
    default_base: str | None
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.model_type.value}"

    def base_url(self, sim_url: str) -> str:
        """The simulator URL that stands for the provider's base URL (its path kept)."""
        path = urlsplit(self.default_base).path if self.default_base else "/v1"
        return f"{sim_url}/p/{self.profile}{path}"

    def credentials(self, sim_url: str, *, key: str = VALID_KEY) -> dict[str, Any]:
        creds = dict(self.fixed)
        if self.key_field:
            creds[self.key_field] = key
        if self.base_field:
            creds[self.base_field] = self.base_url(sim_url)
        return creds

    def runtime_kwargs(self, sim_url: str) -> dict[str, Any]:
        """``ModelRuntime`` options for a provider whose base URL no credential overrides."""
        if self.base_field or not self.default_base:
            return {}
        return {"endpoint_overrides": {self.provider: f"{sim_url}/p/{self.profile}"}}


def _fill(form: list[CredentialFormSchema], model_type: ModelType, skip: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {"__model_type": model_type.value}
    for item in form:
        if item.variable in skip or item.variable.startswith("__"):
            continue
        if not all(values.get(c.variable) == c.value for c in item.show_on):
            continue
        if item.variable in _MODEL_FORM and (
            item.options is None or _MODEL_FORM[item.variable] in [o.value for o in item.options]
        ):
            values[item.variable] = _MODEL_FORM[item.variable]
        elif item.default:
            values[item.variable] = item.default
        elif item.required and item.options:
            values[item.variable] = item.options[0].value
        elif item.required and item.type is FormType.SECRET_INPUT:
            values[item.variable] = VALID_KEY
        elif item.required and item.type is FormType.TEXT_INPUT:
            values[item.variable] = "sim"
    values.pop("__model_type")
    return values


def provider_cases(runtime: ModelRuntime | None = None, model_types: Mapping[ModelType, bool] | None = None) -> list[ProviderCase]:
    """One case per (provider, model type) that can be called (every provider with a block)."""
    rt = runtime or ModelRuntime()
    cases: list[ProviderCase] = []
    for name in rt.provider_names():
        provider = rt.get_provider(name)
        schema = provider.get_provider_schema()
        spec = provider.spec
        if spec is None:
            continue
        customizable = ConfigurateMethod.CUSTOMIZABLE_MODEL in schema.configurate_methods
        predefined = ConfigurateMethod.PREDEFINED_MODEL in schema.configurate_methods
        profile = spec.simulator if spec.simulator and get_profile(spec.simulator) else "plain"
        key_field = spec.auth.credential if spec.auth.style != "none" else None
        skip = {f for f in (key_field, spec.base_url_credential) if f}
        for kind in schema.supported_model_types:
            if model_types is not None and kind not in model_types:
                continue
            type_spec = spec.for_type(kind)
            if type_spec is None:
                continue
            models = provider.load_models(kind) if predefined else []
            use_custom = not models
            if use_custom and not customizable:
                continue
            forms: list[CredentialFormSchema] = []
            if schema.provider_credential_schema and not use_custom:
                forms = schema.provider_credential_schema.credential_form_schemas
            elif schema.model_credential_schema and use_custom:
                forms = schema.model_credential_schema.credential_form_schemas
            elif schema.provider_credential_schema:
                forms = schema.provider_credential_schema.credential_form_schemas
            fixed = _fill(forms, kind, skip)
            simulated = get_profile(profile)
            if simulated is not None:
                fixed.update(simulated.form.get(kind.value, {}))
            if use_custom and type_spec.base_model_credential:
                fixed[type_spec.base_model_credential] = _base_model(rt, type_spec.base_model_provider or name, kind)
            cases.append(
                ProviderCase(
                    provider=name,
                    model_type=kind,
                    model="sim-model" if use_custom else models[0].model,
                    customizable=use_custom,
                    profile=profile,
                    key_field=key_field,
                    base_field=spec.base_url_credential,
                    default_base=type_spec.base_url or spec.base_url,
                    fixed=fixed,
                )
            )
    return cases


def _base_model(rt: ModelRuntime, provider: str, kind: ModelType) -> str:
    models = rt.get_provider(provider).load_models(kind)
    return models[0].model if models else "sim-model"
