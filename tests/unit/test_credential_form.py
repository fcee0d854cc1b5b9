"""Dify's credential-form rules: required, show_on, options, max_length, switch, unknown keys dropped."""

import msgspec
import pytest

from arun.entities.provider import CredentialFormSchema
from arun.errors import CredentialsValidateFailedError
from arun.schema.credentials import validate_credential_form


def forms(*items):
    return [msgspec.convert(i, CredentialFormSchema, strict=False) for i in items]


KEY = {"variable": "api_key", "label": {"en_US": "Key"}, "type": "secret-input", "max_length": 10}
MODE = {
    "variable": "mode",
    "label": {"en_US": "Mode"},
    "type": "select",
    "required": False,
    "default": "chat",
    "options": [{"value": "chat", "label": {"en_US": "Chat"}}, {"value": "completion", "label": {"en_US": "C"}}],
}
CTX = {
    "variable": "context_size",
    "label": {"en_US": "Context"},
    "type": "text-input",
    "show_on": [{"variable": "__model_type", "value": "llm"}],
}
SWITCH = {"variable": "vision", "label": {"en_US": "Vision"}, "type": "switch", "required": False}


def test_required_missing_names_the_variable():
    with pytest.raises(CredentialsValidateFailedError, match="^Variable api_key is required$"):
        validate_credential_form(forms(KEY), {})
    with pytest.raises(CredentialsValidateFailedError, match="api_key is required"):
        validate_credential_form(forms(KEY), {"api_key": ""})


def test_optional_default_unknown_keys_dropped():
    out = validate_credential_form(forms(KEY, MODE), {"api_key": "k", "junk": 1, "__model_type": "llm"})
    assert out == {"api_key": "k", "mode": "chat"}


def test_options_and_max_length():
    with pytest.raises(CredentialsValidateFailedError, match="mode is not in options"):
        validate_credential_form(forms(MODE), {"mode": "fast"})
    with pytest.raises(CredentialsValidateFailedError, match="api_key length"):
        validate_credential_form(forms(KEY), {"api_key": "x" * 11})
    with pytest.raises(CredentialsValidateFailedError, match="should be string"):
        validate_credential_form(forms(KEY), {"api_key": 12345})


def test_show_on_hides_fields_whose_condition_fails():
    assert validate_credential_form(forms(CTX), {"__model_type": "text-embedding"}) == {}
    with pytest.raises(CredentialsValidateFailedError, match="context_size is required"):
        validate_credential_form(forms(CTX), {"__model_type": "llm"})


@pytest.mark.parametrize("given, expected", [("true", True), ("TRUE", True), ("false", False), ("False", False)])
def test_switch_values(given, expected):
    assert validate_credential_form(forms(SWITCH), {"vision": given}) == {"vision": expected}


def test_switch_rejects_other_values():
    with pytest.raises(CredentialsValidateFailedError, match="vision"):
        validate_credential_form(forms(SWITCH), {"vision": "yes"})


def test_error_message_never_contains_the_secret():
    with pytest.raises(CredentialsValidateFailedError) as info:
        validate_credential_form(forms(KEY), {"api_key": "sk-verysecretvalue123"})
    assert "sk-verysecretvalue123" not in str(info.value)
