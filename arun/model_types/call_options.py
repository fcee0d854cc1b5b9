"""Per-call extras: request headers and body fields for one call, as the OpenAI SDK's
``extra_headers`` / ``extra_body`` allow (OpenRouter's attribution headers, tracing headers,
a provider's own body fields).

The model types validate them and set them for the duration of the provider call; a family
adapter reads :func:`current_extras` while it builds the request (headers that carry the
credentials are refused there, by the one object that knows which they are).  Providers
with their own ``_invoke`` keep Dify's signature: extras never change it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from arun.errors import ParameterValidationError

__all__ = ["CallExtras", "current_extras", "check_extras", "use_extras"]

#: body fields an extra may not set: the runtime reads the answer according to them
_RESERVED_BODY = frozenset({"stream"})


@dataclass(frozen=True, slots=True)
class CallExtras:
    headers: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    #: stream tool-call argument deltas as :class:`~arun.entities.messages.ToolCallDelta` fragments
    #: by index as they arrive (default: Dify's assembled calls on the final chunk)
    incremental_tool_calls: bool = False


_CURRENT: ContextVar[CallExtras | None] = ContextVar("arun_call_extras", default=None)


#: the caller's extras of the call being built, or None (the context variable's own ``get``: no Python frame)
current_extras: Callable[[], CallExtras | None] = _CURRENT.get


def check_extras(extra_headers: Any, extra_body: Any, incremental_tool_calls: bool = False) -> CallExtras | None:
    """Validate the caller's extras (None when there are none)."""
    if extra_headers is None and extra_body is None and not incremental_tool_calls:
        return None
    headers_ok = extra_headers is None or (
        isinstance(extra_headers, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in extra_headers.items())
    )
    if not headers_ok:
        raise ParameterValidationError("extra_headers should map header names to strings", parameter="extra_headers")
    if extra_body is not None:
        if not isinstance(extra_body, Mapping) or not all(isinstance(k, str) for k in extra_body):
            raise ParameterValidationError("extra_body should be a mapping of body fields", parameter="extra_body")
        reserved = _RESERVED_BODY.intersection(extra_body)
        if reserved:
            raise ParameterValidationError(
                f"extra_body must not set {sorted(reserved)[0]!r}: use the invoke argument", parameter="extra_body"
            )
    return CallExtras(
        dict(extra_headers) if extra_headers else None, dict(extra_body) if extra_body else None, bool(incremental_tool_calls)
    )


class _Using:
    """Sets the extras for the duration of a ``with`` block (a plain object: no generator per call)."""

    __slots__ = ("_extras", "_token")

    def __init__(self, extras: CallExtras) -> None:
        self._extras = extras

    def __enter__(self) -> None:
        self._token = _CURRENT.set(self._extras)

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.reset(self._token)


_NO_EXTRAS: AbstractContextManager[None] = nullcontext()


def use_extras(extras: CallExtras | None) -> AbstractContextManager[None]:
    """``with use_extras(extras):`` the provider call sees them through :func:`current_extras`;
    without extras, a shared context that does nothing."""
    return _NO_EXTRAS if extras is None else _Using(extras)
