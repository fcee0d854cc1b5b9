"""Zhipu checks provider credentials with the model its ``validate_model`` credential names (the
form's default, else the block's ``validate_model``), as its Dify form promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import ModelType
from arun.runtime.provider import ModelProvider


class ZhipuAIProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Mapping[str, Any]) -> None:
        model = credentials.get("validate_model")
        if isinstance(model, str) and model.strip():
            await self.get_model_instance(ModelType.LLM).validate_credentials(model.strip(), credentials)
            return
        await super().validate_provider_credentials(credentials)
