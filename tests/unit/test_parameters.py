"""Parameter validation: Dify's exact semantics and messages (no coercion, no clamping)."""

import msgspec
import pytest

from arun.entities.model import ParameterRule
from arun.errors import ParameterValidationError
from arun.parameters import validate_parameters
from arun.schema.loader import merge_rule_template


def rule(**kw):
    return msgspec.convert(merge_rule_template(kw), ParameterRule, strict=False)


TEMP = rule(name="temperature", use_template="temperature")
MAX = rule(name="max_tokens", use_template="max_tokens", max=1024)
FMT = rule(name="response_format", use_template="response_format")
STREAMY = rule(name="enable_search", label={"en_US": "Search"}, type="boolean")
REQ = rule(name="top_k", use_template="top_k", required=True)
REQ_NO_DEFAULT = rule(name="seed", label={"en_US": "Seed"}, type="int", required=True)


def test_unknown_keys_are_dropped_and_optional_defaults_not_injected():
    assert validate_parameters([TEMP, MAX], {"temperature": 0.5, "bogus": 1}) == {"temperature": 0.5}


def test_required_rule_uses_its_default():
    assert validate_parameters([REQ], {}) == {"top_k": 50}


def test_required_without_default_names_the_parameter():
    with pytest.raises(ParameterValidationError, match=r"^Model Parameter seed is required\.$") as info:
        validate_parameters([REQ_NO_DEFAULT], {})
    assert info.value.parameter == "seed" and info.value.rule == "required"


@pytest.mark.parametrize(
    "rules, params, message, rule_name",
    [
        ([MAX], {"max_tokens": 1.0}, "Model Parameter max_tokens should be int.", "type"),
        ([MAX], {"max_tokens": "5"}, "Model Parameter max_tokens should be int.", "type"),
        ([MAX], {"max_tokens": 2000}, "Model Parameter max_tokens should be less than or equal to 1024.0.", "max"),
        ([MAX], {"max_tokens": 0}, "Model Parameter max_tokens should be greater than or equal to 1.0.", "min"),
        ([TEMP], {"temperature": "0.5"}, "Model Parameter temperature should be float.", "type"),
        ([TEMP], {"temperature": 0.555}, "Model Parameter temperature should be round to 2 decimal places.", "precision"),
        ([TEMP], {"temperature": 1.5}, "Model Parameter temperature should be less than or equal to 1.0.", "max"),
        ([FMT], {"response_format": "YAML"}, "Model Parameter response_format should be one of ['JSON', 'XML'].", "options"),
        ([FMT], {"response_format": 1}, "Model Parameter response_format should be string.", "type"),
        ([STREAMY], {"enable_search": "true"}, "Model Parameter enable_search should be bool.", "type"),
    ],
)
def test_violations_raise_with_dify_messages(rules, params, message, rule_name):
    with pytest.raises(ParameterValidationError) as info:
        validate_parameters(rules, params)
    assert str(info.value) == message
    assert info.value.rule == rule_name
    assert isinstance(info.value, ValueError)  # Dify callers catch ValueError


def test_bool_is_not_a_number_and_float_accepts_int():
    """Issue 10 fault 7: ``max_tokens=True`` was accepted (Python's bool is an int; Dify's bug, not its contract)."""
    with pytest.raises(ParameterValidationError) as info:
        validate_parameters([MAX], {"max_tokens": True})
    assert (info.value.parameter, info.value.rule) == ("max_tokens", "type")
    with pytest.raises(ParameterValidationError):
        validate_parameters([TEMP], {"temperature": False})
    assert validate_parameters([TEMP], {"temperature": 1}) == {"temperature": 1}


def test_value_found_under_template_alias():
    aliased = rule(name="max_output_tokens", use_template="max_tokens")
    assert validate_parameters([aliased], {"max_tokens": 100}) == {"max_output_tokens": 100}


def test_precision_zero_float_must_be_integral():
    r = rule(name="n", label={"en_US": "n"}, type="float", precision=0)
    assert validate_parameters([r], {"n": 2.0}) == {"n": 2.0}
    with pytest.raises(ParameterValidationError, match="should be int"):
        validate_parameters([r], {"n": 2.5})


def test_non_mapping_parameters_are_a_typed_error():
    with pytest.raises(ParameterValidationError, match="model_parameters"):
        validate_parameters([TEMP], ["temperature", 1])  # type: ignore[arg-type]


def test_empty_parameters_give_the_required_defaults_every_time_and_never_share_the_dict():
    rules = [TEMP, REQ, MAX]
    first = validate_parameters(rules, None)
    assert first == {"top_k": 50}
    first["top_k"] = 1  # the caller's copy: the next call must not see it
    first["temperature"] = 2.0
    assert validate_parameters(rules, {}) == {"top_k": 50}
    assert validate_parameters(rules, None) is not validate_parameters(rules, None)


def test_empty_parameters_still_fail_on_a_required_rule_without_default_on_every_call():
    rules = [TEMP, REQ_NO_DEFAULT]
    for params in (None, {}, None):
        with pytest.raises(ParameterValidationError, match=r"^Model Parameter seed is required\.$"):
            validate_parameters(rules, params)


def test_empty_parameters_follow_a_new_rule_list():
    assert validate_parameters([TEMP], None) == {}
    assert validate_parameters([TEMP, REQ], None) == {"top_k": 50}
    assert validate_parameters([REQ_NO_DEFAULT, REQ][1:], None) == {"top_k": 50}


def test_falsy_non_mapping_parameters_are_still_a_typed_error():
    for bad in ("", [], 0):
        with pytest.raises(ParameterValidationError, match="model_parameters"):
            validate_parameters([TEMP], bad)  # type: ignore[arg-type]
