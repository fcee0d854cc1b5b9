"""Tongyi Qwen (YAML only: openai_chat / openai_embedding on DashScope's compatible mode, the rerank
family's ``dashscope`` shape on the native API) against ``arun.testing.profiles.tongyi`` over real sockets.

The quirks come from Alibaba Cloud's docs and quoted issue threads (see the profile): thinking
refused on non-streamed calls, ``reasoning_content`` deltas, DashScope's error codes in OpenAI-shaped
bodies (``Arrearage`` at HTTP 400, ``data_inspection_failed``, "Range of input length"), the native
``{"code", "message", "request_id"}`` errors of the rerank API, 10 texts per embedding request.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeContentFilteredError,
    InvokeContextLengthExceededError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import embedding_vector, rerank_score
from arun.testing.profiles.tongyi import REASONING, RERANK_PATH

PROVIDER = "tongyi"
PROFILE = "tongyi"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
QUERY = "red apple pie"
DOCS = ["a red apple pie recipe", "green pear", "red car", "apple orchard"]
CREDS = {"dashscope_api_key": VALID_KEY, "use_international_endpoint": "false"}


async def test_predefined_models_carry_the_documented_facts() -> None:
    async with ModelRuntime() as rt:
        llm = rt.get_model_instance(PROVIDER, "llm")
        models = {m.model: m for m in await llm.predefined_models()}
        assert list(models) == ["qwen-flash", "qwen-plus", "qwen3-max", "qwen3-coder-plus", "qwen3-8b"]
        qmax = models["qwen3-max"]
        assert qmax.property("context_size") == 262144
        assert next(r for r in qmax.parameter_rules if r.name == "max_tokens").max == 65536
        flash = models["qwen-flash"]
        assert flash.property("context_size") == 1_000_000
        assert flash.pricing is not None
        assert (flash.pricing.input, flash.pricing.output, flash.pricing.unit, flash.pricing.currency) == (
            Decimal("0.15"), Decimal("1.5"), Decimal("0.000001"), "RMB"
        )
        thinking = next(r for r in models["qwen3-8b"].parameter_rules if r.name == "enable_thinking")
        assert thinking.required and thinking.default is False
        emb = {m.model: m for m in await rt.get_model_instance(PROVIDER, "text-embedding").predefined_models()}
        assert emb["text-embedding-v4"].property("max_chunks") == 10
        assert emb["text-embedding-v4"].property("context_size") == 8192
        rerank = {m.model: m for m in await rt.get_model_instance(PROVIDER, "rerank").predefined_models()}
        assert rerank["gte-rerank-v2"].property("context_size") == 4000


async def test_the_region_radio_moves_every_type_to_the_same_host() -> None:
    async with ModelRuntime() as rt:
        urls = {}
        for kind, model in (("llm", "qwen-flash"), ("text-embedding", "text-embedding-v4"), ("rerank", "gte-rerank-v2")):
            endpoint = rt.get_model_instance(PROVIDER, kind).endpoint
            urls[kind] = (endpoint.url(CREDS, model), endpoint.url({**CREDS, "use_international_endpoint": "true"}, model))
    assert urls["llm"] == (
        "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions",
    )
    assert urls["text-embedding"][1] == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/embeddings"
    assert urls["rerank"] == (
        "https://dashscope.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank",
        "https://dashscope-intl.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank",
    )


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke("qwen-plus", CREDS, MESSAGES, {"max_tokens": 64, "top_k": 20}, stream=True)
    chunks = [c async for c in result]
    req = upstream.last_request
    assert (req.profile, req.path) == ("tongyi", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    body = req.json
    assert body["model"] == "qwen-plus" and body["max_tokens"] == 64 and body["top_k"] == 20
    # the required rule sends thinking off unless asked, and usage is asked for on the last chunk
    assert body["enable_thinking"] is False
    assert body["stream_options"] == {"include_usage": True}
    assert chunks[-1].delta.usage is not None and all(c.delta.usage is None for c in chunks[:-1])


async def test_open_source_qwen3_non_stream_works_because_thinking_is_sent_off(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke("qwen3-8b", CREDS, MESSAGES, {}, stream=False)
    assert result.message.content and result.reasoning_content is None
    assert upstream.last_request.json["enable_thinking"] is False


async def test_thinking_on_a_non_streamed_call_is_a_bad_request(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeBadRequestError) as info:
        await llm.invoke("qwen-plus", CREDS, MESSAGES, {"enable_thinking": True}, stream=False)
    assert info.value.status == 400
    assert "enable_thinking must be set to false for non-streaming calls" in str(info.value)


async def test_streamed_thinking_keeps_reasoning_out_of_the_content(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    plain = await llm.invoke("qwen-plus", CREDS, MESSAGES, {}, stream=False)
    stream = await llm.invoke("qwen-plus", CREDS, MESSAGES, {"enable_thinking": True, "thinking_budget": 256}, stream=True)
    chunks = [c async for c in stream]
    assert upstream.last_request.json["thinking_budget"] == 256
    text = "".join(c.delta.message.content or "" for c in chunks)
    assert text == plain.message.content
    assert not any(piece in text for piece in REASONING)
    assert chunks[-1].delta.finish_reason == "stop" and chunks[-1].delta.usage is not None


@pytest.mark.parametrize("stream", [False, True])
async def test_arrearage_at_400_is_quota_exhausted(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=400, error_type="arrearage"))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeQuotaExhaustedError) as info:
        await llm.invoke("qwen-flash", CREDS, MESSAGES, {}, stream=stream)
    assert info.value.status == 400 and "Arrearage" in str(info.value)


async def test_moderation_and_context_length_codes(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    upstream.faults.push(Fault(status=400, error_type="data_inspection_failed"))
    with pytest.raises(InvokeContentFilteredError):
        await llm.invoke("qwen-flash", CREDS, MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    with pytest.raises(InvokeContextLengthExceededError) as info:
        await llm.invoke("qwen-flash", CREDS, MESSAGES, {}, stream=True)
    assert "Range of input length" in str(info.value)
    upstream.faults.push(Fault(status=400))  # a plain invalid parameter stays a bad request
    with pytest.raises(InvokeBadRequestError) as plain:
        await llm.invoke("qwen-flash", CREDS, MESSAGES, {}, stream=False)
    assert type(plain.value) is InvokeBadRequestError


async def test_compatible_mode_auth_and_rate_limit(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as auth:
        await llm.invoke("qwen-flash", {**CREDS, "dashscope_api_key": "invalid-key"}, MESSAGES, {}, stream=False)
    assert "Incorrect API key provided" in str(auth.value) and "invalid-key" not in str(auth.value)
    upstream.faults.push(Fault(status=429, retry_after=3))
    with pytest.raises(InvokeRateLimitError) as limited:
        await llm.invoke("qwen-flash", CREDS, MESSAGES, {}, stream=True)
    assert type(limited.value) is InvokeRateLimitError and limited.value.retry_after == 3


async def test_embeddings_are_sent_ten_at_a_time(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    texts = [f"text number {i}" for i in range(23)]
    result = await emb.invoke("text-embedding-v4", CREDS, texts)
    assert len(result.embeddings) == 23 and result.embeddings[22] == embedding_vector("text number 22", 8)
    sent = [r.json for r in upstream.requests if r.path == "/v1/embeddings"]
    assert sorted(len(b["input"]) for b in sent) == [3, 10, 10]
    assert all(b["encoding_format"] == "float" and b["model"] == "text-embedding-v4" for b in sent)
    assert result.usage.currency == "RMB" and result.usage.unit_price == Decimal("0.5")


async def test_embedding_batch_over_ten_is_refused_by_the_upstream(upstream: Any) -> None:
    """The limit is the upstream's: a user-added model told it may send 16 gets the 400."""
    async with ModelRuntime(endpoint_overrides={PROVIDER: f"{upstream.url}/p/tongyi"}) as rt:
        emb = rt.get_model_instance(PROVIDER, "text-embedding")
        creds = {"dashscope_api_key": VALID_KEY, "context_size": "8192", "max_chunks": "16"}
        with pytest.raises(InvokeBadRequestError) as info:
            await emb.invoke("my-embedding", creds, [f"t{i}" for i in range(11)])
    assert "should not be larger than 10" in str(info.value)


async def test_rerank_speaks_the_native_api(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke("gte-rerank-v2", CREDS, QUERY, DOCS, top_n=3)
    req = upstream.last_request
    assert req.path == RERANK_PATH and req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json == {
        "model": "gte-rerank-v2",
        "input": {"query": QUERY, "documents": DOCS},
        "parameters": {"top_n": 3, "return_documents": True},
    }
    expected = sorted(((rerank_score(QUERY, d), i) for i, d in enumerate(DOCS)), key=lambda x: (-x[0], x[1]))[:3]
    assert [(d.score, d.index) for d in result.docs] == expected
    assert all(d.text == DOCS[d.index] for d in result.docs)


async def test_rerank_native_errors(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    with pytest.raises(InvokeAuthorizationError) as auth:
        await rr.invoke("gte-rerank-v2", {**CREDS, "dashscope_api_key": "invalid-key"}, QUERY, DOCS)
    assert auth.value.status == 401 and "Invalid API-key provided." in str(auth.value)
    assert auth.value.body is not None and '"code":"InvalidApiKey"' in auth.value.body
    upstream.faults.push(Fault(status=400, error_type="arrearage"), path=RERANK_PATH)
    with pytest.raises(InvokeQuotaExhaustedError):
        await rr.invoke("gte-rerank-v2", CREDS, QUERY, DOCS)
    upstream.faults.push(Fault(status=429), path=RERANK_PATH)
    with pytest.raises(InvokeRateLimitError) as limited:
        await rr.invoke("gte-rerank-v2", CREDS, QUERY, DOCS)
    assert "Requests rate limit exceeded" in str(limited.value)


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "qwen-flash"  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {**CREDS, "dashscope_api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)


async def test_customizable_llm_reads_dify_tongyi_form(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    creds = {"dashscope_api_key": VALID_KEY, "context_size": "32768", "max_tokens": "2048", "function_calling_type": "function_call"}
    schema = await llm.get_model_schema("qwen-plus-2025-07-28", creds)
    assert schema is not None and schema.property("context_size") == 32768
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 2048
    result = await llm.invoke("qwen-plus-2025-07-28", creds, MESSAGES, {}, stream=False)
    assert result.message.content and upstream.last_request.json["model"] == "qwen-plus-2025-07-28"


async def test_a_typo_in_an_error_code_table_is_named(tmp_path: Path, upstream: Any) -> None:
    """``error_codes`` names Invoke classes; an unknown one is a SchemaError at load naming file and key."""
    import yaml

    from arun import SchemaError

    folder = tmp_path / "codes_typo"
    folder.mkdir()
    (folder / "codes_typo.yaml").write_text(yaml.safe_dump({
        "provider": "codes_typo",
        "label": {"en_US": "Codes typo"},
        "supported_model_types": ["llm"],
        "configurate_methods": ["customizable-model"],
        "model_credential_schema": {
            "model": {"label": {"en_US": "Model"}},
            "credential_form_schemas": [{"variable": "api_key", "label": {"en_US": "Key"}, "type": "secret-input", "required": True}],
        },
        "arun": {
            "base_url": f"{upstream.url}/p/tongyi/compatible-mode/v1",
            "auth": {"style": "bearer", "credential": "api_key"},
            "error_codes": {"Arrearage": "InvokeArrearsError"},
            "model_types": {"llm": {"family": "openai_chat", "schema": "credentials"}},
        },
    }))
    rt = ModelRuntime(provider_paths=[str(tmp_path)])
    with pytest.raises(SchemaError) as info:
        rt.get_model_instance("codes_typo", "llm")
    assert info.value.key == "arun.error_codes.Arrearage" and "InvokeArrearsError" in str(info.value)
    assert (info.value.file or "").endswith("codes_typo.yaml")
    assert upstream.stats.total == 0
