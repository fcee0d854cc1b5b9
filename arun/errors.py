"""The error tree every caller sees.

::

    ValueError
    ├── InvokeError                      (description + provider/model/status/request_id/retry_after)
    │   ├── InvokeConnectionError        (also TimeoutError-flavoured: InvokeTimeoutError)
    │   │   ├── InvokeTimeoutError
    │   │   └── InvokeStreamInterruptedError   (upstream cut a stream after it started)
    │   ├── InvokeServerUnavailableError
    │   ├── InvokeRateLimitError
    │   │   └── InvokeQuotaExhaustedError
    │   ├── InvokeAuthorizationError
    │   └── InvokeBadRequestError
    │       ├── InvokeContextLengthExceededError
    │       ├── InvokeContentFilteredError
    │       └── InvokeModelNotFoundError
    ├── CredentialsValidateFailedError
    ├── ArunUsageError                    (caller mistakes: unknown provider/model/type, bad parameters)
    │   ├── ProviderNotFoundError
    │   ├── ModelNotFoundError
    │   ├── ModelTypeNotSupportedError
    │   └── ParameterValidationError
    └── SchemaError                       (a provider or model YAML that does not load)

The five ``Invoke*Error`` classes and their descriptions match Dify's.  Every
message is built from redacted text: callers never see an API key.
"""

from __future__ import annotations

from typing import Any

from arun.redact import redact

__all__ = [
    "InvokeError",
    "InvokeConnectionError",
    "InvokeTimeoutError",
    "InvokeStreamInterruptedError",
    "InvokeServerUnavailableError",
    "InvokeRateLimitError",
    "InvokeQuotaExhaustedError",
    "InvokeAuthorizationError",
    "InvokeBadRequestError",
    "InvokeContextLengthExceededError",
    "InvokeContentFilteredError",
    "InvokeModelNotFoundError",
    "CredentialsValidateFailedError",
    "ArunUsageError",
    "ProviderNotFoundError",
    "ModelNotFoundError",
    "ModelTypeNotSupportedError",
    "ParameterValidationError",
    "SchemaError",
]


class InvokeError(ValueError):
    """Base class of every failure of a model invocation."""

    description: str | None = None
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
    ) -> None:
        if description is not None:
            self.description = redact(description)
        self.provider = provider
        self.model = model
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = redact(body) if body else body
        super().__init__(self.description)

    def __str__(self) -> str:
        return self.description or self.__class__.__name__

    def __repr__(self) -> str:
        fields = [repr(str(self))]
        for name in ("provider", "model", "status", "request_id", "retry_after"):
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
            "request_id": self.request_id,
            "retry_after": self.retry_after,
        }


class InvokeConnectionError(InvokeError):
    description = "Connection Error"


class InvokeTimeoutError(InvokeConnectionError, TimeoutError):
    description = "Timeout Error"


class InvokeStreamInterruptedError(InvokeConnectionError):
    """The upstream ended a stream before its terminal event."""

    description = "Stream Interrupted"


class InvokeServerUnavailableError(InvokeError):
    description = "Server Unavailable Error"


class InvokeRateLimitError(InvokeError):
    description = "Rate Limit Error"


class InvokeQuotaExhaustedError(InvokeRateLimitError):
    description = "Quota Exhausted"


class InvokeAuthorizationError(InvokeError):
    description = "Incorrect model credentials provided, please check and try again. "


class InvokeBadRequestError(InvokeError):
    description = "Bad Request Error"


class InvokeContextLengthExceededError(InvokeBadRequestError):
    description = "Context Length Exceeded"


class InvokeContentFilteredError(InvokeBadRequestError):
    description = "Content Filtered"


class InvokeModelNotFoundError(InvokeBadRequestError):
    description = "Model Not Found"


class CredentialsValidateFailedError(ValueError):
    """Raised by ``validate_credentials`` and the credential-form validator."""

    def __init__(self, message: str = "Credentials validation failed") -> None:
        super().__init__(redact(message))


class ArunUsageError(ValueError):
    """The caller asked for something that cannot exist (a typed ValueError)."""


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


class SchemaError(ValueError):
    """A provider or model YAML that does not load; the message names the file and key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.key = key
