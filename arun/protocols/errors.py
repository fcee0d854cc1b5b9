"""HTTP status -> Invoke error class, and rate-limit header parsing, shared by every family.

Pure functions over response headers: :func:`parse_retry_after` (``retry-after-ms``,
``retry-after``) and :func:`parse_rate_limit_headers` (``x-ratelimit-*``,
``anthropic-ratelimit-*`` and retry-after, read by the limiter in
:mod:`arun.policy.limits`).
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import msgspec

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

__all__ = [
    "parse_retry_after",
    "parse_duration",
    "parse_rate_limit_headers",
    "RateLimitHeaders",
    "class_for_status",
    "build_error",
    "refine",
    "ERROR_CLASSES",
    "error_codes_of",
    "reclass",
]


def parse_retry_after(headers: Mapping[str, str], now_wall: float | None = None) -> float | None:
    """``retry-after-ms`` first, then ``retry-after`` in seconds or as an HTTP date.

    ``now_wall`` (``time.time()`` unless given) is the moment an HTTP date is measured from.
    """
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
    return max(0.0, when.timestamp() - (time.time() if now_wall is None else now_wall))


# --------------------------------------------------------------------------------------
# Rate-limit headers
# --------------------------------------------------------------------------------------
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?(?:ms|us|µs|ns|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|us|µs|ns|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_FRACTION = re.compile(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$")


def parse_duration(value: str | None) -> float | None:
    """OpenAI reset durations (``12ms``, ``6m0s``, ``1h2m3.5s``) or plain seconds."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    if not _DURATION.fullmatch(value):
        return None
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value))


def _seconds_until_rfc3339(value: str | None, now_wall: float) -> float | None:
    """Seconds from ``now_wall`` until an RFC 3339 timestamp (Anthropic resets); durations pass through."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = _FRACTION.match(text)
    if m and m.group(2) and len(m.group(2)) > 7:  # fromisoformat takes at most 6 fraction digits
        text = m.group(1) + m.group(2)[:7] + m.group(3)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return parse_duration(value)
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_wall)


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """What one response's rate-limit headers say."""

    #: Provider limits (per minute) when advertised.
    limit_requests: int | None = None
    limit_tokens: int | None = None
    #: Seconds to block the key for (0 = no block) and why.
    block_for: float = 0.0
    reason: str | None = None

    @property
    def empty(self) -> bool:
        """Nothing to learn: no block and no advertised limit."""
        return self.block_for <= 0 and self.limit_requests is None and self.limit_tokens is None


_NOTHING = RateLimitHeaders()


def parse_rate_limit_headers(headers: Mapping[str, str] | None, now_wall: float | None = None) -> RateLimitHeaders:
    """Read ``x-ratelimit-*`` (OpenAI family), ``anthropic-ratelimit-*`` and ``retry-after(-ms)``.

    A key is blocked until the reset when a ``remaining`` count is 0, and
    until ``retry-after``; the longest wins.  Anthropic's input/output token
    limits only block (they are not the combined TPM a limiter reserves).
    ``now_wall`` (``time.time()`` unless given) is what dates are measured from.
    """
    if not headers:
        return _NOTHING
    if isinstance(headers, dict):
        h: Mapping[str, str] = {k.lower(): v for k, v in headers.items()}
    else:
        h = headers  # httpx / aiohttp / multidict headers are case-insensitive already
    get = h.get
    wall = time.time() if now_wall is None else now_wall
    block = 0.0
    reason: str | None = None
    ra = parse_retry_after(h, wall)
    if ra is not None and ra > 0:
        block, reason = ra, "retry-after"
    for kind in ("requests", "tokens"):
        if _count(get(f"x-ratelimit-remaining-{kind}")) == 0:
            secs = parse_duration(get(f"x-ratelimit-reset-{kind}"))
            if secs is not None and secs > block:
                block, reason = secs, f"x-ratelimit-remaining-{kind}=0"
    limit_requests = _count(get("x-ratelimit-limit-requests"))
    limit_tokens = _count(get("x-ratelimit-limit-tokens"))
    if get("anthropic-ratelimit-requests-limit") is not None or get("anthropic-ratelimit-tokens-remaining") is not None:
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            if _count(get(f"anthropic-ratelimit-{kind}-remaining")) == 0:
                secs = _seconds_until_rfc3339(get(f"anthropic-ratelimit-{kind}-reset"), wall)
                if secs is not None and secs > block:
                    block, reason = secs, f"anthropic-ratelimit-{kind}-remaining=0"
        limit_requests = limit_requests or _count(get("anthropic-ratelimit-requests-limit"))
        limit_tokens = limit_tokens or _count(get("anthropic-ratelimit-tokens-limit"))
    if limit_requests is not None and limit_requests < 1:
        limit_requests = None
    if limit_tokens is not None and limit_tokens < 1:
        limit_tokens = None
    if block <= 0 and limit_requests is None and limit_tokens is None:
        return _NOTHING
    return RateLimitHeaders(limit_requests, limit_tokens, block, reason)


def class_for_status(status: int) -> type[InvokeError]:
    if status == 402:  # payment required: the balance is used up (DeepSeek, Jina)
        return InvokeQuotaExhaustedError
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


_CONTEXT_MARKERS = (
    "context_length_exceeded", "maximum context length", "prompt is too long", "context window",
    "range of input length",  # DashScope: "Range of input length should be [1, N]"
    "input token length too long", "exceeded model token limit",  # Moonshot (platform.kimi.ai/docs/api/errors)
)  # fmt: skip
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


# --------------------------------------------------------------------------------------
# Provider error codes (``error_codes`` in a provider's arun: block)
# --------------------------------------------------------------------------------------
#: the classes an ``error_codes`` table may name
ERROR_CLASSES: dict[str, type[InvokeError]] = {
    cls.__name__: cls
    for cls in (
        InvokeAuthorizationError,
        InvokePermissionDeniedError,
        InvokeOverloadedError,
        InvokeBadRequestError,
        InvokeConnectionError,
        InvokeContentFilteredError,
        InvokeContextLengthExceededError,
        InvokeModelNotFoundError,
        InvokeQuotaExhaustedError,
        InvokeRateLimitError,
        InvokeServerUnavailableError,
        InvokeTimeoutError,
    )
}


def _text_of(value: object) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def error_codes_of(body: bytes | None) -> tuple[list[str], str | None]:
    """The codes an error body names, most specific first, and its message.

    Reads ``{"error": {"code", "type", "message"}}`` (OpenAI's shape, used by Volcengine Ark and
    DashScope's compatible mode) and a top-level ``{"code", "message"}`` (DashScope's native API).
    """
    if not body:
        return [], None
    try:
        data = msgspec.json.decode(body.strip())
    except msgspec.DecodeError:
        return [], None
    if not isinstance(data, dict):
        return [], None
    inner = data.get("error")
    source = inner if isinstance(inner, dict) else data
    codes = [c for c in (_text_of(source.get("code")), _text_of(source.get("type"))) if c]
    return codes, _text_of(source.get("message"))


def reclass(error: InvokeError, cls: type[InvokeError]) -> InvokeError:
    """``error`` as ``cls`` (a provider's error-code table says what its code means), every field kept;
    the message names the code."""
    if type(error) is cls:
        return error
    message = error.description or ""
    for head in (f"[{error.provider}] Incorrect model credentials provided, please check and try again. (",
                 f"[{error.provider}] {type(error).description}, "):  # fmt: skip
        if message.startswith(head):
            message = message[len(head):].removesuffix(")") if head.endswith("(") else message[len(head):]
            break
    if error.status is not None:
        message = message.removeprefix(f"{error.status}: ")
    if error.code and error.code not in message:
        message = f"{error.code}: {message}"
    out = build_error(cls, error.provider or "", error.status, message, error.headers or {}, None, code=error.code)
    out.body, out.model, out.request_id = error.body, error.model, error.request_id
    if error.retry_after is not None:
        out.retry_after = error.retry_after
    out.__cause__ = error.__cause__
    return out
