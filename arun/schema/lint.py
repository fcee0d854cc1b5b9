"""Strict checks for our own manifests (the loader itself stays tolerant for Dify's).

``lint_provider_folder(folder)`` returns a list of problems: unknown keys at any
level, misspelt model types, bogus ``use_template`` names, models missing from
``_position.yaml``, prices that are not quoted decimals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arun.entities.model import ModelType
from arun.schema.loader import read_position, read_yaml
from arun.schema.templates import PARAMETER_RULE_TEMPLATE

__all__ = ["lint_provider_folder"]

_PROVIDER_KEYS = {
    "provider", "label", "description", "icon_small", "icon_large", "background", "help",
    "supported_model_types", "configurate_methods", "provider_credential_schema", "model_credential_schema", "arun",
}
_MODEL_KEYS = {
    "model", "label", "model_type", "features", "fetch_from", "model_properties", "parameter_rules", "pricing",
    "deprecated",
}
_RULE_KEYS = {
    "name", "use_template", "label", "type", "help", "required", "default", "min", "max", "precision", "options",
}
_PRICING_KEYS = {"input", "output", "unit", "currency"}
_FORM_KEYS = {"variable", "label", "type", "required", "default", "options", "placeholder", "max_length", "show_on"}
_I18N_KEYS = {"en_US", "zh_Hans", "ja_JP", "pt_BR"}


def _unknown(where: str, data: Any, allowed: set[str]) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where}: expected a mapping"]
    return [f"{where}: unknown key {key!r}" for key in data if key not in allowed]


def _i18n(where: str, data: Any) -> list[str]:
    if data is None:
        return []
    problems = _unknown(where, data, _I18N_KEYS)
    if isinstance(data, dict) and "en_US" not in data:
        problems.append(f"{where}: en_US is required")
    return problems


def _lint_forms(where: str, forms: Any) -> list[str]:
    problems: list[str] = []
    for i, form in enumerate(forms or []):
        at = f"{where}[{i}]"
        problems += _unknown(at, form, _FORM_KEYS)
        if isinstance(form, dict):
            problems += _i18n(f"{at}.label", form.get("label"))
            problems += _i18n(f"{at}.placeholder", form.get("placeholder"))
    return problems


def _lint_provider(path: Path) -> list[str]:
    data = read_yaml(path)
    problems = _unknown(str(path), data, _PROVIDER_KEYS)
    if not isinstance(data, dict):
        return problems
    for key in ("label", "description", "icon_small", "icon_large"):
        problems += _i18n(f"{path}:{key}", data.get(key))
    for value in data.get("supported_model_types") or []:
        if value not in {t.value for t in ModelType}:
            problems.append(f"{path}: model type {value!r} should be spelt like {[t.value for t in ModelType]}")
    for key in ("provider_credential_schema", "model_credential_schema"):
        schema = data.get(key)
        if isinstance(schema, dict):
            problems += _lint_forms(f"{path}:{key}.credential_form_schemas", schema.get("credential_form_schemas"))
    return problems


def _lint_model(path: Path) -> list[str]:
    data = read_yaml(path)
    problems = _unknown(str(path), data, _MODEL_KEYS)
    if not isinstance(data, dict):
        return problems
    problems += _i18n(f"{path}:label", data.get("label"))
    for i, rule in enumerate(data.get("parameter_rules") or []):
        at = f"{path}:parameter_rules[{i}]"
        problems += _unknown(at, rule, _RULE_KEYS)
        if isinstance(rule, dict):
            template = rule.get("use_template")
            if template is not None and template not in PARAMETER_RULE_TEMPLATE:
                problems.append(f"{at}: use_template {template!r} is not a template")
            if template is None and "label" not in rule:
                problems.append(f"{at}: a rule without a template needs a label")
    pricing = data.get("pricing")
    if pricing is not None:
        problems += _unknown(f"{path}:pricing", pricing, _PRICING_KEYS)
        for key in ("input", "output", "unit"):
            if isinstance(pricing, dict) and key in pricing and not isinstance(pricing[key], str):
                problems.append(f"{path}:pricing.{key}: quote decimal prices ('0.15') so they are not floats")
    return problems


def lint_provider_folder(folder: Path) -> list[str]:
    """Every problem found in one provider folder (empty when the folder is clean)."""
    problems = _lint_provider(folder / f"{folder.name}.yaml")
    for kind in ModelType:
        sub = folder / kind.folder
        if not sub.is_dir():
            continue
        models = sorted(p for p in sub.glob("*.yaml") if not p.name.startswith("_"))
        position = read_position(sub)
        for path in models:
            problems += _lint_model(path)
            data = read_yaml(path)
            name = data.get("model") if isinstance(data, dict) else None
            if position and name not in position:
                problems.append(f"{path}: model {name!r} is missing from _position.yaml")
            if isinstance(data, dict) and data.get("model_type") != kind.value:
                problems.append(f"{path}: model_type {data.get('model_type')!r} != folder type {kind.value!r}")
    return problems
