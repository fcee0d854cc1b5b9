"""Read Dify-format provider and model YAML into entities.

Tolerant by design (a Dify provider folder loads unchanged): unknown keys and
extra i18n languages are ignored, model types may be spelled with hyphens or
underscores, ``use_template`` names that are not templates are ignored, prices
may be quoted strings.  Anything that cannot be turned into an entity raises
:class:`~arun.errors.SchemaError` naming the file and the key.
"""

from __future__ import annotations

import copy
import glob
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from arun.entities.model import AIModelEntity, FetchFrom, ModelFeature, ModelType
from arun.entities.provider import ProviderEntity
from arun.errors import SchemaError
from arun.schema.templates import PARAMETER_RULE_TEMPLATE

__all__ = [
    "LoadProblem",
    "load_model_files",
    "read_yaml",
    "read_position",
    "read_id_list",
    "sort_by_position",
    "load_provider_entity",
    "provider_entity_from_dict",
    "load_model_entities",
    "model_entity_from_dict",
    "merge_rule_template",
    "fill_rule_templates",
    "glob_model_files",
]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
log = logging.getLogger("arun.schema")

_FEATURES = {f.value for f in ModelFeature}


@dataclass(frozen=True)
class LoadProblem:
    """Something wrong in a provider folder: ``error`` (the file was skipped) or ``warning`` (loaded)."""

    file: str
    message: str
    severity: str = "error"
    key: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}" + (f" ({self.key})" if self.key else "")
        return f"{self.severity}: {where}: {self.message}"

    @classmethod
    def of(cls, exc: SchemaError, file: Path | str) -> LoadProblem:
        return cls(str(exc.file or file), str(exc), "error", exc.key)


def read_yaml(path: Path) -> Any:
    try:
        with open(path, "rb") as fh:
            return yaml.load(fh, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: invalid YAML: {exc}", file=str(path)) from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read: {exc.strerror}", file=str(path)) from None


def read_id_list(path: Path) -> list[str]:
    """The ids a position file lists (blank and non-string items skipped; no file: none)."""
    if not path.is_file():
        return []
    data = read_yaml(path) or []
    if not isinstance(data, list):
        raise SchemaError(f"{path}: expected a list of ids", file=str(path))
    return [item.strip() for item in data if isinstance(item, str) and item.strip()]


def read_position(folder: Path) -> list[str]:
    """The ids listed in ``folder/_position.yaml``."""
    return read_id_list(folder / "_position.yaml")


def sort_by_position(items: Iterable[Any], position: list[str], key: Any) -> list[Any]:
    """Order by ``position``; unlisted items keep their order and go last."""
    rank = {name: i for i, name in enumerate(position)}
    last = len(rank)
    return sorted(items, key=lambda item: rank.get(key(item), last))


def _convert(data: Any, target: type, path: Path) -> Any:
    try:
        return msgspec.convert(data, target, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        key = text.rsplit("at `", 1)[1].rstrip("`") if "at `" in text else None
        raise SchemaError(f"{path}: {text}", file=str(path), key=key) from None


def _normalise_model_types(values: Any) -> Any:
    if not isinstance(values, list):
        return values
    out = []
    for value in values:
        try:
            out.append(ModelType.value_of(value).value)
        except ValueError:
            out.append(value)  # let validation name the bad item
    return out


def load_provider_entity(path: Path) -> ProviderEntity:
    return provider_entity_from_dict(read_yaml(path), path)


def provider_entity_from_dict(data: Any, path: Path) -> ProviderEntity:
    """The provider entity of a parsed provider YAML (``path`` names it in errors)."""
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: expected a mapping at the top level", file=str(path))
    data = dict(data)
    data["supported_model_types"] = _normalise_model_types(data.get("supported_model_types"))
    data.pop("models", None)
    provider: ProviderEntity = _convert(data, ProviderEntity, path)
    return provider


def merge_rule_template(rule: dict[str, Any]) -> dict[str, Any]:
    """Shallow-overlay a rule on its template (YAML keys win; a YAML ``help`` replaces the whole dict)."""
    name = rule.get("use_template")
    template = PARAMETER_RULE_TEMPLATE.get(name) if isinstance(name, str) else None
    merged = copy.deepcopy(template) if template else {}
    merged.update(rule)
    if "label" not in merged and "name" in merged:
        merged["label"] = {"zh_Hans": merged["name"], "en_US": merged["name"]}
    return merged


def fill_rule_templates(schema: AIModelEntity, fetch_from: FetchFrom) -> AIModelEntity:
    """For customizable schemas: fill templated rule fields only where the value is falsy (Dify's rule)."""
    rules = []
    for rule in schema.parameter_rules:
        template = PARAMETER_RULE_TEMPLATE.get(rule.use_template or "")
        if template:
            merged = msgspec.to_builtins(rule)
            for key in ("max", "min", "default", "precision", "required", "help"):
                if not merged.get(key) and template.get(key) is not None:
                    merged[key] = template[key]
            rule = msgspec.convert(merge_rule_template(merged), type(rule), strict=False)
        rules.append(rule)
    return msgspec.structs.replace(schema, parameter_rules=rules, fetch_from=fetch_from)


def _known_features(data: dict[str, Any], path: Path, problems: list[LoadProblem] | None) -> None:
    """Drop feature values arun does not know (Dify's plugins add new ones, e.g. ``polling``)."""
    features = data.get("features")
    if not isinstance(features, list):
        return
    kept = []
    for value in features:
        if value in _FEATURES:
            kept.append(value)
            continue
        text = f"unknown feature {value!r} ignored"
        log.warning("%s: %s", path, text)
        if problems is not None:
            problems.append(LoadProblem(str(path), text, "warning", "features"))
    data["features"] = kept


def _check_pricing(data: dict[str, Any], path: Path) -> None:
    pricing = data.get("pricing")
    if isinstance(pricing, dict) and pricing.get("unit") in (None, ""):
        raise SchemaError(f"{path}: pricing.unit is required (the price is per unit tokens)", file=str(path), key="pricing.unit")


def model_entity_from_dict(
    data: dict[str, Any],
    path: Path,
    fetch_from: FetchFrom = FetchFrom.PREDEFINED_MODEL,
    problems: list[LoadProblem] | None = None,
) -> AIModelEntity:
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: expected a mapping at the top level", file=str(path))
    data = dict(data)
    if "model_type" in data:
        data["model_type"] = _normalise_model_types([data["model_type"]])[0]
    if not data.get("label") and "model" in data:
        data["label"] = {"en_US": str(data["model"])}
    rules = data.get("parameter_rules")
    if isinstance(rules, list):
        data["parameter_rules"] = [merge_rule_template(r) if isinstance(r, dict) else r for r in rules]
    if data.get("model_properties") is None:
        data["model_properties"] = {}
    _known_features(data, path, problems)
    _check_pricing(data, path)
    data["fetch_from"] = fetch_from.value
    model: AIModelEntity = _convert(data, AIModelEntity, path)
    return model


def load_model_files(
    paths: Iterable[Path], position: list[str], problems: list[LoadProblem] | None = None
) -> list[AIModelEntity]:
    """Model YAML files in ``position`` order; a bad file is skipped (recorded in ``problems``,
    raised when ``problems`` is None); when two files declare the same model the first one wins."""
    entities: dict[str, AIModelEntity] = {}
    for path in paths:
        try:
            entity = model_entity_from_dict(read_yaml(path), path, problems=problems)
        except SchemaError as exc:
            if problems is None:
                raise
            log.warning("skipped %s", exc)
            problems.append(LoadProblem.of(exc, path))
            continue
        if entity.model in entities:
            if problems is not None:
                problems.append(LoadProblem(str(path), f"model {entity.model!r} is declared by an earlier file; the first one wins", "warning", "model"))
            continue
        entities[entity.model] = entity
    return sort_by_position(list(entities.values()), position, key=lambda e: e.model)


def glob_model_files(root: Path, patterns: Iterable[str]) -> list[Path]:
    """The files a Dify plugin's ``models.<type>.predefined`` globs name, relative to ``root``."""
    found: list[Path] = []
    seen: set[Path] = set()
    for pattern in patterns:
        for name in sorted(glob.glob(str(root / pattern), recursive=True)):
            path = Path(name)
            if path.name.startswith("_") or not path.is_file() or path in seen:
                continue
            seen.add(path)
            found.append(path)
    return found


def load_model_entities(folder: Path, problems: list[LoadProblem] | None = None) -> list[AIModelEntity]:
    """Every ``*.yaml`` model in a model-type folder (Dify's layout), in ``_position.yaml`` order."""
    if not folder.is_dir():
        return []
    names = sorted(n for n in os.listdir(folder) if n.endswith((".yaml", ".yml")) and not n.startswith("_"))
    return load_model_files([folder / n for n in names], read_position(folder), problems)
