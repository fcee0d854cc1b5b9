"""Every failure -> the OpenAI (or Anthropic) error body, the HTTP status and the retry headers.

One table, read top to bottom (the first class that matches wins, so refinements come before
their parents):

====================================================  ======  ==========================================
error                                                  status  OpenAI ``type`` / ``code``
====================================================  ======  ==========================================
ParameterValidationError                               400     invalid_request_error / rule, ``param``
InvokeContextLengthExceededError                       400     invalid_request_error / context_length_exceeded
InvokeContentFilteredError                             400     invalid_request_error / content_filter
InvokeModelNotFoundError, ModelNotFoundError, ...      404     invalid_request_error / model_not_found
InvokeBadRequestError                                  400     invalid_request_error / the provider's code
InvokePermissionDeniedError, NoPermissionError         403     permission_error
InvokeAuthorizationError                               401     authentication_error (the upstream refused
                                                               the gateway's credentials)
InvokeQuotaExhaustedError, QuotaExceededError          429     insufficient_quota (``x-should-retry: false``)
InvokeRateLimitError (local limits, every config       429     rate_limit_error / rate_limit_exceeded,
rate limited)                                                  ``Retry-After`` / ``retry-after-ms``
InvokeOverloadedError                                  529     overloaded_error
InvokeServerUnavailableError (every config cooling)    503     server_error (``Retry-After`` when known)
InvokeTimeoutError                                     504     timeout
InvokeConnectionError                                  502     upstream_connection_error
StoreError, StateUnavailableError                      503     service_unavailable
anything else                                          500     server_error (no detail leaves the process)
====================================================  ======  ==========================================

The gateway's own refusals (:class:`GatewayError`: missing or revoked key, a model the key may
not use, a spent budget, malformed JSON, a body too large, a wrong content type) carry their
status and code directly.  Messages are the errors' own, which arun builds redacted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec

from arun import errors as E
from arun.errors import ArunError

__all__ = ["GatewayError", "ErrorInfo", "classify", "openai_body", "anthropic_body", "retry_headers"]


class GatewayError(ArunError):
    """A refusal of the gateway itself, with its status and OpenAI type/code/param."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
        param: str | None = None, retry_after: float | None = None, should_retry: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.should_retry = should_retry


@dataclass(slots=True)
class ErrorInfo:
    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    #: the error class name, for metrics and the spend log
    kind: str = ""


def classify(exc: BaseException) -> ErrorInfo:
    """The status, body fields and headers an error is answered with."""
    kind = type(exc).__name__
    if isinstance(exc, GatewayError):
        return ErrorInfo(exc.status, exc.message, exc.type, exc.code, exc.param, exc.retry_after, exc.should_retry, kind)
    from arun.manager.errors import ModelDisabledError, NoPermissionError, ProviderTokenNotInitError, QuotaExceededError
    from arun.manager.store import StoreError
    from arun.state import StateUnavailableError

    msg = str(exc) or kind
    if isinstance(exc, E.ParameterValidationError):
        return ErrorInfo(400, msg, "invalid_request_error", exc.rule or "invalid_value", exc.parameter, kind=kind)
    if isinstance(exc, E.InvokeContextLengthExceededError):
        return ErrorInfo(400, msg, "invalid_request_error", "context_length_exceeded", "messages", kind=kind)
    if isinstance(exc, E.InvokeContentFilteredError):
        return ErrorInfo(400, msg, "invalid_request_error", "content_filter", kind=kind)
    if isinstance(exc, (E.InvokeModelNotFoundError, E.ModelNotFoundError, E.ProviderNotFoundError, ProviderTokenNotInitError,
                        E.ModelTypeNotSupportedError)):  # fmt: skip
        return ErrorInfo(404, msg, "invalid_request_error", "model_not_found", "model", kind=kind)
    if isinstance(exc, E.InvokeBadRequestError):
        return ErrorInfo(400, msg, "invalid_request_error", exc.code, kind=kind)
    if isinstance(exc, (E.InvokePermissionDeniedError, NoPermissionError, ModelDisabledError)):
        return ErrorInfo(403, msg, "permission_error", getattr(exc, "code", None) or "permission_denied", kind=kind)
    if isinstance(exc, E.InvokeAuthorizationError):
        return ErrorInfo(401, msg, "authentication_error", exc.code or "upstream_authentication_error", kind=kind)
    if isinstance(exc, (E.InvokeQuotaExhaustedError, QuotaExceededError)):
        return ErrorInfo(429, msg, "insufficient_quota", "insufficient_quota", should_retry=False, kind=kind)
    if isinstance(exc, E.InvokeRateLimitError):
        return ErrorInfo(429, msg, "rate_limit_error", "rate_limit_exceeded", retry_after=exc.retry_after, kind=kind)
    if isinstance(exc, E.InvokeOverloadedError):
        return ErrorInfo(529, msg, "overloaded_error", exc.code or "overloaded", retry_after=exc.retry_after, kind=kind)
    if isinstance(exc, E.InvokeServerUnavailableError):
        return ErrorInfo(503, msg, "server_error", exc.code, retry_after=exc.retry_after, kind=kind)
    if isinstance(exc, E.InvokeTimeoutError):
        return ErrorInfo(504, msg, "timeout", "upstream_timeout", kind=kind)
    if isinstance(exc, E.InvokeConnectionError):
        return ErrorInfo(502, msg, "upstream_connection_error", "upstream_connection_error", kind=kind)
    if isinstance(exc, E.InvokeError):
        return ErrorInfo(502, msg, "server_error", exc.code, kind=kind)
    if isinstance(exc, (StoreError, StateUnavailableError)):
        return ErrorInfo(503, "the gateway's store or state is unavailable", "service_unavailable", "service_unavailable",
                         retry_after=1.0, kind=kind)  # fmt: skip
    if isinstance(exc, E.ArunUsageError):
        return ErrorInfo(400, msg, "invalid_request_error", None, kind=kind)
    return ErrorInfo(500, "The server had an error while processing your request.", "server_error", None, kind=kind)


def retry_headers(info: ErrorInfo) -> dict[str, str]:
    headers: dict[str, str] = {}
    if info.retry_after is not None and info.retry_after >= 0:
        headers["retry-after"] = str(max(1, math.ceil(info.retry_after)))
        headers["retry-after-ms"] = str(max(1, math.ceil(info.retry_after * 1000)))
    if info.should_retry is not None:
        headers["x-should-retry"] = "true" if info.should_retry else "false"
    return headers


_encode = msgspec.json.encode


def openai_body(info: ErrorInfo) -> bytes:
    return _encode({"error": {"message": info.message, "type": info.type, "param": info.param, "code": info.code}})


#: OpenAI status -> Anthropic error type
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 415: "invalid_request_error",
                    429: "rate_limit_error", 529: "overloaded_error"}  # fmt: skip


def anthropic_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status, "api_error")


def anthropic_body(info: ErrorInfo) -> bytes:
    return _encode({"type": "error", "error": {"type": anthropic_type(info.status), "message": info.message}})


def sse_error_event(info: ErrorInfo) -> bytes:
    """A failure after the stream started, in OpenAI's shape (the stream then closes, never ``[DONE]``)."""
    return b"data: " + openai_body(info) + b"\n\n"


def anthropic_error_event(info: ErrorInfo) -> bytes:
    return b"event: error\ndata: " + anthropic_body(info) + b"\n\n"
