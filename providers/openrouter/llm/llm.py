"""OpenRouter chat: the openai_chat family, with OpenRouter's moderation refusals told apart.

OpenRouter answers 403 both for a key that may not use a model and for an input its moderation
flagged (openrouter.ai/docs/api-reference/errors: the flag carries ``error.metadata.reasons``
and ``flagged_input``).  The generic mapping makes every 403 an authorization error, which
would tell the policy layer the key is bad; a flagged input is a content-filter refusal instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from arun.errors import InvokeContentFilteredError, InvokeError
from arun.families.openai_chat import OpenAIChatLLM
from arun.protocols.errors import build_error
from arun.protocols.openai_chat import classify_error
from arun.wire.client import ErrorMapper

__all__ = ["OpenRouterLLM", "classify_openrouter_error"]


class _Metadata(msgspec.Struct):
    reasons: list[str] | None = None
    flagged_input: str | None = None


class _Error(msgspec.Struct):
    message: str | None = None
    metadata: _Metadata | None = None


class _Envelope(msgspec.Struct):
    error: _Error | None = None


_decode = msgspec.json.Decoder(_Envelope).decode


def classify_openrouter_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> InvokeError:
    if status == 403:
        try:
            error = _decode(body).error
        except msgspec.DecodeError:
            error = None
        meta = error.metadata if error is not None else None
        if error is not None and meta is not None and (meta.reasons or meta.flagged_input):
            reasons = ", ".join(meta.reasons or [])
            message = error.message or "input flagged by moderation"
            text = f"{message} (flagged for: {reasons})" if reasons else message
            return build_error(InvokeContentFilteredError, provider, status, text, headers, body)
    return classify_error(provider, status, headers, body)


class OpenRouterLLM(OpenAIChatLLM):
    def error_mapper(self, classify: Callable[..., InvokeError]) -> ErrorMapper:
        return super().error_mapper(classify_openrouter_error if classify is classify_error else classify)
