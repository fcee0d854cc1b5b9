"""LLM invocation callbacks (Dify's hooks; each may be a plain method or a coroutine).

A callback's own exception is re-raised only when its ``raise_error`` is True;
otherwise it is logged (redacted) and the invocation goes on.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from arun.redact import redact

__all__ = ["Callback", "fire"]

logger = logging.getLogger("arun.callbacks")


class Callback:
    """Override any of the hooks. Keyword arguments: llm_instance, model, credentials,
    prompt_messages, model_parameters, tools, stop, stream, user, plus chunk/result/ex."""

    raise_error: bool = False

    def on_before_invoke(self, **kwargs: Any) -> Any:
        return None

    def on_new_chunk(self, **kwargs: Any) -> Any:
        return None

    def on_after_invoke(self, **kwargs: Any) -> Any:
        return None

    def on_invoke_error(self, **kwargs: Any) -> Any:
        return None


async def fire(callbacks: list[Callback], hook: str, **kwargs: Any) -> None:
    for callback in callbacks:
        try:
            result = getattr(callback, hook)(**kwargs)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            if callback.raise_error:
                raise
            logger.warning("callback %s.%s failed: %s", type(callback).__name__, hook, redact(repr(exc)))
