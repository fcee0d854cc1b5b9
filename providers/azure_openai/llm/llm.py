"""Azure OpenAI chat: the openai_chat family, with per-model parameter rules keyed by the base model.

A deployment's name is the user's choice ("prod-reasoner"), so the block's ``models:`` patterns
(``o3*: {rename: {max_tokens: max_completion_tokens}}``) are matched against the OpenAI model
the deployment serves (its ``base_model_name`` credential), not against the deployment name.
Everything else — URL, ``api-key`` header, ``api-version`` query, the wire format — is the family's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from arun.entities.llm import LLMResult, LLMResultChunk
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.families.openai_chat import OpenAIChatLLM


class AzureOpenAILLM(OpenAIChatLLM):
    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None,
        stop: list[str] | None,
        stream: bool,
        user: str | None,
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        base = credentials.get(self.type_spec.base_model_credential or "")
        if isinstance(base, str) and base and base != model:
            model_parameters = self.endpoint.wire_parameters(base, dict(model_parameters))
        return await super()._invoke(model, credentials, prompt_messages, model_parameters, tools, stop, stream, user)
