"""NVIDIA's API catalog (integrate.api.nvidia.com, ai.api.nvidia.com).

* errors from the gateway are RFC 7807 problem details, not OpenAI error objects:
  ``{"status": 401, "title": "Unauthorized", "detail": ...}``, ``{"status": 403, "title":
  "Forbidden", "detail": "Authorization failed"}``, ``{"status": 404, "title": "Not Found",
  "detail": "Function '<id>': Not found for account '<id>'"}`` and, with no detail at all,
  ``{"status": 429, "title": "Too Many Requests"}`` (bodies quoted in can1357/oh-my-pi#499,
  Alishahryar1/free-claude-code#30 and #956, NVIDIA-AI-Blueprints/rag#44);
* the QA embedding models need ``input_type`` (``query`` | ``passage``): they "operate in
  passage or query mode, and thus require the input_type parameter" (NeMo Retriever text
  embedding NIM, API reference); a request without it is refused here with a 400;
* reranking is its own API: ``POST .../v1/retrieval/<publisher>/<model>/reranking`` with
  ``{model, query: {text}, passages: [{text}]}``; the answer is ``rankings[]`` of ``{index,
  logit}``, best first, one per passage (NVIDIA's LangChain client, ``_statics.py`` endpoints
  and ``reranking.py``); a model asked for on another model's path is not found (404), the
  legacy ``nv-rerank-qa-mistral-4b:1`` lives on ``.../retrieval/nvidia/reranking``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from arun.testing import sim_openai
from arun.testing.content import rerank_score
from arun.testing.profiles import Profile
from arun.testing.profiles.common import guarded, openai_error

if TYPE_CHECKING:
    from aiohttp import web

    from arun.testing.simulator import Ctx


#: models that take input_type (query / passage)
ASYMMETRIC = ("nvidia/nv-embedqa-", "nvidia/llama-nemotron-embed-", "nvidia/llama-3.2-nv-embedqa-", "NV-Embed-QA")

LEGACY_RERANKER = "nv-rerank-qa-mistral-4b:1"

_TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}
_DETAILS = {
    401: "Authentication failed",
    403: "Authorization failed",
    404: "Function '7b4e1d2a-0000-4000-8000-5e7a9c1f2b3d': Not found for account 'sim-account'",
}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    title = _TITLES.get(status)
    if title is None:
        return openai_error(ctx, status, error_type, message)
    body: dict[str, Any] = {"status": status, "title": title}
    detail = message or _DETAILS.get(status)
    if detail:
        body["detail"] = detail
    return status, body


def _logit(score: float) -> float:
    """The simulator's word-overlap score in [0, 1] as an unbounded logit (negative for poor matches)."""
    p = min(max(score, 1e-3), 1 - 1e-3)
    return round(math.log(p / (1 - p)), 4)


async def reranking(ctx: Ctx) -> web.StreamResponse:
    body = ctx.body
    query = body.get("query") if isinstance(body, dict) else None
    passages = body.get("passages") if isinstance(body, dict) else None
    text = query.get("text") if isinstance(query, dict) else None
    if not isinstance(text, str) or not isinstance(passages, list) or not passages:
        return ctx.error(422, None, "query.text and a non-empty passages list are required")
    model = str(body.get("model") or "")
    path = ctx.request.path
    if not (path.endswith(f"/retrieval/{model}/reranking") or (model == LEGACY_RERANKER and path.endswith("/retrieval/nvidia/reranking"))):
        return ctx.error(404)
    texts = [p.get("text") if isinstance(p, dict) else None for p in passages]
    if not all(isinstance(t, str) for t in texts):
        return ctx.error(422, None, "every passage needs a text field")
    scored = sorted(((rerank_score(text, t or ""), i) for i, t in enumerate(texts)), key=lambda x: (-x[0], x[1]))
    return ctx.respond_json({"rankings": [{"index": i, "logit": _logit(s)} for s, i in scored]})


def _no_input_type(ctx: Ctx) -> web.StreamResponse | None:
    """The QA embedding models refuse a request without ``input_type``."""
    body = ctx.body
    model = str(body.get("model") or "")
    if model.startswith(ASYMMETRIC) and body.get("input_type") not in ("query", "passage"):
        return ctx.error(400, None, f"Model {model} requires input_type to be 'query' or 'passage'")
    return None


PROFILE = Profile(
    name="nvidia",
    sources=(
        "https://github.com/can1357/oh-my-pi/issues/499",
        "https://github.com/Alishahryar1/free-claude-code/issues/30",
        "https://github.com/Alishahryar1/free-claude-code/issues/956",
        "https://github.com/NVIDIA-AI-Blueprints/rag/issues/44",
        "https://docs.nvidia.com/nim/nemo-retriever/text-embedding/latest/reference.html",
        "https://github.com/langchain-ai/langchain-nvidia/blob/main/libs/ai-endpoints/langchain_nvidia_ai_endpoints/_statics.py",
    ),
    error_body=error_body,
    routes=(
        ("POST", "/reranking", reranking, "json", "/v1/retrieval/reranking"),
        ("POST", "/embeddings", guarded(_no_input_type, sim_openai.embeddings), "json", "/v1/embeddings"),
    ),
)
