"""Strict lint of every manifest we ship, and every model loads into an entity."""


import pytest

from arun.runtime.model_runtime import discover_providers
from arun.schema.lint import lint_provider_folder
from arun.schema.loader import load_model_entities, load_provider_entity

PROVIDERS = discover_providers()


def test_the_builtin_providers_are_discovered():
    assert {"openai", "anthropic", "ollama", "jina", "openai_api_compatible"} <= set(PROVIDERS)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_manifest_is_clean(name):
    assert lint_provider_folder(PROVIDERS[name]) == []


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_every_model_loads(name):
    folder = PROVIDERS[name]
    provider = load_provider_entity(folder / f"{name}.yaml")
    for kind in provider.supported_model_types:
        for entity in load_model_entities(folder / kind.folder):
            assert entity.model_type is kind
            assert entity.label.en_US
