"""LocalAI chat models: Dify's ``completion_type`` credential chooses the mode.

Everything on the wire is the ``openai_chat`` family's (``{server_url}/v1/chat/completions``, or
``/v1/completions`` for a completion model).  What differs is the form: Dify's LocalAI provider
names the mode ``completion_type`` (``chat_completion`` | ``completion``), where the
OpenAI-compatible schema reads ``mode``; and its defaults when a field is empty are a context
of 2048 tokens and at most 2048 new tokens (Dify's LocalAI schema).  The rest of the schema is
the OpenAI-compatible one (tool calling and vision from the form).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import AIModelEntity
from arun.errors import CredentialsValidateFailedError
from arun.families.helpers import cred_text
from arun.families.openai_chat import OpenAIChatLLM, build_openai_compatible_llm_schema

__all__ = ["LocalAILLM"]

MODES = {"chat_completion": "chat", "completion": "completion"}
DEFAULTS = {"context_size": "2048", "max_tokens_to_sample": "2048"}


class LocalAILLM(OpenAIChatLLM):
    async def get_customizable_model_schema(self, model: str, credentials: Mapping[str, Any]) -> AIModelEntity | None:
        kind = cred_text(credentials, "completion_type") or "chat_completion"
        if kind not in MODES:
            raise CredentialsValidateFailedError(
                f"Variable completion_type should be one of {sorted(MODES)}, got {kind!r}"
            )
        form: dict[str, Any] = {**credentials, "mode": MODES[kind]}
        for name, value in DEFAULTS.items():
            if cred_text(credentials, name) is None:
                form[name] = value
        return build_openai_compatible_llm_schema(model, form)
