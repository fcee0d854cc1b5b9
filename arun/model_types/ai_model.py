"""``AIModel``: what every model type shares (schemas, prices, error mapping).

Model objects belong to one runtime (not process-wide singletons) and hold no
per-call state: timing and usage are computed by the per-call wrappers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from arun.entities.model import AIModelEntity, FetchFrom, ModelType, PriceInfo, PriceType
from arun.errors import CredentialsValidateFailedError, InvokeAuthorizationError, InvokeError, ModelNotFoundError
from arun.pricing import get_price
from arun.redact import redact, secret_values
from arun.schema.loader import fill_rule_templates

if TYPE_CHECKING:
    from arun.model_types.context import ModelContext
    from arun.wire.client import ErrorMapper, HttpClient

__all__ = ["AIModel", "as_validation_error", "validate_by"]

logger = logging.getLogger("arun.model")

_UNBUILT: Any = object()  # a customizable schema not built yet (None is a built answer: no such model)


class AIModel:
    """Base of the six model types. Providers implement the private hooks."""

    model_type: ClassVar[ModelType]

    def __init__(self, context: ModelContext) -> None:
        self.context = context
        self.provider_name = context.provider
        #: the runtime's pooled client (injected; providers never open sessions)
        self.http: HttpClient = context.http
        self._schemas: dict[str, AIModelEntity] | None = None
        self._custom_schemas: dict[tuple[str, tuple[tuple[str, str], ...]], AIModelEntity | None] = {}
        self._error_mappers: dict[Callable[..., InvokeError], ErrorMapper] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider_name!r} type={self.model_type.value!r}>"

    # -- provider hooks ---------------------------------------------------------------

    async def validate_credentials(self, model: str, credentials: Mapping[str, Any]) -> None:
        """Raise :class:`CredentialsValidateFailedError` when the credentials do not work."""
        raise NotImplementedError(f"{type(self).__name__}.validate_credentials")

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[BaseException]]]:
        """Extra exception classes -> Invoke error classes, for provider-specific exceptions."""
        return {}

    async def get_customizable_model_schema(
        self, model: str, credentials: Mapping[str, Any]
    ) -> AIModelEntity | None:
        """Build a schema for a user-added model from its credentials (customizable-model)."""
        return None

    # -- errors -----------------------------------------------------------------------

    def error_mapper(self, classify: Callable[..., InvokeError]) -> ErrorMapper:
        """A protocol family's ``classify(provider, status, headers, body)`` bound to this provider:
        the ``error_mapper`` the HTTP client takes, built once per model object, not per request."""
        mapper = self._error_mappers.get(classify)
        if mapper is None:
            mapper = self._error_mappers[classify] = partial(classify, self.provider_name)
        return mapper

    def _transform_invoke_error(
        self, error: BaseException, model: str | None = None, credentials: Mapping[str, Any] | None = None
    ) -> InvokeError:
        """Map any exception to the Invoke tree; Invoke errors pass through unchanged (plus context).

        With ``credentials``, the call's own secret values (every field the forms mark secret,
        whatever its length) are masked in the error, its body and its causes."""
        if isinstance(error, InvokeError):
            result = error
        else:
            result = self._map_foreign_error(error)
            result.__cause__ = error
        if result.provider is None:
            result.provider = self.provider_name
        if result.model is None:
            result.model = model
        result = self._by_provider_code(result)
        secrets = secret_values(credentials, self.context.secret_fields) if credentials else ()
        if secrets:
            result.redact_with(secrets)
        if isinstance(result, InvokeAuthorizationError):
            logger.warning("[%s] authorization failed: %s", self.provider_name, redact(repr(error), secrets))
        return result

    def _by_provider_code(self, error: InvokeError) -> InvokeError:
        """The class the provider's ``error_codes`` table gives the error's code, when it has one."""
        spec = self.context.spec
        if spec is None or not spec.error_codes:
            return error
        from arun.protocols.errors import ERROR_CLASSES, error_codes_of, reclass

        codes = [error.code] if error.code else []
        if error.body:
            codes += error_codes_of(error.body.encode())[0]
        for code in codes:
            name = spec.error_codes.get(str(code))
            if name is not None:
                return reclass(error, ERROR_CLASSES[name])
        return error

    def _map_foreign_error(self, error: BaseException) -> InvokeError:
        for invoke_class, exc_classes in self._invoke_error_mapping.items():
            if isinstance(error, tuple(exc_classes)):
                if issubclass(invoke_class, InvokeAuthorizationError):
                    return invoke_class(
                        f"[{self.provider_name}] Incorrect model credentials provided, please check and try again. "
                        f"({redact(str(error))})"
                    )
                return invoke_class(f"[{self.provider_name}] {invoke_class.description}, {redact(str(error))}")
        return InvokeError(f"[{self.provider_name}] Error: {redact(str(error)) or type(error).__name__}")

    # -- schemas ----------------------------------------------------------------------

    async def predefined_models(self) -> list[AIModelEntity]:
        return list(self._predefined().values())

    def _predefined(self) -> dict[str, AIModelEntity]:
        if self._schemas is None:
            self._schemas = {e.model: e for e in self.context.predefined()}
        return self._schemas

    async def get_model_schema(
        self, model: str, credentials: Mapping[str, Any] | None = None
    ) -> AIModelEntity | None:
        """Predefined, else derived from a predefined one (:meth:`_derived_schema`), else (with
        credentials) the customizable model's, built once per model and credentials."""
        schema = self._predefined().get(model)
        if schema is not None:
            return schema
        schema = self._derived_schema(model)
        if schema is not None or credentials is None:
            return schema
        key = (model, tuple(sorted((k, str(v)) for k, v in credentials.items())))
        cache = self._custom_schemas
        schema = cache.get(key, _UNBUILT)
        if schema is _UNBUILT:
            if len(cache) > 1024:
                cache.clear()
            schema = await self.get_customizable_model_schema(model, credentials)
            if schema is not None:
                schema = fill_rule_templates(schema, FetchFrom.CUSTOMIZABLE_MODEL)
            cache[key] = schema
        return schema

    def _derived_schema(self, model: str) -> AIModelEntity | None:
        """The schema of a model derived from a predefined one without credentials (a family's
        fine-tunes); None here."""
        return None

    async def require_schema(self, model: str, credentials: Mapping[str, Any] | None) -> AIModelEntity:
        if not isinstance(model, str) or not model:
            raise ModelNotFoundError("model must be a non-empty string")
        schema = await self.get_model_schema(model, credentials)
        if schema is None:
            raise ModelNotFoundError(
                f"Model {model!r} of type {self.model_type.value!r} is not defined by provider {self.provider_name!r}"
            )
        return schema

    # -- price ------------------------------------------------------------------------

    def price(self, schema: AIModelEntity | None, price_type: PriceType, tokens: int) -> PriceInfo:
        return get_price(schema, price_type, tokens)

    async def get_price(
        self, model: str, credentials: Mapping[str, Any], price_type: PriceType, tokens: int
    ) -> PriceInfo:
        return get_price(await self.get_model_schema(model, credentials), price_type, tokens)


def as_validation_error(exc: BaseException) -> CredentialsValidateFailedError:
    """What ``validate_credentials`` raises for any failure: the message of an Invoke error
    (already redacted), else the exception's type and text; the cause is kept."""
    if isinstance(exc, CredentialsValidateFailedError):
        return exc
    text = str(exc) if isinstance(exc, (InvokeError, ValueError)) else f"{type(exc).__name__}: {exc}"
    error = CredentialsValidateFailedError(text)
    error.__cause__ = exc
    return error


async def validate_by(
    call: Callable[[], Awaitable[Any]], credentials: Mapping[str, Any] | None = None, secret_fields: Iterable[str] = ()
) -> None:
    """Run one small real request; every failure becomes :class:`CredentialsValidateFailedError`,
    with the credentials' secret values (any length) masked in it and in its causes."""
    try:
        await call()
    except CredentialsValidateFailedError:
        raise
    except Exception as exc:
        error = as_validation_error(exc)
        secrets = secret_values(credentials, secret_fields) if credentials else ()
        if secrets:
            error.redact_with(secrets)
        raise error from exc
