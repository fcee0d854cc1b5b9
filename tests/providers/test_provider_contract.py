"""The provider contract through the built-in providers: what their folders hold, fetch-from-remote,
per-call extras, URLs that carry a query, provider folders from user paths and Dify plugin folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arun import FetchFrom, ModelRuntime, ParameterValidationError, UserPromptMessage
from arun.testing import Fault
from arun.testing.cases import VALID_KEY

MESSAGES = [UserPromptMessage(content="Hello there friend")]


def _builtin_folders() -> dict[str, Path]:
    import arun.providers

    found: dict[str, Path] = {}
    for root in arun.providers.__path__:
        for folder in sorted(Path(root).iterdir()):
            if folder.is_dir() and not folder.name.startswith(("_", ".")):
                found.setdefault(folder.name, folder)
    return found


BUILTIN = _builtin_folders()
#: the built-in providers that ship Python beside their YAML; every other one is YAML only
SHIPS_CODE = {"azure_openai", "localai", "minimax", "openrouter", "xinference", "zhipuai"}
#: providers whose number of files is pinned, so that a model file added or lost is noticed
FILE_COUNT = {"chatglm": 7, "deepseek": 4, "groq": 9, "upstage": 10, "nvidia_nim": 1, "openllm": 1, "togetherai": 1, "vllm": 1}


def test_the_folders_listed_are_the_builtin_providers() -> None:
    runtime = ModelRuntime()
    assert set(BUILTIN) == {name for name in runtime.provider_names() if runtime.provider_source(name).builtin}
    assert set(BUILTIN) >= SHIPS_CODE | set(FILE_COUNT)


@pytest.mark.parametrize("provider", sorted(BUILTIN))
def test_a_builtin_provider_is_yaml_only_unless_it_ships_code(provider: str) -> None:
    folder = BUILTIN[provider]
    files = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
    if provider in SHIPS_CODE:
        files = [p for p in files if "__pycache__" not in p.parts]  # compiled when the tests import it
        assert {p.suffix for p in files} == {".yaml", ".py"}
    else:
        assert {p.suffix for p in files} == {".yaml"}
    assert Path(f"{provider}.yaml") in files
    if provider in FILE_COUNT:
        assert len(files) == FILE_COUNT[provider]


async def test_fetch_from_remote_lists_fine_tunes_with_their_base_schema(rt: ModelRuntime, upstream: Any) -> None:
    creds = {"openai_api_key": VALID_KEY, "openai_api_base": upstream.url}
    models = await rt.get_provider("openai").remote_models(rt.get_provider("openai").get_model_instance("llm").model_type, creds)
    by_id = {m.model: m for m in models}
    tune = by_id["ft:gpt-4o-mini-2024-07-18:acme::sim42"]
    base = await rt.get_model_instance("openai", "llm").get_model_schema("gpt-4o-mini")
    assert tune.fetch_from is FetchFrom.FETCH_FROM_REMOTE
    assert (tune.model_properties, tune.pricing, tune.parameter_rules) == (base.model_properties, base.pricing, base.parameter_rules)
    assert "whisper-1" not in by_id  # not an LLM arun knows: left out
    assert upstream.last_request.path == "/v1/models"
    # and the fine-tune can be called by its id
    llm = rt.get_model_instance("openai", "llm")
    result = await llm.invoke(tune.model, creds, MESSAGES, {}, stream=False)
    assert upstream.last_request.json["model"] == tune.model and result.message.content


async def test_extra_headers_and_body_reach_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    creds = {"openai_api_key": VALID_KEY, "openai_api_base": upstream.url}
    llm = rt.get_model_instance("openai", "llm")
    stream = await llm.invoke(
        "gpt-4o-mini", creds, MESSAGES, {}, stream=True,
        extra_headers={"HTTP-Referer": "https://example.org", "X-Title": "arun tests"}, extra_body={"seed": 7},
    )  # fmt: skip
    async with stream:
        async for _ in stream:
            pass
    req = upstream.last_request
    assert req.headers["HTTP-Referer"] == "https://example.org" and req.headers["X-Title"] == "arun tests"
    assert req.json["seed"] == 7 and req.headers["Authorization"] == f"Bearer {VALID_KEY}"


@pytest.mark.parametrize("header", ["Authorization", "authorization", "Content-Type"])
async def test_extra_headers_never_replace_the_credentials(rt: ModelRuntime, upstream: Any, header: str) -> None:
    creds = {"openai_api_key": VALID_KEY, "openai_api_base": upstream.url}
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(ParameterValidationError) as info:
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, {}, stream=False, extra_headers={header: "Bearer stolen"})
    assert info.value.parameter == "extra_headers"
    assert upstream.stats.total == 0


async def test_anthropic_extra_header_cannot_replace_x_api_key(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance("anthropic", "llm")
    creds = {"anthropic_api_key": VALID_KEY, "anthropic_api_url": upstream.url}
    with pytest.raises(ParameterValidationError):
        await llm.invoke("claude-3-5-haiku-20241022", creds, MESSAGES, {}, stream=False, extra_headers={"X-Api-Key": "other"})


async def test_extra_body_may_not_set_stream(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance("openai", "llm")
    creds = {"openai_api_key": VALID_KEY, "openai_api_base": upstream.url}
    with pytest.raises(ParameterValidationError):
        await llm.invoke("gpt-4o-mini", creds, MESSAGES, {}, stream=True, extra_body={"stream": False})


async def test_compatible_endpoint_keeps_its_query_string(rt: ModelRuntime, upstream: Any) -> None:
    """Issue 10 fault 10: an endpoint that needs ?api-version= keeps it; the path goes before it."""
    llm = rt.get_model_instance("openai_api_compatible", "llm")
    creds = {"endpoint_url": f"{upstream.url}/p/plain/v1?api-version=2024-10-21", "api_key": VALID_KEY, "mode": "chat"}
    await llm.invoke("my-model", creds, MESSAGES, {}, stream=False)
    req = upstream.last_request
    assert req.path == "/v1/chat/completions" and req.query == {"api-version": "2024-10-21"}


async def test_a_user_folder_overrides_a_builtin_provider(tmp_path: Path, upstream: Any) -> None:
    import shutil

    import arun.providers

    source = next(Path(p) / "deepseek" for p in arun.providers.__path__ if (Path(p) / "deepseek").is_dir())
    shutil.copytree(source, tmp_path / "deepseek")
    model = tmp_path / "deepseek" / "llm" / "deepseek-flash.yaml"
    model.write_text(model.read_text().replace("context_size: 1000000", "context_size: 4096"))
    async with ModelRuntime(provider_paths=[tmp_path]) as rt:
        schema = await rt.get_model_instance("deepseek", "llm").get_model_schema("deepseek-flash")
        assert schema is not None and schema.property("context_size") == 4096
        assert not rt.provider_source("deepseek").builtin


async def test_environment_variable_adds_providers_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "acme_llm"
    folder.mkdir()
    (folder / "acme_llm.yaml").write_text(
        "provider: acme_llm\nlabel: {en_US: Acme}\nsupported_model_types: [llm]\n"
        "configurate_methods: [customizable-model]\n"
        "model_credential_schema:\n  model: {label: {en_US: Model}}\n  credential_form_schemas:\n"
        "    - {variable: api_key, label: {en_US: Key}, type: secret-input, required: false}\n"
        "    - {variable: endpoint_url, label: {en_US: URL}, type: text-input, required: true}\n"
        "arun:\n  base_url_credential: endpoint_url\n  auth: {style: bearer, credential: api_key, optional: true}\n"
        "  model_types:\n    llm: {family: openai_chat}\n"
    )
    monkeypatch.setenv("ARUN_PROVIDERS_PATH", str(tmp_path))
    rt = ModelRuntime()
    assert "acme_llm" in rt.provider_names()
    assert type(rt.get_model_instance("acme_llm", "llm")).__name__ == "OpenAIChatLLM"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_short_key_echoed_by_the_upstream_never_reaches_the_caller(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    """Issue 10 fault 2: a 6-character key the upstream echoes in its 401 body is masked in the
    error's text, body, repr and traceback (the call's own secret values, whatever their length)."""
    import traceback

    from arun import InvokeAuthorizationError

    key = "k3y9zq"
    body = b'{"error": {"message": "Incorrect API key provided: k3y9zq.", "type": "invalid_request_error", "code": "invalid_api_key"}}'
    upstream.faults.push(Fault(status=401, body=body))
    llm = rt.get_model_instance("openai", "llm")
    with pytest.raises(InvokeAuthorizationError) as info:
        await llm.invoke("gpt-4o-mini", {"openai_api_key": key, "openai_api_base": upstream.url}, MESSAGES, {}, stream=stream)
    err = info.value
    shown = [str(err), repr(err), err.body or "", "".join(traceback.format_exception(err))]
    assert all(key not in text for text in shown)
    assert "Incorrect API key provided" in (err.body or "")  # the message survives, the key does not


async def test_validation_masks_the_short_key_too(rt: ModelRuntime, upstream: Any) -> None:
    from arun import CredentialsValidateFailedError

    key = "k3y9zq"
    upstream.faults.push(Fault(status=401, body=b'{"error": {"message": "bad key k3y9zq"}}'))
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate("openai", {"openai_api_key": key, "openai_api_base": upstream.url})
    import traceback

    assert key not in str(info.value) and key not in "".join(traceback.format_exception(info.value))
