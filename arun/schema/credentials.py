"""Credential-form validation with Dify's rules.

1. A field counts only if all its ``show_on`` conditions hold (key present and string-equal).
2. Missing or falsy + required -> "Variable X is required"; optional -> a truthy default, else omitted.
3. ``max_length > 0`` limits the length; the value must be a string.
4. ``select``/``radio`` values must be one of the options; ``switch`` takes 'true'/'false' (any case).
5. Unknown keys (``__model_type`` included) are dropped.
"""

from __future__ import annotations

from typing import Any

from arun.entities.provider import CredentialFormSchema, FormType
from arun.errors import CredentialsValidateFailedError

__all__ = ["validate_credential_form"]


def _shown(field: CredentialFormSchema, credentials: dict[str, Any]) -> bool:
    return all(
        cond.variable in credentials and str(credentials[cond.variable]) == cond.value for cond in field.show_on
    )


def _check_value(field: CredentialFormSchema, value: Any) -> Any:
    name = field.variable
    if field.type is FormType.SWITCH:
        text = str(value).lower()
        if text not in ("true", "false"):
            raise CredentialsValidateFailedError(f"Variable {name} should be true or false")
        return text == "true"
    if not isinstance(value, str):
        raise CredentialsValidateFailedError(f"Variable {name} should be string")
    if field.max_length > 0 and len(value) > field.max_length:
        raise CredentialsValidateFailedError(f"Variable {name} length should not greater than {field.max_length}")
    options = field.options if field.type in (FormType.SELECT, FormType.RADIO) else None
    if options is not None and value not in [option.value for option in options]:
        raise CredentialsValidateFailedError(f"Variable {name} is not in options")
    return value


def validate_credential_form(
    form_schemas: list[CredentialFormSchema], credentials: dict[str, Any]
) -> dict[str, Any]:
    """Return the credentials the form accepts, or raise :class:`CredentialsValidateFailedError`."""
    if not isinstance(credentials, dict):
        raise CredentialsValidateFailedError("Credentials should be a mapping of form variables")
    result: dict[str, Any] = {}
    for field in form_schemas:
        if not _shown(field, credentials):
            continue
        value = credentials.get(field.variable)
        if value is None or value == "":
            if field.required:
                raise CredentialsValidateFailedError(f"Variable {field.variable} is required")
            if field.default:
                result[field.variable] = field.default
            continue
        result[field.variable] = _check_value(field, value)
    return result
