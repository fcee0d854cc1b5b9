"""OpenAI chat models: the OpenAI family plus ``ft:`` models, o-series parameters and native JSON modes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from arun.entities.model import AIModelEntity
from arun.errors import ParameterValidationError
from arun.protocols.openai_llm import OpenAIFamilyLLM
from arun.providers.openai._common import auth_headers, base_url

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAILargeLanguageModel(OpenAIFamilyLLM):
    def endpoint(self, credentials: Mapping[str, Any], path: str) -> str:
        return base_url(credentials) + path

    def headers(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        return auth_headers(credentials)

    def wire_parameters(self, model: str, parameters: dict[str, Any]) -> dict[str, Any]:
        base = _base_model(model)
        if base.startswith(_REASONING_PREFIXES) and "max_tokens" in parameters:
            parameters["max_completion_tokens"] = parameters.pop("max_tokens")
        schema_text = parameters.pop("json_schema", None)
        fmt = parameters.pop("response_format", None)
        if fmt == "json_schema":
            if not schema_text:
                raise ParameterValidationError(
                    "Model Parameter json_schema is required when response_format is json_schema.",
                    parameter="json_schema",
                    rule="required",
                )
            try:
                schema = msgspec.json.decode(schema_text)
            except msgspec.DecodeError as exc:
                raise ParameterValidationError(
                    f"Model Parameter json_schema should be valid JSON: {exc}", parameter="json_schema", rule="type"
                ) from None
            parameters["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt in ("json_object", "text"):
            parameters["response_format"] = {"type": fmt}
        return parameters

    async def get_model_schema(
        self, model: str, credentials: Mapping[str, Any] | None = None
    ) -> AIModelEntity | None:
        schema = self._predefined().get(model)
        if schema is None and model.startswith("ft:"):
            base_name = _base_model(model)
            known = [name for name in self._predefined() if base_name.startswith(name)]
            base = self._predefined()[max(known, key=len)] if known else None
            if base is not None:
                schema = msgspec.structs.replace(base, model=model)
                self._predefined()[model] = schema
        if schema is not None:
            return schema
        return await super().get_model_schema(model, credentials)


def _base_model(model: str) -> str:
    """``ft:gpt-4o-mini-2024-07-18:org::id`` -> ``gpt-4o-mini-2024-07-18`` (dated names keep their base)."""
    if model.startswith("ft:"):
        model = model.split(":")[1]
    return model
