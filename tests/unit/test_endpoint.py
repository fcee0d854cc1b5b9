"""``Endpoint``: URLs, auth and headers from a provider's ``arun:`` block, and ``resolve``, which
keeps what a call's credentials make of them per value of the fields that matter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arun.entities.model import ModelType
from arun.errors import InvokeBadRequestError, ParameterValidationError
from arun.families import FAMILIES, QUIRKS
from arun.families.endpoint import Endpoint, join_url
from arun.redact import redact
from arun.schema.spec import parse_provider_spec

CREDENTIALS = ["api_key", "endpoint_url", "api_version", "deployment", "org"]


def endpoint(block: dict[str, Any], override: str | None = None) -> Endpoint:
    spec = parse_provider_spec(
        block, Path("demo.yaml"), credential_variables=CREDENTIALS, supported=[ModelType.LLM], families=FAMILIES, quirks=QUIRKS
    )
    type_spec = spec.for_type(ModelType.LLM)
    assert type_spec is not None
    return Endpoint("demo", spec, type_spec, "/chat/completions", override)


AZURE_LIKE = {
    "base_url_credential": "endpoint_url",
    "auth": {"style": "header", "credential": "api_key", "header": "api-key"},
    "query": {"api-version": {"credential": "api_version", "default": "2024-10-21"}},
    "header_credentials": {"OpenAI-Organization": "org"},
    "model_name_credential": "deployment",
    "model_types": {"llm": {"family": "openai_chat", "path": "/openai/deployments/{model}/chat/completions"}},
}


def test_join_keeps_the_base_query_and_puts_the_path_before_it() -> None:
    assert join_url("https://h/v1?api-version=1", "/chat/completions") == "https://h/v1/chat/completions?api-version=1"
    assert join_url("https://h/v1/", "/x", (("k", "v"),)) == "https://h/v1/x?k=v"


def test_resolve_builds_url_headers_and_the_upstream_model() -> None:
    ep = endpoint(AZURE_LIKE)
    creds = {"api_key": "azure-key-0001", "endpoint_url": "https://res.openai.azure.com", "deployment": "my-gpt", "org": "o1"}
    url, headers, wire = ep.resolve(creds, "gpt-4o", extra={"X-Trace": "t1"})
    assert url == "https://res.openai.azure.com/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21"
    assert headers == {"Content-Type": "application/json", "OpenAI-Organization": "o1", "X-Trace": "t1", "api-key": "azure-key-0001"}
    assert wire == "my-gpt"


def test_resolve_follows_every_field_that_matters() -> None:
    ep = endpoint(AZURE_LIKE)
    base = {"api_key": "azure-key-0001", "endpoint_url": "https://a.example", "deployment": "d1"}
    first = ep.resolve(base, "m")
    assert ep.resolve(dict(base), "m") == first  # equal credentials, a new dict: the same answer
    changed = {
        "api_key": ep.resolve({**base, "api_key": "azure-key-0002"}, "m")[1]["api-key"],
        "endpoint_url": ep.resolve({**base, "endpoint_url": "https://b.example"}, "m")[0],
        "deployment": ep.resolve({**base, "deployment": "d2"}, "m")[2],
        "api_version": ep.resolve({**base, "api_version": "2025-01-01"}, "m")[0],
        "org": ep.resolve({**base, "org": "o9"}, "m")[1].get("OpenAI-Organization"),
    }
    assert changed == {
        "api_key": "azure-key-0002",
        "endpoint_url": "https://b.example/openai/deployments/d1/chat/completions?api-version=2024-10-21",
        "deployment": "d2",
        "api_version": "https://a.example/openai/deployments/d1/chat/completions?api-version=2025-01-01",
        "org": "o9",
    }
    assert ep.resolve(base, "m") == first


def test_the_answer_is_a_copy_and_extras_never_stick() -> None:
    ep = endpoint(AZURE_LIKE)
    creds = {"api_key": "azure-key-0001", "endpoint_url": "https://a.example", "deployment": "d1"}
    _, headers, _ = ep.resolve(creds, "m", extra={"X-One": "1"})
    headers["X-Mutated"] = "yes"
    _, again, _ = ep.resolve(creds, "m")
    assert "X-One" not in again and "X-Mutated" not in again


def test_bad_credentials_fail_every_time() -> None:
    ep = endpoint(AZURE_LIKE)
    bad = {"api_key": "azure-key-0001", "endpoint_url": "ftp://nope", "deployment": "d1"}
    for _ in range(2):
        with pytest.raises(InvokeBadRequestError, match="must start with http"):
            ep.resolve(bad, "m")
    missing = {"endpoint_url": "https://a.example", "deployment": "d1"}
    for _ in range(2):
        with pytest.raises(InvokeBadRequestError, match="credential api_key is required"):
            ep.resolve(missing, "m")
    creds = {"api_key": "azure-key-0001", "endpoint_url": "https://a.example", "deployment": "d1"}
    with pytest.raises(ParameterValidationError, match="must not set .API-Key."):
        ep.resolve(creds, "m", extra={"API-Key": "other"})  # the auth header, in any case


def test_an_unhashable_credential_value_is_resolved_without_keeping_it() -> None:
    ep = endpoint(AZURE_LIKE)
    creds: dict[str, Any] = {"api_key": "azure-key-0001", "endpoint_url": "https://a.example", "deployment": "d1", "org": ["x"]}
    url, headers, _ = ep.resolve(creds, "m")
    assert url.startswith("https://a.example/") and "OpenAI-Organization" not in headers  # a non-string header value is not sent


def test_a_key_seen_through_resolve_stays_redacted() -> None:
    ep = endpoint({"base_url": "https://api.example/v1", "auth": {"style": "bearer", "credential": "api_key"},
                   "model_types": {"llm": {"family": "openai_chat"}}})  # fmt: skip
    key = "sk-resolve-secret-000111"
    for _ in range(3):
        url, headers, _ = ep.resolve({"api_key": key}, "m")
    assert headers["Authorization"] == f"Bearer {key}" and url == "https://api.example/v1/chat/completions"
    assert key not in redact(f"upstream said: bad key {key}")


def test_runtime_override_and_query_auth() -> None:
    ep = endpoint({"base_url": "https://generativelanguage.example/v1beta", "auth": {"style": "query", "credential": "api_key", "query": "key"},
                   "model_types": {"llm": {"family": "openai_chat"}}}, override="http://127.0.0.1:9999")  # fmt: skip
    url, headers, _ = ep.resolve({"api_key": "query-key-0001"}, "m")
    assert url == "http://127.0.0.1:9999/v1beta/chat/completions?key=query-key-0001"
    assert "Authorization" not in headers
