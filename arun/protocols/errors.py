"""HTTP status -> Invoke error class, and Retry-After parsing, shared by every family."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping

from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeModelNotFoundError,
    InvokeOverloadedError,
    InvokePermissionDeniedError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)

__all__ = ["parse_retry_after", "class_for_status", "build_error", "refine"]


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` first, then ``retry-after`` in seconds or as an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def class_for_status(status: int) -> type[InvokeError]:
    if status == 401:
        return InvokeAuthorizationError
    if status == 403:
        return InvokePermissionDeniedError
    if status == 404:
        return InvokeModelNotFoundError
    if status == 408:
        return InvokeTimeoutError
    if status == 429:
        return InvokeRateLimitError
    if status == 529:
        return InvokeOverloadedError
    if status == 409 or status >= 500:
        return InvokeServerUnavailableError
    if status >= 400 or status < 200:
        return InvokeBadRequestError
    return InvokeConnectionError


_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "prompt is too long", "context window")
#: Context-length wording without a fixed phrase: "Input text exceeds the maximum of 8192 tokens" (Jina),
#: "exceeds the model's maximum context length (8192 tokens)", "exceeds the limit of 512 tokens",
#: "Prompt exceeds max length" (Zhipu), "input is too long", "too many input tokens".
_CONTEXT_WORDING = re.compile(
    r"exceed\w*\s+(?:the\s+)?(?:model'?s\s+)?(?:max(?:imum)?|limit)\b[^.;\n]{0,40}?\btokens?\b"
    r"|exceed\w*\s+(?:the\s+)?(?:model'?s\s+)?max(?:imum)?\s+(?:(?:context|input|prompt|sequence)\s+)?length"
    r"|\b(?:input|prompt|text|sequence)\s+(?:is\s+)?too\s+long"
    r"|too\s+many\s+(?:input\s+|prompt\s+)?tokens"
)
#: Provider error codes that mean the input is too long (compared whole, not as substrings).
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "1261"})
_FILTER_MARKERS = ("content_filter", "content_policy", "responsibleaipolicyviolation")
_QUOTA_MARKERS = ("insufficient_quota", "billing_hard_limit", "quota exceeded", "exceeded your current quota")
_PERMISSION_CODES = frozenset({"permission_error", "permission_denied", "forbidden"})
_OVERLOADED_CODES = frozenset({"overloaded_error", "overloaded"})


def refine(cls: type[InvokeError], *hints: str | None, codes: Iterable[str | None] = ()) -> type[InvokeError]:
    """Refine a class by the error code/type/message (``hints``): context length, content filter,
    quota; and by the provider's error ``codes`` alone (never its prose): overloaded for a 5xx,
    permission denied for an auth error."""
    words = [h.strip().lower() for h in hints if h]
    text = " ".join(words)
    code_words = {c.strip().lower() for c in codes if c}
    if issubclass(cls, InvokeBadRequestError) or cls is InvokeError:
        if any(m in text for m in _CONTEXT_MARKERS) or _CONTEXT_CODES.intersection(words) or _CONTEXT_WORDING.search(text):
            return InvokeContextLengthExceededError
        if any(m in text for m in _FILTER_MARKERS):
            return InvokeContentFilteredError
    if issubclass(cls, InvokeRateLimitError) and any(m in text for m in _QUOTA_MARKERS):
        return InvokeQuotaExhaustedError
    if cls is InvokeServerUnavailableError and _OVERLOADED_CODES.intersection(code_words):
        return InvokeOverloadedError
    if cls is InvokeAuthorizationError and _PERMISSION_CODES.intersection(code_words):
        return InvokePermissionDeniedError
    return cls


def build_error(
    cls: type[InvokeError],
    provider: str,
    status: int | None,
    message: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    request_id_header: str = "x-request-id",
    code: str | int | None = None,
) -> InvokeError:
    """The Invoke error of a failed call; ``code`` is the provider's error code or type, kept as ``.code``."""
    headers = headers or {}
    where = f"{status}: " if status else ""
    if issubclass(cls, InvokeAuthorizationError) and not issubclass(cls, InvokePermissionDeniedError):
        text = f"[{provider}] Incorrect model credentials provided, please check and try again. ({where}{message})"
    else:
        text = f"[{provider}] {cls.description}, {where}{message}"
    error = cls(
        text,
        provider=provider,
        status=status,
        request_id=headers.get(request_id_header) or headers.get("request-id") or headers.get("x-request-id"),
        retry_after=parse_retry_after(headers),
        body=body[:2000].decode("utf-8", "replace") if body else None,
        code=None if code is None or code == "" else str(code),
    )
    if headers:
        error.headers = headers  # rate-limit and x-should-retry hints for the policy layer
    return error
