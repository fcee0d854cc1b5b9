"""Typed errors of the manager layer (ModelManager / ModelInstance / provider management).

::

    ArunError (the whole tree: arun.errors)
    ├── ManagerError (ValueError)
    │   ├── TenantNotFoundError              unknown tenant id
    │   ├── ProviderTokenNotInitError        Dify's: no default model / no credentials
    │   ├── ModelDisabledError               "Model X is disabled."
    │   ├── QuotaExceededError               the system quota is used up (raised before calling)
    │   ├── NoPermissionError                model outside the system quota's restrict_models
    │   └── LBConfigNotFoundError            unknown load-balancing config id (for this tenant)
    └── ArunUsageError → ModelTypeNotSupportedError → ModelTypeMismatchError
                                             invoke_llm on an embedding instance, ...

Unknown providers and models raise :class:`arun.errors.ProviderNotFoundError` and
:class:`arun.errors.ModelNotFoundError`; credentials failing validation
:class:`arun.errors.CredentialsValidateFailedError`; a stored secret that does not
decrypt (corrupt, or another tenant's) :class:`arun.manager.crypto.CredentialDecryptError`.
"""

from __future__ import annotations

from arun.errors import ArunError, ModelTypeNotSupportedError

__all__ = [
    "ManagerError",
    "TenantNotFoundError",
    "ProviderTokenNotInitError",
    "ModelDisabledError",
    "QuotaExceededError",
    "NoPermissionError",
    "LBConfigNotFoundError",
    "ModelTypeMismatchError",
]


class ManagerError(ArunError, ValueError):
    """Base class of the manager layer's own errors."""


class TenantNotFoundError(ManagerError):
    pass


class ProviderTokenNotInitError(ManagerError):
    """No usable credentials or default model (Dify's ``ProviderTokenNotInitError``)."""


class ModelDisabledError(ProviderTokenNotInitError):
    """The model was disabled for the tenant (Dify raises a bare ``ValueError``)."""


class QuotaExceededError(ManagerError):
    """The provider's system quota is exhausted; no upstream call was made."""


class NoPermissionError(ManagerError):
    """The system quota does not cover this model (Dify's ``no-permission`` status)."""


class LBConfigNotFoundError(ManagerError):
    pass


class ModelTypeMismatchError(ModelTypeNotSupportedError):
    """A ``ModelInstance`` method of another model type was called."""
