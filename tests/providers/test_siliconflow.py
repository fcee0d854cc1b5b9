"""SiliconFlow (YAML only: openai_chat, openai_embedding, rerank, openai_transcription, openai_speech)
against ``arun.testing.profiles.siliconflow`` over real sockets.

The quirks come from docs.siliconflow.cn / docs.siliconflow.com and quoted bodies (see the profile):
``{"code", "message", "data"}`` error bodies with code 30001 for an empty balance at HTTP 403, a bare
JSON string for a bad key, Qwen3 thinking by default with ``reasoning_content``, a rerank answer with
``tokens`` and no document text unless asked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeModelNotFoundError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    ModelRuntime,
    UserPromptMessage,
)
from arun.testing import Fault
from arun.testing.cases import VALID_KEY
from arun.testing.content import audio_bytes, embedding_vector, rerank_score, transcript_text

PROVIDER = "siliconflow"
PROFILE = "siliconflow"
MESSAGES = [UserPromptMessage(content="Hello there friend")]
CREDS = {"api_key": VALID_KEY}
QUERY = "red apple pie"
DOCS = ["a red apple pie recipe", "green pear", "red car", "apple orchard"]


async def test_predefined_models_carry_hf_style_ids_and_documented_facts() -> None:
    async with ModelRuntime() as rt:
        llm = {m.model: m for m in await rt.get_model_instance(PROVIDER, "llm").predefined_models()}
        assert list(llm) == [
            "Qwen/Qwen3-8B", "deepseek-ai/DeepSeek-V3.2", "Qwen/Qwen3-235B-A22B-Instruct-2507", "zai-org/GLM-4.6"
        ]
        big = llm["Qwen/Qwen3-235B-A22B-Instruct-2507"]
        assert big.property("context_size") == 262144
        assert big.pricing is not None and (big.pricing.input, big.pricing.output, big.pricing.currency) == (
            Decimal("2.5"), Decimal("10"), "RMB"
        )
        free = llm["Qwen/Qwen3-8B"].pricing
        assert free is not None and (free.input, free.output) == (Decimal("0"), Decimal("0"))
        budget = next(r for r in llm["Qwen/Qwen3-8B"].parameter_rules if r.name == "thinking_budget")
        assert (budget.min, budget.max) == (128, 32768)
        emb = {m.model: m for m in await rt.get_model_instance(PROVIDER, "text-embedding").predefined_models()}
        assert emb["BAAI/bge-m3"].property("context_size") == 8192
        assert emb["Qwen/Qwen3-Embedding-8B"].property("context_size") == 32768
        rerank = [m.model for m in await rt.get_model_instance(PROVIDER, "rerank").predefined_models()]
        assert rerank == ["BAAI/bge-reranker-v2-m3", "Qwen/Qwen3-Reranker-8B"]
        tts = (await rt.get_model_instance(PROVIDER, "tts").predefined_models())[0]
        assert tts.model == "FunAudioLLM/CosyVoice2-0.5B"
        assert tts.property("default_voice") == "FunAudioLLM/CosyVoice2-0.5B:alex"
        assert len(tts.property("voices")) == 8
        stt = [m.model for m in await rt.get_model_instance(PROVIDER, "speech2text").predefined_models()]
        assert stt == ["FunAudioLLM/SenseVoiceSmall"]


async def test_the_region_radio_picks_the_host() -> None:
    async with ModelRuntime() as rt:
        endpoint = rt.get_model_instance(PROVIDER, "rerank").endpoint
        assert endpoint.url(CREDS, "BAAI/bge-reranker-v2-m3") == "https://api.siliconflow.cn/v1/rerank"
        assert endpoint.url({**CREDS, "use_international_endpoint": "true"}, "x") == "https://api.siliconflow.com/v1/rerank"


async def test_request_on_the_wire(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    await llm.invoke("deepseek-ai/DeepSeek-V3.2", CREDS, MESSAGES, {"max_tokens": 100, "top_k": 40, "enable_thinking": False}, stream=False)
    req = upstream.last_request
    assert (req.profile, req.path) == ("siliconflow", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {VALID_KEY}"
    assert req.json["model"] == "deepseek-ai/DeepSeek-V3.2"  # the HF-style id goes out as it is
    assert (req.json["max_tokens"], req.json["top_k"], req.json["enable_thinking"]) == (100, 40, False)


@pytest.mark.parametrize("stream", [False, True])
async def test_qwen3_thinks_by_default_and_reasoning_stays_out_of_the_content(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    from arun.testing.profiles.siliconflow import REASONING

    llm = rt.get_model_instance(PROVIDER, "llm")
    direct = await llm.invoke("Qwen/Qwen3-8B", CREDS, MESSAGES, {"enable_thinking": False}, stream=False)
    assert direct.reasoning_content is None
    result = await llm.invoke("Qwen/Qwen3-8B", CREDS, MESSAGES, {}, stream=stream)
    assert "enable_thinking" not in upstream.last_request.json  # unset: the server's default (thinking)
    if stream:
        text = "".join([c.delta.message.content or "" async for c in result])
    else:
        assert result.reasoning_content == "".join(REASONING)
        text = result.message.content
    assert text == direct.message.content


@pytest.mark.parametrize("stream", [False, True])
async def test_empty_balance_code_at_403_is_quota_exhausted(rt: ModelRuntime, upstream: Any, stream: bool) -> None:
    upstream.faults.push(Fault(error_type="insufficient_balance", status=403))
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeQuotaExhaustedError) as info:
        await llm.invoke("Qwen/Qwen3-8B", CREDS, MESSAGES, {}, stream=stream)
    assert info.value.status == 403 and "account balance is insufficient" in str(info.value)


async def test_error_bodies(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    with pytest.raises(InvokeAuthorizationError) as auth:
        await llm.invoke("Qwen/Qwen3-8B", {"api_key": "invalid-key"}, MESSAGES, {}, stream=False)
    assert "Api key is invalid" in str(auth.value)
    upstream.faults.push(Fault(error_type="model_not_found", status=400))  # code 20012 at HTTP 400
    with pytest.raises(InvokeModelNotFoundError):
        await llm.invoke("Qwen/Qwen3-8B", CREDS, MESSAGES, {}, stream=False)
    upstream.faults.push(Fault(status=429, retry_after=1))
    with pytest.raises(InvokeRateLimitError) as limited:
        await llm.invoke("Qwen/Qwen3-8B", CREDS, MESSAGES, {}, stream=True)
    assert type(limited.value) is InvokeRateLimitError and "rate limiting" in str(limited.value)
    upstream.faults.push(Fault(status=503))
    with pytest.raises(InvokeServerUnavailableError):
        await llm.invoke("Qwen/Qwen3-8B", CREDS, MESSAGES, {}, stream=False)


async def test_embeddings_one_text_per_request(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance(PROVIDER, "text-embedding")
    result = await emb.invoke("BAAI/bge-m3", CREDS, ["one text", "two texts here"])
    assert result.embeddings == [embedding_vector("one text", 8), embedding_vector("two texts here", 8)]
    sent = [r.json for r in upstream.requests if r.path == "/v1/embeddings"]
    assert [b["input"] for b in sent] == [["one text"], ["two texts here"]]
    assert all(b["encoding_format"] == "float" and b["model"] == "BAAI/bge-m3" for b in sent)


async def test_rerank_asks_for_the_documents_and_reads_results(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance(PROVIDER, "rerank")
    result = await rr.invoke("BAAI/bge-reranker-v2-m3", CREDS, QUERY, DOCS, top_n=2)
    req = upstream.last_request
    assert req.path == "/v1/rerank"
    assert req.json == {"model": "BAAI/bge-reranker-v2-m3", "query": QUERY, "documents": DOCS, "top_n": 2, "return_documents": True}
    expected = sorted(((rerank_score(QUERY, d), i) for i, d in enumerate(DOCS)), key=lambda x: (-x[0], x[1]))[:2]
    assert [(d.score, d.index) for d in result.docs] == expected
    assert all(d.text == DOCS[d.index] for d in result.docs)


async def test_rerank_empty_balance(rt: ModelRuntime, upstream: Any) -> None:
    upstream.faults.push(Fault(error_type="insufficient_balance", status=403), path="/v1/rerank")
    rr = rt.get_model_instance(PROVIDER, "rerank")
    with pytest.raises(InvokeQuotaExhaustedError):
        await rr.invoke("BAAI/bge-reranker-v2-m3", CREDS, QUERY, DOCS)


async def test_speech2text(rt: ModelRuntime, upstream: Any) -> None:
    s2t = rt.get_model_instance(PROVIDER, "speech2text")
    audio = b"RIFF" + bytes(range(200)) * 4
    assert await s2t.invoke("FunAudioLLM/SenseVoiceSmall", CREDS, audio) == transcript_text(len(audio))
    req = upstream.last_request
    assert req.path == "/v1/audio/transcriptions" and req.form["model"] == "FunAudioLLM/SenseVoiceSmall"


async def test_tts_sends_the_model_prefixed_voice(rt: ModelRuntime, upstream: Any) -> None:
    tts = rt.get_model_instance(PROVIDER, "tts")
    voice = "FunAudioLLM/CosyVoice2-0.5B:anna"
    audio = await tts.invoke("FunAudioLLM/CosyVoice2-0.5B", None, CREDS, "Hello there.", voice)
    data = b"".join([chunk async for chunk in audio])
    req = upstream.last_request
    assert req.path == "/v1/audio/speech"
    assert (req.json["model"], req.json["voice"], req.json["response_format"]) == ("FunAudioLLM/CosyVoice2-0.5B", voice, "mp3")
    assert data == audio_bytes("Hello there.", fmt="mp3")


async def test_validate_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.provider_credentials_validate(PROVIDER, CREDS)
    assert upstream.last_request.json["model"] == "Qwen/Qwen3-8B"
    with pytest.raises(CredentialsValidateFailedError) as info:
        await rt.provider_credentials_validate(PROVIDER, {"api_key": "invalid-key"})
    assert isinstance(info.value.__cause__, InvokeAuthorizationError)


async def test_customizable_llm_reads_the_dify_form(rt: ModelRuntime, upstream: Any) -> None:
    llm = rt.get_model_instance(PROVIDER, "llm")
    creds = {"api_key": VALID_KEY, "context_size": "65536", "max_tokens": "8192", "function_calling_type": "function_call"}
    schema = await llm.get_model_schema("moonshotai/Kimi-K2-Instruct-0905", creds)
    assert schema is not None and schema.property("context_size") == 65536
    assert next(r for r in schema.parameter_rules if r.name == "max_tokens").max == 8192
    assert "tool-call" in [f.value for f in schema.features or []]
    await llm.invoke("moonshotai/Kimi-K2-Instruct-0905", creds, MESSAGES, {}, stream=False)
    assert upstream.last_request.json["model"] == "moonshotai/Kimi-K2-Instruct-0905"
