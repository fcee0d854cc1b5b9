"""Alibaba Cloud Model Studio (DashScope): the OpenAI-compatible mode plus the native rerank API.

* thinking: ``enable_thinking: true`` streams the chain of thought as ``delta.reasoning_content``
  before the answer; a non-streamed call with thinking on is refused with HTTP 400 "parameter.
  enable_thinking must be set to false for non-streaming calls". Commercial models (qwen-plus,
  qwen-flash ...) think only when asked, the open-source Qwen3 models (``qwen3-8b`` ...) think
  unless told not to (deep-thinking guide; error-code page);
* compatible-mode errors are OpenAI-shaped with DashScope's own codes and a top-level
  ``request_id``: ``invalid_api_key`` (401), ``limit_requests`` (429), ``Arrearage`` at HTTP 400
  for an account in arrears, ``data_inspection_failed`` (400) for moderation, and
  ``invalid_parameter_error`` with "Range of input length should be [1, N]" for a prompt
  longer than the model takes (issue threads quoted below);
* embeddings take at most 10 texts per request; 11 is a 400 "batch size is invalid, it should
  not be larger than 10" (text-embedding-synchronous-api; measured in a LightRAG write-up);
* rerank is DashScope's native ``POST /api/v1/services/rerank/text-rerank/text-rerank``:
  ``{model, input: {query, documents}, parameters: {top_n, return_documents}}`` in,
  ``{output: {results: [{index, relevance_score, document: {text}}]}, usage, request_id}`` out;
  its errors are the native ``{"code": "InvalidApiKey", "message": ..., "request_id": ...}``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from arun.testing import sim_openai
from arun.testing.content import rerank_score, rerank_tokens
from arun.testing.profiles import Profile
from arun.testing.profiles.common import guarded, reasoning_events

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

REASONING = ["Let me think:", " the user wants", " a short answer."]
RERANK_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"
#: the open-source Qwen3 checkpoints, which think by default
_OPEN_QWEN3 = re.compile(r"^qwen3-\d+(\.\d+)?b(-a\d+b)?$")

#: status -> (compatible-mode code, type, message)
_COMPAT = {
    400: ("invalid_parameter_error", "invalid_request_error", "<400> InternalError.Algo.InvalidParameter: The request is invalid."),
    401: ("invalid_api_key", "invalid_request_error", "Incorrect API key provided. "),
    403: ("AccessDenied", "AccessDenied", "Access denied."),
    404: ("model_not_found", "invalid_request_error", "The model does not exist or you do not have access to it."),
    429: ("limit_requests", "limit_requests", "You have exceeded your current request limit. For details, see: https://help.aliyun.com/zh/model-studio/error-code#rate-limit"),
    500: ("internal_error", "internal_error", "An internal error has occured, please try again later or contact service support."),
    503: ("ServiceUnavailable", "ServiceUnavailable", "The service is temporarily unavailable."),
}
#: status -> (native code, message)
_NATIVE = {
    400: ("InvalidParameter", "Required parameter(s) missing or invalid, please check the request parameters."),
    401: ("InvalidApiKey", "Invalid API-key provided."),
    403: ("AccessDenied", "Access denied."),
    404: ("ModelNotFound", "Model can not be found."),
    429: ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    500: ("InternalError", "An internal error has occured, please try again later or contact service support."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
}
#: Fault.error_type -> (status, compatible-mode code, compatible-mode type, native code, message)
SPECIAL: dict[str, tuple[int, str | None, str, str, str]] = {
    "arrearage": (400, "Arrearage", "Arrearage", "Arrearage", "Access denied, please make sure your account is in good standing. For details, see: https://help.aliyun.com/zh/model-studio/error-code#overdue-payment"),
    "data_inspection_failed": (400, "data_inspection_failed", "data_inspection_failed", "DataInspectionFailed", "Input data may contain inappropriate content."),
    "context_length_exceeded": (400, "invalid_parameter_error", "invalid_request_error", "InvalidParameter", "<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 129024]"),
    "thinking_non_stream": (400, "invalid_parameter_error", "invalid_request_error", "InvalidParameter", "<400> InternalError.Algo.InvalidParameter: parameter.enable_thinking must be set to false for non-streaming calls"),
    "batch_too_big": (400, None, "InvalidParameter", "InvalidParameter", "<400> InternalError.Algo.InvalidParameter: Value error, batch size is invalid, it should not be larger than 10.: input.contents"),
}


def thinks(body: dict[str, Any]) -> bool:
    """Does this request think? ``enable_thinking`` when sent, else the model's own default."""
    value = body.get("enable_thinking")
    if isinstance(value, bool):
        return value
    return bool(_OPEN_QWEN3.match(str(body.get("model") or "")))


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    special = SPECIAL.get(error_type or "")
    if ctx.path == RERANK_PATH:
        if special is not None:
            status, _, _, code, text = special
        else:
            code, text = _NATIVE.get(status, ("InternalError" if status >= 500 else "InvalidParameter", f"HTTP {status}"))
        return status, {"code": code, "message": message or text, "request_id": ctx.rid}
    compat: str | None
    if special is not None:
        status, compat, typ, _, text = special
    else:
        compat, typ, text = _COMPAT.get(status, ("internal_error" if status >= 500 else "invalid_request_error", "invalid_request_error", f"HTTP {status}"))
    error: dict[str, Any] = {"message": message or text, "type": typ, "param": None}
    if compat is not None:
        error["code"] = compat
    return status, {"error": error, "id": "chatcmpl-" + ctx.rid, "request_id": ctx.rid}


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    return reasoning_events(events, REASONING, extra={"content": None}) if thinks(body) else events


def _thinking_non_stream(ctx: Ctx) -> web.StreamResponse | None:
    """Compatible-mode chat refuses a non-streamed call that would think."""
    body = ctx.body
    if isinstance(body, dict) and not body.get("stream") and thinks(body):
        return ctx.error(400, "thinking_non_stream")
    return None


def _batch_too_big(ctx: Ctx) -> web.StreamResponse | None:
    """Compatible-mode embeddings take at most 10 texts per request."""
    body = ctx.body
    texts = sim_openai.embedding_inputs(body.get("input")) if isinstance(body, dict) else None
    if texts is not None and len(texts) > 10:
        return ctx.error(400, "batch_too_big")
    return None


async def rerank(ctx: Ctx) -> web.StreamResponse:
    """DashScope's native text-rerank."""
    body = ctx.body
    payload = body.get("input") if isinstance(body, dict) else None
    query = payload.get("query") if isinstance(payload, dict) else None
    documents = payload.get("documents") if isinstance(payload, dict) else None
    if not isinstance(query, str) or not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        return ctx.error(400, None, "Required parameter(s) missing or invalid, please check the request parameters.")
    if len(documents) > 500:
        return ctx.error(400, None, "The number of documents should not exceed 500.")
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    scored = sorted(((rerank_score(query, d), i) for i, d in enumerate(documents)), key=lambda x: (-x[0], x[1]))
    top_n = params.get("top_n")
    if isinstance(top_n, int) and top_n > 0:
        scored = scored[:top_n]
    results = []
    for score, i in scored:
        item: dict[str, Any] = {"index": i, "relevance_score": score}
        if params.get("return_documents"):
            item["document"] = {"text": documents[i]}
        results.append(item)
    answer = {"output": {"results": results}, "usage": {"total_tokens": rerank_tokens(query, documents)}, "request_id": ctx.rid}
    return ctx.respond_json(answer)


PROFILE = Profile(
    name="tongyi",
    sources=(
        "https://www.alibabacloud.com/help/zh/model-studio/deep-thinking",
        "https://www.alibabacloud.com/help/en/model-studio/developer-reference/error-code",
        "https://help.aliyun.com/zh/model-studio/text-embedding-synchronous-api",
        "https://help.aliyun.com/document_detail/2780059.html",
        "https://github.com/hsliuping/TradingAgents-CN/issues/170",
        "https://github.com/camel-ai/owl/issues/432",
        "https://github.com/agentscope-ai/QwenPaw/issues/6255",
    ),
    chat_events=chat_events,
    error_body=error_body,
    routes=(
        ("POST", "/compatible-mode/v1/chat/completions", guarded(_thinking_non_stream, sim_openai.chat), "json", "/v1/chat/completions"),
        ("POST", "/compatible-mode/v1/embeddings", guarded(_batch_too_big, sim_openai.embeddings), "json", "/v1/embeddings"),
        ("POST", "/text-rerank/text-rerank", rerank, "json", RERANK_PATH),
    ),
)
