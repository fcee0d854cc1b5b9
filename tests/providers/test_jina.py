"""The ``jina`` provider end to end against the upstream simulator (real sockets).

Simulator formulas (``arun.testing.content``): embedding vectors are seeded by the text;
embedding tokens = words per input; rerank score = share of distinct query words found in
the document.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from arun.entities.embedding import EmbeddingInputType
from arun.entities.model import FetchFrom
from arun.errors import (
    CredentialsValidateFailedError,
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from arun.runtime import ModelRuntime
from arun.testing import Fault
from arun.testing.content import embedding_tokens, embedding_vector, rerank_score

EMB = "jina-embeddings-v3"
RERANK = "jina-reranker-v2-base-multilingual"
QUERY = "red apple pie"
DOCS = ["a red apple pie recipe", "green pear", "red car", "apple orchard", "pie charts"]


def creds(sim: Any, **extra: str) -> dict[str, str]:
    return {"api_key": "jina_test", "base_url": sim.url + "/v1", **extra}


# -- schemas ------------------------------------------------------------------------------------


async def test_predefined_models(rt: ModelRuntime) -> None:
    emb = rt.get_model_instance("jina", "text-embedding")
    names = [m.model for m in await emb.predefined_models()]
    assert names[0] == "jina-embeddings-v3" and {"jina-embeddings-v2-base-en", "jina-clip-v2"} <= set(names)
    v3 = await emb.get_model_schema(EMB)
    assert v3.property("context_size") == 8192 and v3.property("max_chunks") == 2048
    assert v3.pricing is not None and v3.pricing.unit == Decimal("0.000001")
    rr = rt.get_model_instance("jina", "rerank")
    names = [m.model for m in await rr.predefined_models()]
    assert names == ["jina-reranker-v2-base-multilingual", "jina-reranker-v1-base-en", "jina-colbert-v2"]


async def test_customizable_models(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("jina", "text-embedding")
    schema = await emb.get_model_schema("my-jina-embed", creds(upstream, context_size="1024"))
    assert schema.fetch_from is FetchFrom.CUSTOMIZABLE_MODEL and schema.property("context_size") == 1024
    rr = rt.get_model_instance("jina", "rerank")
    schema = await rr.get_model_schema("my-reranker", creds(upstream))
    assert schema.property("context_size") == 8192
    result = await rr.invoke("my-reranker", creds(upstream), QUERY, DOCS)
    assert len(result.docs) == len(DOCS)


# -- embeddings ------------------------------------------------------------------------------------


async def test_embeddings_order_usage_and_price(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("jina", "text-embedding")
    texts = ["hello world", "second text here", "third"]
    result = await emb.invoke(EMB, creds(upstream), texts)
    assert result.embeddings == [embedding_vector(t, 8) for t in texts]
    assert result.usage.tokens == embedding_tokens(texts) == 6
    assert result.usage.total_price == Decimal("6") * Decimal("1") * Decimal("0.000001")
    request = upstream.requests[-1]
    assert request.path == "/v1/embeddings" and request.key == "jina_test"
    assert request.json == {"model": EMB, "input": texts, "task": "retrieval.passage"}


async def test_embeddings_task_follows_input_type(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("jina", "text-embedding")
    await emb.invoke(EMB, creds(upstream), ["q"], input_type=EmbeddingInputType.QUERY)
    assert upstream.requests[-1].json["task"] == "retrieval.query"
    await emb.invoke("jina-embeddings-v2-base-en", creds(upstream), ["q"], input_type=EmbeddingInputType.QUERY)
    assert "task" not in upstream.requests[-1].json
    await emb.invoke("custom-embed", creds(upstream, task="text-matching", dimensions="4", late_chunking="true"), ["q"])
    body = upstream.requests[-1].json
    assert body["task"] == "text-matching" and body["dimensions"] == 4 and body["late_chunking"] is True
    assert upstream.requests[-1].path == "/v1/embeddings"


async def test_embeddings_batching(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("jina", "text-embedding")
    texts = [f"doc {i}" for i in range(2050)]
    result = await emb.invoke(EMB, creds(upstream), texts)
    assert len(result.embeddings) == 2050
    assert result.embeddings[2049] == embedding_vector("doc 2049", 8)
    sizes = sorted(len(r.json["input"]) for r in upstream.requests if r.path == "/v1/embeddings")
    assert sizes == [2, 2048]


async def test_embeddings_errors(rt: ModelRuntime, upstream: Any) -> None:
    emb = rt.get_model_instance("jina", "text-embedding")
    with pytest.raises(InvokeAuthorizationError):
        await emb.invoke(EMB, creds(upstream, api_key="bad-key"), ["a"])
    upstream.faults.push(Fault(status=429, retry_after=2), path="/v1/embeddings")
    with pytest.raises(InvokeRateLimitError) as info:
        await emb.invoke(EMB, creds(upstream), ["a"])
    assert info.value.retry_after == 2.0
    upstream.faults.push(Fault(malformed=True), path="/v1/embeddings")
    with pytest.raises(InvokeServerUnavailableError):
        await emb.invoke(EMB, creds(upstream), ["a"])


# -- rerank ------------------------------------------------------------------------------------------


async def test_rerank_sorted_with_texts(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance("jina", "rerank")
    result = await rr.invoke(RERANK, creds(upstream), QUERY, DOCS)
    expected = sorted(((rerank_score(QUERY, d), i) for i, d in enumerate(DOCS)), key=lambda x: (-x[0], x[1]))
    assert [(d.score, d.index) for d in result.docs] == expected
    assert all(d.text == DOCS[d.index] for d in result.docs)
    body = upstream.requests[-1].json
    assert upstream.requests[-1].path == "/v1/rerank"
    assert body == {"model": RERANK, "query": QUERY, "documents": DOCS, "return_documents": True}


async def test_rerank_score_threshold(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance("jina", "rerank")
    result = await rr.invoke(RERANK, creds(upstream), QUERY, DOCS, score_threshold=0.8)
    assert [d.index for d in result.docs] == [0]
    assert all(d.score >= 0.8 for d in result.docs)


async def test_rerank_top_n_with_negative_threshold(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance("jina", "rerank")
    result = await rr.invoke(RERANK, creds(upstream), QUERY, DOCS, score_threshold=-1.0, top_n=3)
    assert len(result.docs) == 3
    assert upstream.requests[-1].json["top_n"] == 3
    scores = [d.score for d in result.docs]
    assert scores == sorted(scores, reverse=True)


async def test_rerank_empty_docs_makes_no_request(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance("jina", "rerank")
    before = upstream.stats.total
    result = await rr.invoke(RERANK, creds(upstream), QUERY, [])
    assert result.docs == []
    assert upstream.stats.total == before


async def test_rerank_errors(rt: ModelRuntime, upstream: Any) -> None:
    rr = rt.get_model_instance("jina", "rerank")
    upstream.faults.push(Fault(status=402), path="/v1/rerank")
    with pytest.raises(InvokeQuotaExhaustedError):
        await rr.invoke(RERANK, creds(upstream), QUERY, DOCS)
    upstream.faults.push(Fault(status=422), path="/v1/rerank")
    with pytest.raises(InvokeBadRequestError):
        await rr.invoke(RERANK, creds(upstream), QUERY, DOCS)
    with pytest.raises(InvokeAuthorizationError):
        await rr.invoke(RERANK, creds(upstream, api_key="invalid"), QUERY, DOCS)
    upstream.faults.push(Fault(status=503), path="/v1/rerank")
    with pytest.raises(InvokeServerUnavailableError):
        await rr.invoke(RERANK, creds(upstream), QUERY, DOCS)


# -- credentials ----------------------------------------------------------------------------------------


async def test_provider_credentials(rt: ModelRuntime, upstream: Any) -> None:
    good = await rt.provider_credentials_validate("jina", creds(upstream))
    assert good["api_key"] == "jina_test"
    with pytest.raises(CredentialsValidateFailedError):
        await rt.provider_credentials_validate("jina", creds(upstream, api_key="bad-key"))
    with pytest.raises(CredentialsValidateFailedError):
        await rt.provider_credentials_validate("jina", {"base_url": upstream.url + "/v1"})


async def test_provider_credentials_default_base_url() -> None:
    async with ModelRuntime() as runtime:
        filtered = runtime.get_provider("jina").validate_credential_form({"api_key": "k"})
    assert filtered["base_url"] == "https://api.jina.ai/v1"


async def test_model_credentials(rt: ModelRuntime, upstream: Any) -> None:
    await rt.model_credentials_validate("jina", "rerank", "my-reranker", creds(upstream))
    await rt.model_credentials_validate("jina", "text-embedding", "my-embed", creds(upstream, context_size="512"))
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("jina", "rerank", "my-reranker", creds(upstream, api_key="bad"))
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("jina", "text-embedding", "my-embed", creds(upstream, dimensions="-3"))
    upstream.faults.push(Fault(status=500), path="/v1/rerank")
    with pytest.raises(CredentialsValidateFailedError):
        await rt.model_credentials_validate("jina", "rerank", RERANK, creds(upstream))
