"""Jina embeddings and the generic rerank wire shape: pure, bytes in / entities out."""

from __future__ import annotations

import msgspec
import pytest

from arun.entities.embedding import RerankDocument
from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeModelNotFoundError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)
from arun.protocols import jina as wire

P = "jina"


def test_embedding_body() -> None:
    body = msgspec.json.decode(
        wire.build_embedding_body("jina-embeddings-v3", ["a", "b"], task="retrieval.passage", dimensions=256, extra={"late_chunking": True})
    )
    assert body == {
        "model": "jina-embeddings-v3",
        "input": ["a", "b"],
        "task": "retrieval.passage",
        "dimensions": 256,
        "late_chunking": True,
    }
    assert msgspec.json.decode(wire.build_embedding_body("m", ("x",))) == {"model": "m", "input": ["x"]}


def test_embedding_response_reordered_by_index() -> None:
    body = (
        b'{"model":"jina-embeddings-v3","object":"list","usage":{"total_tokens":5,"prompt_tokens":5},'
        b'"data":[{"object":"embedding","index":1,"embedding":[0.2]},{"object":"embedding","index":0,"embedding":[0.1]}]}'
    )
    vectors, tokens, model = wire.parse_embedding_response(P, body, 2)
    assert vectors == [[0.1], [0.2]]
    assert tokens == 5 and model == "jina-embeddings-v3"


def test_embedding_response_problems() -> None:
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_embedding_response(P, b'{"data":[{"index":0,"embedding":[0.1]}]}', 2)
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_embedding_response(P, b'{"data":[{"index":0,"embedding":[0.1]},{"index":0,"embedding":[0.2]}]}', 2)
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_embedding_response(P, b'{"data":[', 1)
    vectors, tokens, _ = wire.parse_embedding_response(P, b'{"data":[{"embedding":[0.5]}]}', 1)
    assert vectors == [[0.5]] and tokens is None


def test_rerank_body() -> None:
    body = msgspec.json.decode(wire.build_rerank_body("jina-reranker-v2-base-multilingual", "q", ["a", "b"], 1))
    assert body == {
        "model": "jina-reranker-v2-base-multilingual",
        "query": "q",
        "documents": ["a", "b"],
        "top_n": 1,
        "return_documents": True,
    }
    assert "top_n" not in msgspec.json.decode(wire.build_rerank_body("m", "q", ["a"]))


def test_rerank_response_variants() -> None:
    docs = ["alpha", "beta", "gamma"]
    body = (
        b'{"model":"jina-reranker-v2-base-multilingual","usage":{"total_tokens":7},"results":['
        b'{"index":2,"relevance_score":0.9,"document":{"text":"gamma"}},'
        b'{"index":0,"relevance_score":0.3},'
        b'{"index":1,"relevance_score":0.1,"document":"beta"}]}'
    )
    scored, model = wire.parse_rerank_response(P, body, docs)
    assert scored == [
        RerankDocument(index=2, text="gamma", score=0.9),
        RerankDocument(index=0, text="alpha", score=0.3),
        RerankDocument(index=1, text="beta", score=0.1),
    ]
    assert model == "jina-reranker-v2-base-multilingual"
    # Voyage-style "data"
    scored, _ = wire.parse_rerank_response(P, b'{"data":[{"index":0,"relevance_score":1}]}', docs)
    assert scored == [RerankDocument(index=0, text="alpha", score=1.0)]


def test_rerank_response_problems() -> None:
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_rerank_response(P, b'{"results":[{"index":5,"relevance_score":1}]}', ["a"])
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_rerank_response(P, b'{"model":"m"}', ["a"])
    with pytest.raises(InvokeServerUnavailableError):
        wire.parse_rerank_response(P, b'{"results":[{"ind', ["a"])


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, b'{"detail":"Unauthorized: invalid API key"}', InvokeAuthorizationError),
        (402, b'{"detail":"Insufficient balance"}', InvokeQuotaExhaustedError),
        (404, b'{"detail":"Model x not found"}', InvokeModelNotFoundError),
        (422, b'{"detail":[{"loc":["body","query"],"msg":"field required"}]}', InvokeBadRequestError),
        (429, b'{"detail":"Rate limit exceeded"}', InvokeRateLimitError),
        (500, b"Internal Server Error", InvokeServerUnavailableError),
        (503, b'{"detail":"Service unavailable"}', InvokeServerUnavailableError),
    ],
)
def test_classify_error(status: int, body: bytes, cls: type) -> None:
    err = wire.classify_error(P, status, {"retry-after": "3"}, body)
    assert type(err) is cls
    assert err.status == status
    assert err.retry_after == 3.0


def test_quota_error_keeps_the_message() -> None:
    err = wire.classify_error(P, 402, {}, b'{"detail":"Insufficient balance"}')
    assert "Insufficient balance" in str(err)
