"""The Anthropic provider: credentials are validated with one tiny request to a cheap model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import ModelType
from arun.errors import CredentialsValidateFailedError
from arun.runtime.provider import ModelProvider

VALIDATE_MODEL = "claude-3-5-haiku-20241022"


class AnthropicProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Mapping[str, Any]) -> None:
        try:
            llm = self.get_model_instance(ModelType.LLM)
        except Exception as exc:
            raise CredentialsValidateFailedError(f"{type(exc).__name__}: {exc}") from exc
        await llm.validate_credentials(VALIDATE_MODEL, credentials)
