"""The OpenAI provider: credentials are validated with one tiny ``gpt-4o-mini`` completion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import ModelType
from arun.runtime.provider import ModelProvider


class OpenAIProvider(ModelProvider):
    async def validate_provider_credentials(self, credentials: Mapping[str, Any]) -> None:
        """Raise CredentialsValidateFailedError when the key (and base/organization) does not work."""
        llm = self.get_model_instance(ModelType.LLM)
        await llm.validate_credentials("gpt-4o-mini", credentials)
