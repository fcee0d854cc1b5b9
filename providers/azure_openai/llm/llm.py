"""Azure OpenAI chat: the openai_chat family, with per-model parameter rules keyed by the base model.

A deployment's name is the user's choice ("prod-reasoner"), so the block's ``models:`` patterns
(``o3*: {rename: {max_tokens: max_completion_tokens}}``) are matched against the OpenAI model
the deployment serves (its ``base_model_name`` credential), not against the deployment name.
Everything else — URL, ``api-key`` header, ``api-version`` query, the wire format — is the family's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.families.openai_chat import OpenAIChatLLM


class AzureOpenAILLM(OpenAIChatLLM):
    def rules_model(self, model: str, credentials: Mapping[str, Any]) -> str:
        base = credentials.get(self.type_spec.base_model_credential or "")
        return base if isinstance(base, str) and base else model
