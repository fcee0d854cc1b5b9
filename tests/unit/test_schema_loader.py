"""YAML loading: a Dify-style folder with real quirks loads unchanged; bad files name file and key."""

from decimal import Decimal
from pathlib import Path

import pytest

from arun.entities.model import FetchFrom, ModelType, ParameterType
from arun.entities.provider import ConfigurateMethod, FormType
from arun.errors import SchemaError
from arun.schema.lint import lint_provider_folder
from arun.schema.loader import load_model_entities, load_provider_entity, model_entity_from_dict, read_yaml

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dify_provider"
QUIRKY = FIXTURES / "quirky"


def test_provider_yaml_with_unknown_keys_and_extra_languages_loads():
    p = load_provider_entity(QUIRKY / "quirky.yaml")
    assert p.provider == "quirky"
    assert p.label.en_US == "Quirky Cloud" and p.label.ja_JP == "クワーキー"
    assert p.label.zh_Hans == "Quirky Cloud" and p.label.pt_BR == "Quirky Cloud"  # fallbacks
    assert p.supported_model_types == [ModelType.LLM, ModelType.TEXT_EMBEDDING]  # underscore spelling accepted
    assert ConfigurateMethod.FETCH_FROM_REMOTE in p.configurate_methods
    forms = p.provider_credential_schema.credential_form_schemas
    assert forms[0].type is FormType.SECRET_INPUT and forms[0].required is True  # Dify's default is required
    assert forms[1].options[1].show_on[0].variable == "api_key"
    assert p.secret_variables() == {"api_key"}


def test_models_in_position_order_with_unlisted_last():
    models = load_model_entities(QUIRKY / "llm")
    assert [m.model for m in models] == ["quirky-large", "quirky-small", "unlisted"]
    assert all(m.fetch_from is FetchFrom.PREDEFINED_MODEL for m in models)


def test_template_merge_label_defaults_and_quirks():
    small = {m.model: m for m in load_model_entities(QUIRKY / "llm")}["quirky-small"]
    assert small.label.en_US == "quirky-small"  # missing label -> model id
    rules = {r.name: r for r in small.parameter_rules}
    t = rules["temperature"]
    assert (t.min, t.max, t.default, t.precision, t.type) == (0.0, 1.0, 0.0, 2, ParameterType.FLOAT)
    assert t.help.en_US == "replaces the whole help dict" and t.help.zh_Hans == t.help.en_US  # shallow overlay
    assert rules["max_tokens"].max == 4096.0 and rules["max_tokens"].min == 1.0
    assert rules["enable_thing"].type is ParameterType.BOOLEAN  # bogus template 'boolean' ignored
    assert rules["stop_words"].label.en_US == "stop_words"  # no template, no label -> name
    assert small.pricing.input == Decimal("0.5") and small.pricing.output == Decimal("1.5")
    assert small.deprecated is False  # 'depraceted' is silently ignored, as in Dify


def test_hyphenated_model_type_in_underscore_folder():
    (embed,) = load_model_entities(QUIRKY / "text_embedding")
    assert embed.model_type is ModelType.TEXT_EMBEDDING
    assert embed.property("max_chunks") == 16


def test_invalid_value_names_file_and_key():
    path = FIXTURES / "broken" / "bad_type.yaml"
    with pytest.raises(SchemaError) as info:
        model_entity_from_dict(read_yaml(path), path)
    assert "bad_type.yaml" in str(info.value)
    assert info.value.key == "$.parameter_rules[0].max"


def test_invalid_yaml_names_the_file():
    with pytest.raises(SchemaError, match="bad_yaml.yaml"):
        read_yaml(FIXTURES / "broken" / "bad_yaml.yaml")


def test_lint_flags_the_quirks_we_tolerate():
    problems = "\n".join(lint_provider_folder(QUIRKY))
    assert "extra_unknown_top_level_key" in problems
    assert "'depraceted'" in problems
    assert "use_template 'boolean' is not a template" in problems
    assert "'ko_KR'" in problems
    assert "quote decimal prices" in problems
    assert "missing from _position.yaml" in problems
