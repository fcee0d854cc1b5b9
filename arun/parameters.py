"""Model-parameter validation with Dify's exact semantics and messages.

Only the schema's rules are read and any other key is dropped; values are never
coerced or clamped; a required rule without a value uses its default or fails;
an optional rule without a value is omitted (its default is not injected).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arun.entities.model import ParameterRule, ParameterType
from arun.errors import ParameterValidationError
from arun.identity_cache import IdentityCache

__all__ = ["validate_parameters"]


def _fail(name: str, text: str, rule: str) -> ParameterValidationError:
    return ParameterValidationError(f"Model Parameter {name} {text}", parameter=name, rule=rule)


def _check_range(rule: ParameterRule, value: float) -> None:
    if rule.min is not None and value < rule.min:
        raise _fail(rule.name, f"should be greater than or equal to {rule.min}.", "min")
    if rule.max is not None and value > rule.max:
        raise _fail(rule.name, f"should be less than or equal to {rule.max}.", "max")


def _check(rule: ParameterRule, value: Any) -> None:
    name, kind = rule.name, rule.type
    if kind is ParameterType.INT:
        if not isinstance(value, int) or value.__class__ is bool:  # True is an int to Python, not to a model
            raise _fail(name, "should be int.", "type")
        _check_range(rule, value)
    elif kind is ParameterType.FLOAT:
        if not isinstance(value, (int, float)) or value.__class__ is bool:
            raise _fail(name, "should be float.", "type")
        if rule.precision is not None:
            if rule.precision == 0:
                if value != int(value):
                    raise _fail(name, "should be int.", "precision")
            elif value != round(value, rule.precision):
                raise _fail(name, f"should be round to {rule.precision} decimal places.", "precision")
        _check_range(rule, value)
    elif kind is ParameterType.BOOLEAN:
        if not isinstance(value, bool):
            raise _fail(name, "should be bool.", "type")
    elif kind in (ParameterType.STRING, ParameterType.TEXT):
        if not isinstance(value, str):
            raise _fail(name, "should be string." if kind is ParameterType.STRING else "should be text.", "type")
        if rule.options and value not in rule.options:
            raise _fail(name, f"should be one of {rule.options}.", "options")
    else:  # pragma: no cover - ParameterType is closed
        raise _fail(name, f"type {kind} is not supported.", "type")


def _empty_result(rules: list[ParameterRule]) -> dict[str, Any] | None:
    """What an empty ``parameters`` validates to: the required rules' defaults, or None when a
    required rule has no default (that call fails, with the full message, on the slow path)."""
    values = {r.name: r.default for r in rules if r.required}
    return None if None in values.values() else values


_empty_results: IdentityCache[list[ParameterRule], dict[str, Any] | None] = IdentityCache(_empty_result)


def validate_parameters(rules: list[ParameterRule], parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and filter ``parameters`` against ``rules``; raise :class:`ParameterValidationError`."""
    if parameters is None or (parameters.__class__ is dict and not parameters):
        # the common call: no parameters, so only the required defaults (kept per rule list)
        defaults = _empty_results.get(rules)
        if defaults is not None:
            return defaults.copy()
        parameters = {}
    elif parameters.__class__ is not dict and not isinstance(parameters, Mapping):
        raise ParameterValidationError("model_parameters should be a mapping", parameter="model_parameters")
    result: dict[str, Any] = {}
    for rule in rules:
        value = parameters.get(rule.name)
        if value is None and rule.use_template and rule.use_template in parameters:
            value = parameters[rule.use_template]
        if value is None:
            if rule.required:
                if rule.default is None:
                    raise _fail(rule.name, "is required.", "required")
                result[rule.name] = rule.default
            continue
        _check(rule, value)
        result[rule.name] = value
    return result
