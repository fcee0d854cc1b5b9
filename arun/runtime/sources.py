"""Where providers come from: the built-in folders, user folders, Dify plugin folders.

A *root* is a directory given by ``ModelRuntime(provider_paths=[...])`` or the
``ARUN_PROVIDERS_PATH`` variable (``os.pathsep``-separated), searched before the built-in
``arun.providers`` folders, so a user's folder can add providers or replace a built-in one.
A root may be

* a provider folder itself (``<id>/<id>.yaml``, Dify 0.15.3's and arun's layout),
* a Dify plugin (``manifest.yaml`` naming ``provider/<id>.yaml``, whose ``models:`` globs name
  the model YAMLs: the ``dify-official-plugins`` layout),
* or a folder holding any number of either (one level down; ``_position.yaml`` orders them).

Nothing here imports provider code: discovery reads directory entries and, for plugins,
two small YAML files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from arun.entities.model import ModelType
from arun.errors import SchemaError
from arun.schema.loader import LoadProblem, read_position, read_yaml, sort_by_position

__all__ = ["ProviderSource", "discover", "builtin_sources", "builtin_roots", "env_roots", "PROVIDERS_PATH_ENV", "env_list"]

PROVIDERS_PATH_ENV = "ARUN_PROVIDERS_PATH"
BUILTIN_PACKAGE = "arun.providers"

Layout = Literal["folder", "plugin"]


@dataclass
class ProviderSource:
    """One provider's files (no YAML parsed yet beyond what discovery needed)."""

    id: str
    folder: Path  # the provider folder, or the plugin root
    yaml_path: Path
    layout: Layout
    builtin: bool
    #: plugin layout: model type -> (glob patterns, position file); folder layout: empty
    model_globs: dict[ModelType, tuple[list[str], Path | None]] = field(default_factory=dict)

    @property
    def package(self) -> str | None:
        """The import package of a built-in provider's code (user folders load code by path)."""
        return f"{BUILTIN_PACKAGE}.{self.id}" if self.builtin else None


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def env_roots() -> list[Path]:
    value = os.environ.get(PROVIDERS_PATH_ENV, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def builtin_roots() -> list[Path]:
    import arun.providers as package

    return [Path(p) for p in package.__path__]


def _plugin(root: Path, problems: list[LoadProblem]) -> list[ProviderSource]:
    manifest = read_yaml(root / "manifest.yaml") or {}
    plugins = manifest.get("plugins") if isinstance(manifest, dict) else None
    files = plugins.get("models") if isinstance(plugins, dict) else None
    out = []
    for rel in files or []:
        path = root / str(rel)
        try:
            data = read_yaml(path)
        except SchemaError as exc:
            problems.append(LoadProblem.of(exc, path))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("provider"), str):
            problems.append(LoadProblem(str(path), "a plugin's provider YAML needs a top-level 'provider' id", "error", "provider"))
            continue
        globs: dict[ModelType, tuple[list[str], Path | None]] = {}
        models = data.get("models")
        for type_name, entry in (models or {}).items() if isinstance(models, dict) else ():
            try:
                kind = ModelType.value_of(type_name)
            except ValueError:
                problems.append(LoadProblem(str(path), f"unknown model type {type_name!r} in models", "warning", "models"))
                continue
            if not isinstance(entry, dict):
                continue
            patterns = [str(p) for p in entry.get("predefined") or [] if isinstance(p, str)]
            position = entry.get("position")
            globs[kind] = (patterns, root / position if isinstance(position, str) else None)
        out.append(ProviderSource(data["provider"], root, path, "plugin", False, globs))
    return out


def _folder(folder: Path, builtin: bool) -> ProviderSource:
    return ProviderSource(folder.name, folder, folder / f"{folder.name}.yaml", "folder", builtin)


def _scan(root: Path, builtin: bool, problems: list[LoadProblem]) -> list[ProviderSource]:
    """The providers of one root, in its ``_position.yaml`` order."""
    if not root.is_dir():
        problems.append(LoadProblem(str(root), "providers path is not a directory"))
        return []
    if (root / "manifest.yaml").is_file():
        return _plugin(root, problems)
    if (root / f"{root.name}.yaml").is_file():
        return [_folder(root, builtin)]
    found: list[ProviderSource] = []
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.name.startswith(("_", ".")):
            continue
        if (child / "manifest.yaml").is_file():
            found.extend(_plugin(child, problems))
        elif (child / f"{child.name}.yaml").is_file():
            found.append(_folder(child, builtin))
    return sort_by_position(found, read_position(root), key=lambda s: s.id)


def _builtin() -> list[ProviderSource]:
    """Every ``<id>/<id>.yaml`` under ``arun.providers``'s folders (code or not: a YAML-only
    provider has no ``__init__.py``), in the built-in ``_position.yaml`` order (the first folder
    with an id wins)."""
    found: dict[str, ProviderSource] = {}
    position: list[str] = []
    for root in builtin_roots():
        if not root.is_dir():
            continue
        position.extend(read_position(root))
        for source in _scan(root, True, []):
            found.setdefault(source.id, source)
    return sort_by_position(list(found.values()), position, key=lambda s: s.id)


def builtin_sources() -> dict[str, ProviderSource]:
    return {s.id: s for s in _builtin()}


def discover(
    paths: Sequence[str | os.PathLike[str]] = (), problems: list[LoadProblem] | None = None
) -> dict[str, ProviderSource]:
    """Provider id -> source: user roots first (they override built-ins), built-ins in position order.

    Built-in providers keep their place in the built-in order even when a user folder replaces
    them; providers only a user folder has come after the built-ins, in their root's order.
    ``ARUN_PROVIDER_PINS`` / ``INCLUDES`` / ``EXCLUDES`` reorder and filter as in Dify.
    """
    problems = problems if problems is not None else []
    user: dict[str, ProviderSource] = {}
    for root in [Path(p) for p in paths] + env_roots():
        for source in _scan(root.expanduser(), False, problems):
            user.setdefault(source.id, source)
    ordered: dict[str, ProviderSource] = {}
    for source in _builtin():
        ordered[source.id] = user.pop(source.id, source)
    ordered.update(user)
    pins = env_list("ARUN_PROVIDER_PINS")
    names = sort_by_position(list(ordered), pins, key=lambda n: n) if pins else list(ordered)
    includes, excludes = set(env_list("ARUN_PROVIDER_INCLUDES")), set(env_list("ARUN_PROVIDER_EXCLUDES"))
    return {n: ordered[n] for n in names if (not includes or n in includes) and n not in excludes}

