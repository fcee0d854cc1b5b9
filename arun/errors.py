"""The error tree: everything arun raises is an :class:`ArunError`.

``except ArunError`` catches every failure of the library -- a model call, the
manager, the credential store, the shared state -- and nothing else.  Classes that
were ``ValueError`` before this tree existed keep ``ValueError`` in their MRO
(Dify code catches ``InvokeError`` and its siblings as ``ValueError``); the store
errors were plain ``Exception`` and stay out of ``ValueError``.

::

    ArunError                                        arun.errors
    ├── InvokeError (ValueError)                     a model call failed: description, provider, model,
    │   │                                            status, code, request_id, retry_after, body
    │   ├── InvokeConnectionError
    │   │   ├── InvokeTimeoutError (TimeoutError)
    │   │   └── InvokeStreamInterruptedError         the upstream cut a stream after it started
    │   ├── InvokeServerUnavailableError             5xx, 409
    │   │   ├── InvokeOverloadedError                529, Anthropic ``overloaded_error``
    │   │   └── ConfigsCoolingError                  arun.policy.routes: every config cools
    │   ├── InvokeRateLimitError                     429
    │   │   ├── InvokeQuotaExhaustedError            402, ``insufficient_quota``, billing
    │   │   ├── LimitExceededError                   arun.policy.limits_spec: a local rpm/tpm limit
    │   │   └── ConfigsRateLimitedError              arun.policy.routes: every config rate limited
    │   ├── InvokeAuthorizationError                 401
    │   │   └── InvokePermissionDeniedError          403, ``permission_error``
    │   └── InvokeBadRequestError                    other 4xx
    │       ├── InvokeContextLengthExceededError
    │       ├── InvokeContentFilteredError
    │       └── InvokeModelNotFoundError             404
    ├── CredentialsValidateFailedError (ValueError)  validate_credentials / the credential form
    ├── ArunUsageError (ValueError)                  caller mistakes: unknown names, bad parameters
    │   ├── ProviderNotFoundError
    │   ├── ModelNotFoundError
    │   ├── ModelTypeNotSupportedError
    │   │   └── ModelTypeMismatchError               arun.manager.errors: invoke_llm on an embedding instance
    │   ├── ParameterValidationError
    │   ├── NotStartedError (RuntimeError)           a runtime, manager or limiter used before start / after close
    │   ├── BenchUsageError                          arun.bench.errors: a bad ``arun bench`` argument
    │   └── GatewayConfigError                       arun.gateway.config: a gateway.yaml that does not load
    ├── SchemaError (ValueError)                     a provider or model YAML that does not load
    ├── ManagerError (ValueError)                    arun.manager.errors
    │   ├── TenantNotFoundError
    │   ├── ProviderTokenNotInitError
    │   │   └── ModelDisabledError
    │   ├── QuotaExceededError                       the system quota is used up (raised before calling)
    │   ├── NoPermissionError
    │   └── LBConfigNotFoundError
    ├── CredentialDecryptError (ValueError)          arun.manager.crypto: a stored secret or key does not load
    ├── EaxTagError (ValueError)                     arun.manager._eax: a Dify HYBRID blob fails its tag
    ├── MasterKeyError (ValueError)                  arun.manager.crypto: missing, malformed or refused master key
    ├── StoreError                                   arun.manager.store: a credential-store operation failed
    │   ├── StoreUnavailableError                    the database is unreachable or the connection was lost
    │   │   └── QuotaChargeError                     lost while charging quota; says whether it was recorded
    │   └── StoreConflictError                       a unique constraint (duplicate id)
    ├── StateUnavailableError (ValueError)           arun.state: the shared state backend is unreachable
    ├── GatewayError                                 arun.gateway.errors: a refusal of ``arun serve`` (status, code)
    ├── RunDeclined                                  arun.bench.estimate: the user declined a paid run
    ├── ProbeFailed                                  arun.bench.runner: the first request of a run failed
    └── TokenizerDataError (RuntimeError)            arun.tokenizers: BPE rank data missing or corrupt

The ``Invoke*Error`` classes and their descriptions match Dify's; the refinements
(permission denied, overloaded, ...) are subclasses, so ``except`` clauses written
for Dify's five classes still catch them.  Every message is built from redacted
text (:mod:`arun.redact`); :meth:`ArunError.redact_with` re-scrubs a built error
with the exact secret values of the call, whatever their length.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from arun.redact import redact

__all__ = [
    "ArunError",
    "InvokeError",
    "InvokeConnectionError",
    "InvokeTimeoutError",
    "InvokeStreamInterruptedError",
    "InvokeServerUnavailableError",
    "InvokeOverloadedError",
    "InvokeRateLimitError",
    "InvokeQuotaExhaustedError",
    "InvokeAuthorizationError",
    "InvokePermissionDeniedError",
    "InvokeBadRequestError",
    "InvokeContextLengthExceededError",
    "InvokeContentFilteredError",
    "InvokeModelNotFoundError",
    "CredentialsValidateFailedError",
    "ArunUsageError",
    "NotStartedError",
    "ProviderNotFoundError",
    "ModelNotFoundError",
    "ModelTypeNotSupportedError",
    "ParameterValidationError",
    "SchemaError",
]


class ArunError(Exception):
    """The base of every error arun raises."""

    def redact_with(self, secrets: Iterable[str]) -> None:
        """Mask the exact ``secrets`` (the call's credential values, any length) in this error,
        and in the exceptions chained to it (``__cause__`` / ``__context__``), in place."""
        values = _secret_list(secrets)
        if values:
            _scrub_chain(self, values)

    def _scrub(self, values: tuple[str, ...]) -> None:
        self.args = tuple(redact(a, values) if isinstance(a, str) else a for a in self.args)


def _secret_list(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(s for s in secrets if isinstance(s, str) and s)


def _scrub_chain(error: BaseException, values: tuple[str, ...]) -> None:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, ArunError):
            exc._scrub(values)
        else:  # a foreign exception: its message comes from its string args
            exc.args = tuple(redact(a, values) if isinstance(a, str) else a for a in exc.args)
        pending += [exc.__cause__, exc.__context__]


class InvokeError(ArunError, ValueError):
    """Base class of every failure of a model invocation."""

    description: str | None = None
    #: The provider's own error code or type (``invalid_api_key``, ``context_length_exceeded``,
    #: ``overloaded_error``, Zhipu's ``1261``), None when the upstream gave none.
    code: str | None = None
    #: Usage of what a stream delivered before it failed mid-way (an ``LLMUsage``), else None.
    partial_usage: Any = None
    #: How many chunks the caller received before the failure.
    delivered_chunks: int = 0
    #: The policy layer's trace of the attempts behind this error, when it ran.
    trace: Any = None
    #: True when the failure came after the first chunk was delivered (no retry, no fallback).
    after_commit: bool = False
    #: Response headers of the failed call when there was a response (``x-should-retry``,
    #: ``x-ratelimit-*``, ...); read by the policy layer.  None otherwise.
    headers: Any = None

    def __init__(
        self,
        description: str | None = None,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: str | None = None,
        code: str | None = None,
    ) -> None:
        if description is not None:
            self.description = redact(description)
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = redact(body) if body else body
        if code is not None:
            self.code = code
        super().__init__(self.description)

    def __str__(self) -> str:
        return self.description or self.__class__.__name__

    def __repr__(self) -> str:
        fields = [repr(str(self))]
        for name in ("provider", "model", "status", "code", "request_id", "retry_after"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        return f"{self.__class__.__name__}({', '.join(fields)})"

    def context(self) -> dict[str, Any]:
        """The structured fields, for logs and traces."""
        return {
            "type": self.__class__.__name__,
            "description": str(self),
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "code": self.code,
            "request_id": self.request_id,
            "retry_after": self.retry_after,
        }

    def _scrub(self, values: tuple[str, ...]) -> None:
        if self.description:
            self.description = redact(self.description, values)
        if self.body:
            self.body = redact(self.body, values)
        super()._scrub(values)


class InvokeConnectionError(InvokeError):
    description = "Connection Error"


class InvokeTimeoutError(InvokeConnectionError, TimeoutError):
    description = "Timeout Error"


class InvokeStreamInterruptedError(InvokeConnectionError):
    """The upstream ended a stream before its terminal event."""

    description = "Stream Interrupted"


class InvokeServerUnavailableError(InvokeError):
    description = "Server Unavailable Error"


class InvokeOverloadedError(InvokeServerUnavailableError):
    """The upstream is overloaded (HTTP 529, Anthropic's ``overloaded_error``): back off, then retry."""

    description = "Server Overloaded"


class InvokeRateLimitError(InvokeError):
    description = "Rate Limit Error"


class InvokeQuotaExhaustedError(InvokeRateLimitError):
    description = "Quota Exhausted"


class InvokeAuthorizationError(InvokeError):
    description = "Incorrect model credentials provided, please check and try again. "


class InvokePermissionDeniedError(InvokeAuthorizationError):
    """The credentials are valid but not allowed to do this (HTTP 403, ``permission_error``)."""

    description = "Permission Denied"


class InvokeBadRequestError(InvokeError):
    description = "Bad Request Error"


class InvokeContextLengthExceededError(InvokeBadRequestError):
    description = "Context Length Exceeded"


class InvokeContentFilteredError(InvokeBadRequestError):
    description = "Content Filtered"


class InvokeModelNotFoundError(InvokeBadRequestError):
    description = "Model Not Found"


class CredentialsValidateFailedError(ArunError, ValueError):
    """Raised by ``validate_credentials`` and the credential-form validator."""

    def __init__(self, message: str = "Credentials validation failed") -> None:
        super().__init__(redact(message))


class ArunUsageError(ArunError, ValueError):
    """The caller asked for something that cannot exist (a typed ValueError)."""


class NotStartedError(ArunUsageError, RuntimeError):
    """A runtime, manager or limiter used before it was started or after it was closed
    (also a ``RuntimeError``, what it was before the error tree)."""


class ProviderNotFoundError(ArunUsageError):
    pass


class ModelNotFoundError(ArunUsageError):
    pass


class ModelTypeNotSupportedError(ArunUsageError):
    pass


class ParameterValidationError(ArunUsageError):
    """A model parameter broke a rule; the message names the parameter and the rule."""

    def __init__(self, message: str, *, parameter: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.rule = rule


class SchemaError(ArunError, ValueError):
    """A provider or model YAML that does not load; the message names the file and key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.key = key
