"""Xinference's OpenAI-compatible server (``xorbitsai/inference``, ``xinference/api/restful_api.py``).

* ``GET /v1/models/{model_uid}`` describes a running model (``describe_model``: the model's
  ``to_description()`` plus ``replica``): an LLM's ``model_ability`` and ``context_length``, an
  embedding model's ``max_tokens``, an audio model's abilities.  :data:`MODELS` is the sim's
  cluster; an unknown uid is a 400 ``Model not found in the model list, uid: ...``
  (``core/supervisor.py``), a model still launching a 503 with ``Retry-After: 30``;
* errors are FastAPI's ``{"detail": "..."}`` (``HTTPException`` everywhere); a rate limit is a
  429 ``Rate limit reached for the model. Request limit N for the model: <uid>``
  (``core/model.py``, ``handle_request_limit_error``); 401 ``Could not validate credentials``
  (``api/oauth2/advanced/auth_service.py``);
* streams are sse-starlette's: ``\\r\\n`` line endings and ``: ping - <time>`` comments
  (``EventSourceResponse(..., ping=...)``); an error inside a stream is ``data: {"error": "<text>"}``
  -- a bare string, not an object (``stream_results``);
* rerank answers Cohere's shape, ``{id, results: [{index, relevance_score, document}], meta}``
  with no ``model`` or ``usage``, and ``document`` is ``null`` unless ``return_documents`` is
  true (``RerankRequest``: default false; ``types.py`` ``Rerank``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from arun.testing.content import rerank_tokens
from arun.testing.profiles import Profile
from arun.testing.profiles.common import crlf, data_event, status_phrase

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE", "MODELS", "LOADING"]

_ADDRESS = "127.0.0.1:43227"


def _llm(name: str, family: str, abilities: list[str], context: int, size: int) -> dict[str, Any]:
    return {
        "model_type": "LLM", "address": _ADDRESS, "accelerators": ["0"], "model_name": name,
        "model_lang": ["en", "zh"], "model_ability": abilities, "model_description": f"{name} (simulated)",
        "model_format": "pytorch", "model_size_in_billions": size, "model_family": family, "quantization": "none",
        "multimodal_projector": None, "model_hub": "huggingface", "revision": None, "context_length": context,
        "strict_system_first": False, "replica": 1,
    }  # fmt: skip


#: model uid -> its description, as a launched cluster would answer
MODELS: dict[str, dict[str, Any]] = {
    "qwen2.5-instruct": _llm("qwen2.5-instruct", "qwen2.5-instruct", ["generate", "chat", "tools"], 32768, 7),
    "qwen2-vl-instruct": _llm("qwen2-vl-instruct", "qwen2-vl-instruct", ["chat", "vision"], 32768, 7),
    "qwen3": _llm("qwen3", "qwen3", ["generate", "chat", "reasoning", "hybrid", "tools"], 40960, 8),
    "llama-2": _llm("llama-2", "llama-2", ["generate"], 4096, 7),
    "bge-m3": {
        "model_type": "embedding", "address": _ADDRESS, "accelerators": ["0"], "model_name": "bge-m3",
        "model_engine": "sentence_transformers", "model_format": "pytorch", "dimensions": 1024, "max_tokens": 8192,
        "language": ["zh", "en"], "model_hub": "huggingface", "model_revision": None, "quantization": "none",
        "replica": 1,
    },
    "bge-reranker-v2-m3": {
        "model_type": "rerank", "address": _ADDRESS, "accelerators": ["0"], "type": "normal",
        "model_name": "bge-reranker-v2-m3", "model_engine": "sentence_transformers", "model_format": "pytorch",
        "language": ["en", "zh", "multilingual"], "model_revision": None, "quantization": "none", "replica": 1,
    },
    "whisper-large-v3": {
        "model_type": "audio", "address": _ADDRESS, "accelerators": ["0"], "model_name": "whisper-large-v3",
        "model_family": "whisper", "model_revision": None, "model_ability": ["audio2text"], "model_engine": None,
        "replica": 1,
    },
}  # fmt: skip

#: a uid whose model is still being launched
LOADING = "still-launching"


def _detail(ctx: Ctx, status: int, message: str | None) -> str:
    if message is not None:
        return message
    if status == 429:
        uid = ctx.body.get("model") if isinstance(ctx.body, dict) else None
        return f"Rate limit reached for the model. Request limit 1 for the model: {uid or 'model'}"
    if status == 401:
        return "Could not validate credentials"
    return status_phrase(status)


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    return status, {"detail": _detail(ctx, status, message)}


_PING = b": ping - 2025-06-01 12:00:00.000000+00:00\r\n\r\n"  # a fixed time: answers never depend on the clock


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    out = [_PING]
    for i, event in enumerate(events):
        out.append(crlf(event))
        if i == 1:
            out.append(_PING)
    return out


def stream_error(ctx: Ctx) -> bytes:
    f = ctx.fault
    text = (f.message if f is not None else None) or "Model actor is out of memory"
    return crlf(data_event({"error": text}))


def response_body(ctx: Ctx, kind: str, answer: dict[str, Any]) -> dict[str, Any]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if kind == "rerank":
        documents = [d for d in body.get("documents") or [] if isinstance(d, str)]
        keep = body.get("return_documents") is True
        results = [
            {"index": r["index"], "relevance_score": r["relevance_score"], "document": r.get("document") if keep else None}
            for r in answer["results"]
        ]
        tokens = rerank_tokens(str(body.get("query") or ""), documents)
        return {
            "id": "rerank-" + ctx.rid,
            "results": results,
            "meta": {"api_version": None, "billed_units": None, "tokens": {"input_tokens": tokens, "output_tokens": 0}, "warnings": None},
        }
    return answer


async def _get(ctx: Ctx) -> web.StreamResponse:
    """Every GET under the profile: ``/v1/models/{uid}`` describes one model, ``/v1/models`` lists them."""
    path: str = ctx.request.path
    marker = "/v1/models/"
    if marker not in path:
        data = [{"id": uid, "object": "model", "created": 0, "owned_by": "xinference", **desc} for uid, desc in MODELS.items()]
        return ctx.respond_json({"object": "list", "data": data})
    uid = path.split(marker, 1)[1]
    if uid == LOADING:
        return web.Response(
            body=msgspec.json.encode({"detail": f"Model is loading, please retry later: Model {uid} is launching, not yet ready for inference"}),
            status=503,
            headers={**ctx.headers("application/json"), "Retry-After": "30"},
        )
    desc = MODELS.get(uid)
    if desc is None:
        return ctx.error(400, None, f"Model not found in the model list, uid: {uid}")
    return ctx.respond_json(desc)


PROFILE = Profile(
    name="xinference",
    sources=(
        "xorbitsai/inference xinference/api/restful_api.py (describe_model, create_chat_completion, rerank)",
        "xorbitsai/inference xinference/model/llm/llm_family.py LLMFamilyV2.to_description",
        "xorbitsai/inference xinference/core/supervisor.py describe_model",
        "xorbitsai/inference xinference/core/model.py (rate limit message)",
        "xorbitsai/inference xinference/types.py (Rerank)",
        "sysid/sse-starlette (CRLF framing, ping comments)",
    ),
    chat_events=chat_events,
    error_body=error_body,
    # a case calls a model the cluster has launched (an unknown uid is a 400 there)
    form={
        "text-embedding": {"model_uid": "bge-m3"},
        "rerank": {"model_uid": "bge-reranker-v2-m3"},
        "speech2text": {"model_uid": "whisper-large-v3"},
    },
    stream_error=stream_error,
    response_body=response_body,
    # every GET (the uid is part of the path, and profile routes match by suffix)
    routes=(("GET", "", _get, None, "/v1/models"),),
)
