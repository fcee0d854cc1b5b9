"""HTTP status -> Invoke error class, and Retry-After parsing, shared by every family."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeModelNotFoundError,
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
    if status == 402:  # payment required: the balance is used up (DeepSeek, Jina)
        return InvokeQuotaExhaustedError
    if status in (401, 403):
        return InvokeAuthorizationError
    if status == 404:
        return InvokeModelNotFoundError
    if status == 408:
        return InvokeTimeoutError
    if status == 429:
        return InvokeRateLimitError
    if status == 409 or status >= 500:
        return InvokeServerUnavailableError
    if status >= 400 or status < 200:
        return InvokeBadRequestError
    return InvokeConnectionError


_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "prompt is too long", "context window")
_FILTER_MARKERS = ("content_filter", "content_policy", "responsibleaipolicyviolation")
_QUOTA_MARKERS = ("insufficient_quota", "billing_hard_limit", "quota exceeded", "exceeded your current quota")


def refine(cls: type[InvokeError], *hints: str | None) -> type[InvokeError]:
    """Refine a class by the error code/type/message: context length, content filter, quota."""
    text = " ".join(h for h in hints if h).lower()
    if issubclass(cls, InvokeBadRequestError) or cls is InvokeError:
        if any(m in text for m in _CONTEXT_MARKERS):
            return InvokeContextLengthExceededError
        if any(m in text for m in _FILTER_MARKERS):
            return InvokeContentFilteredError
    if issubclass(cls, InvokeRateLimitError) and any(m in text for m in _QUOTA_MARKERS):
        return InvokeQuotaExhaustedError
    return cls


def build_error(
    cls: type[InvokeError],
    provider: str,
    status: int | None,
    message: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    request_id_header: str = "x-request-id",
) -> InvokeError:
    headers = headers or {}
    where = f"{status}: " if status else ""
    if issubclass(cls, InvokeAuthorizationError):
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
    )
    if headers:
        error.headers = headers  # rate-limit and x-should-retry hints for the policy layer
    return error
