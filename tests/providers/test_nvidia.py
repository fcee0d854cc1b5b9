"""NVIDIA's API catalog (YAML only: openai_chat, openai_embedding, rerank) against its simulator profile.

The quirks are sent by ``arun.testing.profiles.nvidia`` (sources in its docstring): RFC 7807
problem-details error bodies, ``input_type`` required by the QA embedding models, and the ranking
API on its own host and per-model path with ``rankings[].logit`` answers.  Dify's form has only
``api_key``, so the base URL is moved with ``endpoint_overrides`` (origin replaced, path kept).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeModelNotFoundError,
    InvokeRateLimitError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.entities.embedding import EmbeddingInputType
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import rerank_score

PROVIDER = "nvidia"
PROFILE = "nvidia"
LLM = "meta/llama-3.3-70b-instruct"
EMB = "nvidia/nv-embedqa-e5-v5"
RERANK = "nvidia/llama-nemotron-rerank-1b-v2"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
QUERY = "GPU memory bandwidth of H100"
DOCS = ["The H100 memory bandwidth is 3 TB/s", "A100 is fast", "bananas are yellow", "GPU memory matters"]
CREDS = {"api_key": VALID_KEY}


async def test_predefined_models_carry_the_documented_limits(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    models = {m.model: m for m in await llm.predefined_models()}
    assert list(models) == [LLM, "nvidia/llama-3.3-nemotron-super-49b-v1.5", "openai/gpt-oss-120b"]
    llama = models[LLM]
    assert llama.property("context_size") == 131072
    assert next(r for r in llama.parameter_rules if r.name == "max_tokens").max == 4096
    assert llama.pricing is None  # a free trial service publishes no per-token price
    gpt = models["openai/gpt-oss-120b"]
    assert next(r for r in gpt.parameter_rules if r.name == "reasoning_effort").options == ["low", "medium", "high"]
    emb = {m.model: m for m in await rt.get_model_instance(PROVIDER, "text-embedding").predefined_models()}
    assert emb[EMB].property("context_size") == 512
    assert emb["nvidia/llama-nemotron-embed-1b-v2"].property("context_size") == 8192
    rr = await rt.get_model_instance(PROVIDER, "rerank").predefined_models()
    assert [m.model for m in rr] == [RERANK] and rr[0].property("context_size") == 8192


async def test_chat_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    result = await llm.invoke(LLM, CREDS, MESSAGES, {"max_tokens": 64, "temperature": 0.5}, stream=False)
    req = upstream.last_request
    assert (req.path, req.profile) == ("/v1/chat/completions", "nvidia")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert (req.json["model"], req.json["max_tokens"], req.json["temperature"]) == (LLM, 64, 0.5)
    assert result.message.content and result.usage.completion_tokens > 0


# -- problem-details errors ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limit_without_detail_reads_the_title(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(status=429))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeRateLimitError) as info:
        await llm.invoke(LLM, CREDS, MESSAGES, {}, stream=stream)
    assert info.value.status == 429 and "Too Many Requests" in str(info.value)
    assert info.value.body is not None and '"title":"Too Many Requests"' in info.value.body


async def test_forbidden_is_an_authorization_error_with_the_detail(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(status=403))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as info:
        await llm.invoke(LLM, CREDS, MESSAGES, {}, stream=False)
    assert info.value.status == 403 and "Authorization failed" in str(info.value)


async def test_unknown_function_is_model_not_found(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(status=404))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeModelNotFoundError) as info:
        await llm.invoke(LLM, CREDS, MESSAGES, {}, stream=False)
    assert "Not found for account" in str(info.value)


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == LLM  # arun.validate_model
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)
    assert "Authentication failed" in str(info.value.__cause__)  # the problem-details body's detail


# -- embeddings: input_type ----------------------------------------------------------------------


@pytest.mark.parametrize(("input_type", "wire"), [(EmbeddingInputType.QUERY, "query"), (EmbeddingInputType.DOCUMENT, "passage")])
async def test_embeddings_send_input_type_by_input_kind(
    rt: ModelRuntime, upstream: Any, input_type: EmbeddingInputType, wire: str
) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke(EMB, CREDS, ["first text", "a second text"], None, input_type)
    req = upstream.last_request
    assert req.path == "/v1/embeddings" and req.json["input_type"] == wire
    assert req.json["truncate"] == "END" and req.json["encoding_format"] == "float"
    assert "task" not in req.json
    assert len(result.embeddings) == 2 and result.usage.tokens == 5


async def test_the_profile_refuses_qa_embeddings_without_input_type(rt: ModelRuntime, upstream: Any) -> None:
    """The quirk is real in the simulator: without the task mapping the request fails."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{upstream.url}/p/nvidia/v1/embeddings",
            json={"model": EMB, "input": ["x"]},
            headers={"Authorization": f"Bearer {VALID_KEY}"},
        ) as resp:
            assert resp.status == 400
            assert "input_type" in (await resp.json())["error"]["message"]


# -- ranking API ---------------------------------------------------------------------------------


async def test_rerank_on_the_ranking_api(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke(RERANK, CREDS, QUERY, DOCS, None, 3)
    req = upstream.last_request
    assert req.path == "/v1/retrieval/reranking"  # the profile's ranking route (it checks the per-model path)
    assert req.json["query"] == {"text": QUERY}
    assert req.json["passages"] == [{"text": d} for d in DOCS] and req.json["model"] == RERANK
    assert req.json["truncate"] == "END" and "top_n" not in req.json and "documents" not in req.json
    assert [d.index for d in result.docs] == [0, 3, 1]  # best first, cut to top_n
    for doc in result.docs:
        assert 0 < doc.score < 1 and doc.text == DOCS[doc.index]
    # the server sends logits (the simulator's: log-odds of the word overlap, 3/5 -> 0.405); the score is their sigmoid
    logit = math.log(0.6 / 0.4)
    assert rerank_score(QUERY, DOCS[0]) == pytest.approx(0.6)
    assert result.docs[0].score == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-4)


async def test_rerank_threshold_applies_to_the_sigmoid_score(rt: ModelRuntime) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke(RERANK, CREDS, QUERY, DOCS, 0.5, None)
    # scores 0.6, 0.4, ~0.001, ~0.001: only the first passes 0.5 (the raw logits, 0.405 and below, would all fall under it)
    assert [d.index for d in result.docs] == [0]
