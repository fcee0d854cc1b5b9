"""The arun: block and the provider sources: bad blocks fail at load naming file and key; Dify
plugin folders (manifest + provider/<id>.yaml + models: globs, nested folders) load as they are."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from arun import ModelProvider, ModelRuntime, SchemaError
from arun.entities.model import ModelType

PROVIDER_HEAD = """\
provider: {id}
label: {{en_US: Example}}
supported_model_types: [llm]
configurate_methods: [predefined-model]
provider_credential_schema:
  credential_form_schemas:
    - {{variable: api_key, label: {{en_US: Key}}, type: secret-input, required: true}}
"""

MODEL = """\
model: {name}
label: {{en_US: {name}}}
model_type: llm
features: [tool-call{extra_feature}]
model_properties: {{mode: chat, context_size: 8192}}
parameter_rules:
  - {{name: temperature, use_template: temperature}}
pricing: {{input: '1', output: '2', unit: '0.000001', currency: USD}}
"""


def provider_folder(root: Path, pid: str, block: str, models: dict[str, str] | None = None) -> Path:
    folder = root / pid
    (folder / "llm").mkdir(parents=True)
    (folder / f"{pid}.yaml").write_text(PROVIDER_HEAD.format(id=pid) + textwrap.dedent(block))
    for name, text in (models or {"m1": MODEL.format(name="m1", extra_feature="")}).items():
        (folder / "llm" / f"{name}.yaml").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("block", "key", "words"),
    [
        ("arun:\n  base_url: https://x.example\n  auth: {style: bearer, credential: api_key}\n  model_types:\n    llm: {family: nope}\n",
         "arun.model_types.llm.family", "unknown family 'nope'"),
        ("arun:\n  base_url: https://x.example\n  auth: {style: header, header: x-key, credential: token}\n  model_types:\n    llm: {family: openai_chat}\n",
         "arun.auth.credential", "credential 'token'"),
        ("arun:\n  base_url: https://x.example\n  auth: {style: bearer, credential: api_key}\n  model_names: {m1: ''}\n  model_types:\n    llm: {family: openai_chat}\n",
         "arun.model_names.m1", "maps the model to nothing"),
        ("arun:\n  base_url: https://x.example\n  auth: {style: bearer, credential: api_key}\n  model_types:\n    llm: {family: openai_chat, quirks: [made_up]}\n",
         "arun.model_types.llm.quirks", "no quirk 'made_up'"),
        ("arun:\n  base_url: https://x.example\n  auth: {style: bearer, credential: api_key}\n  typo_key: 1\n  model_types:\n    llm: {family: openai_chat}\n",
         "arun.", "typo_key"),
        ("arun:\n  auth: {style: bearer, credential: api_key}\n  model_types:\n    llm: {family: openai_chat}\n",
         "arun.model_types.llm", "no base URL"),
        ("arun:\n  base_url: https://x.example\n  auth: {style: query, credential: api_key}\n  model_types:\n    llm: {family: openai_chat}\n",
         "arun.auth.query", "query parameter"),
    ],
    ids=["unknown-family", "auth-credential-missing", "model-mapped-to-nothing", "unknown-quirk", "unknown-key", "no-base-url", "query-without-name"],
)
def test_a_bad_block_is_a_schema_error_at_load(tmp_path: Path, block: str, key: str, words: str) -> None:
    provider_folder(tmp_path, "example", block)
    rt = ModelRuntime(provider_paths=[tmp_path])
    with pytest.raises(SchemaError) as info:
        rt.get_provider("example").spec  # loading the provider, not calling it
    assert info.value.file and info.value.file.endswith("example.yaml")
    assert (info.value.key or "").startswith(key) and words in str(info.value)


def test_a_dify_folder_without_a_block_gets_the_builtin_adapter(tmp_path: Path) -> None:
    """A Dify 0.15.3 folder (YAML + Dify's Python, no __init__.py) copied next to arun's: the
    built-in provider of the same id serves it, Dify's code is ignored with a warning."""
    folder = provider_folder(tmp_path, "deepseek", "")
    (folder / "llm" / "llm.py").write_text("from core.model_runtime.model_providers.openai_api_compatible.llm.llm import OAIAPICompatLargeLanguageModel\n")
    rt = ModelRuntime(provider_paths=[tmp_path])
    llm = rt.get_model_instance("deepseek", "llm")
    assert type(llm).__name__ == "OpenAIChatLLM"
    problems = rt.get_provider("deepseek").problems
    assert any("Dify code" in p.message for p in problems)
    assert [m.model for m in rt.get_provider("deepseek").load_models(ModelType.LLM)] == ["m1"]



def test_a_dify_folder_without_a_block_gets_the_builtin_code(tmp_path: Path) -> None:
    """The built-in provider serves a Dify folder with its code too, not only its block: OpenRouter's
    LLM class (its own ``llm/llm.py``) answers for a Dify ``openrouter`` folder, whose types all
    have a family in the block."""
    provider_folder(tmp_path, "openrouter", "")
    builtin = type(ModelRuntime().get_model_instance("openrouter", "llm"))
    assert builtin.__module__ == "arun.providers.openrouter.llm.llm"
    rt = ModelRuntime(provider_paths=[tmp_path])
    assert not rt.provider_source("openrouter").builtin
    assert type(rt.get_model_instance("openrouter", "llm")) is builtin



def test_a_dify_folder_without_a_block_gets_the_builtin_provider_class(tmp_path: Path) -> None:
    """Zhipu's ModelProvider subclass (it validates with the model its form names) serves a Dify
    zhipuai folder; a folder with a block of its own is its own provider."""
    provider_folder(tmp_path / "dify", "zhipuai", "")
    assert type(ModelRuntime(provider_paths=[tmp_path / "dify"]).get_provider("zhipuai")).__name__ == "ZhipuAIProvider"
    block = "arun:\n  base_url: https://x.example\n  auth: {style: bearer, credential: api_key}\n  model_types:\n    llm: {family: openai_chat}\n"
    provider_folder(tmp_path / "own", "zhipuai", block)
    assert type(ModelRuntime(provider_paths=[tmp_path / "own"]).get_provider("zhipuai")) is ModelProvider

async def test_a_provider_that_does_not_load_is_left_out_and_recorded_once(tmp_path: Path) -> None:
    folder = provider_folder(tmp_path, "acme", "")
    (folder / "acme.yaml").write_text((folder / "acme.yaml").read_text().replace("provider: acme", "provider: other"))
    rt = ModelRuntime(provider_paths=[tmp_path])
    for _ in range(3):  # a service listing providers per request must not grow the list
        assert "acme" not in {p.provider for p in rt.get_providers()}
        assert "acme" not in {p.provider for p in await rt.get_models()}
    assert [p.file for p in rt.discovery_problems] == ["acme"]
    assert "provider 'other' != folder 'acme'" in rt.discovery_problems[0].message

def write_plugin(root: Path) -> Path:
    plugin = root / "acme"
    (plugin / "provider").mkdir(parents=True)
    (plugin / "models" / "llm" / "family_a").mkdir(parents=True)
    (plugin / "models" / "llm" / "family_b").mkdir(parents=True)
    (plugin / "manifest.yaml").write_text("name: acme\ntype: plugin\nplugins:\n  models:\n    - provider/acme.yaml\n")
    (plugin / "provider" / "acme.yaml").write_text(
        PROVIDER_HEAD.format(id="acme")
        + "models:\n  llm:\n    position: models/llm/_position.yaml\n    predefined:\n      - models/llm/family_a/*.yaml\n      - models/llm/family_b/*.yaml\n"
        + "extra:\n  python:\n    provider_source: provider/acme.py\n"
        + "arun:\n  base_url: https://api.acme.example/v1\n  auth: {style: bearer, credential: api_key}\n  model_types:\n    llm: {family: openai_chat}\n"
    )
    a, b = plugin / "models" / "llm" / "family_a", plugin / "models" / "llm" / "family_b"
    (a / "alpha.yaml").write_text(MODEL.format(name="alpha", extra_feature=", polling"))
    (a / "broken.yaml").write_text("model: broken\nmodel_type: llm\nmodel_properties: [not, a, mapping]\n")
    (a / "priced.yaml").write_text(MODEL.format(name="priced", extra_feature="").replace(", unit: '0.000001'", ""))
    (b / "beta.yaml").write_text(MODEL.format(name="beta", extra_feature=""))
    (b / "zz-alpha-again.yaml").write_text(MODEL.format(name="alpha", extra_feature="").replace("8192", "1"))
    (plugin / "models" / "llm" / "_position.yaml").write_text("- beta\n- alpha\n")
    return plugin


def test_a_dify_plugin_folder_loads_unchanged(tmp_path: Path) -> None:
    write_plugin(tmp_path)
    rt = ModelRuntime(provider_paths=[tmp_path])
    assert rt.provider_source("acme").layout == "plugin"
    provider = rt.get_provider("acme")
    models = provider.load_models(ModelType.LLM)
    assert [m.model for m in models] == ["beta", "alpha"]  # _position.yaml order, nested folders
    alpha = next(m for m in models if m.model == "alpha")
    assert alpha.property("context_size") == 8192  # the first file wins
    assert [f.value for f in alpha.features or []] == ["tool-call"]  # 'polling' dropped
    by_severity = {(p.severity, Path(p.file).name): p for p in provider.problems}
    assert ("error", "broken.yaml") in by_severity  # skipped, reported, the folder still loads
    assert ("error", "priced.yaml") in by_severity and "pricing.unit" in by_severity[("error", "priced.yaml")].message
    assert ("warning", "alpha.yaml") in by_severity and "polling" in by_severity[("warning", "alpha.yaml")].message
    assert ("warning", "zz-alpha-again.yaml") in by_severity
    assert type(provider.get_model_instance("llm")).__name__ == "OpenAIChatLLM"



def test_a_plugin_position_file_of_any_name_orders_the_models(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    provider_yaml = plugin / "provider" / "acme.yaml"
    provider_yaml.write_text(provider_yaml.read_text().replace("models/llm/_position.yaml", "models/llm/order.yaml"))
    (plugin / "models" / "llm" / "order.yaml").write_text("- alpha\n- ' beta '\n- 3\n")
    models = ModelRuntime(provider_paths=[tmp_path]).get_provider("acme").load_models(ModelType.LLM)
    assert [m.model for m in models] == ["alpha", "beta"]

def test_check_command_reports_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from arun.cli import main

    write_plugin(tmp_path)
    assert main(["providers", "--check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "priced.yaml" in out and "pricing.unit" in out and "broken.yaml" in out
    assert "acme (plugin layout" in out
