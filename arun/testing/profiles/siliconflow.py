"""SiliconFlow (SiliconCloud): OpenAI-compatible chat, embeddings and audio, a Cohere-like rerank.

* errors are ``{"code": <int>, "message": ..., "data": null}`` — 400 ``20012`` "Model does not
  exist. Please check it carefully." (error-code FAQ), 402/403 ``30001`` "Sorry, your account
  balance is insufficient" (quoted by users of the API), 429 "Request was rejected due to rate
  limiting..."; a bad key is a 401 whose body is the bare JSON string "Api key is invalid";
* thinking: the Qwen3 checkpoints think unless ``enable_thinking: false`` (chat-completions API
  reference: "Switches between thinking and non-thinking modes. Default is True"); the chain of
  thought comes back as ``reasoning_content`` (response schema of the same page);
* rerank answers ``{"id", "results": [{"document": {"text"}, "index", "relevance_score"}],
  "tokens": {"input_tokens", "output_tokens"}}`` and leaves the document text out unless
  ``return_documents`` is true (rerank API reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import reasoning_events, reasoning_message

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

REASONING = ["Okay, the user", " says hello;", " reply kindly."]

#: status -> (code, message); only the documented codes are sent, other statuses carry a message alone
_ERRORS: dict[int, tuple[int | None, str]] = {
    400: (None, "Invalid request parameters."),
    403: (None, "Insufficient permissions: the model requires real-name authentication."),
    404: (20012, "Model does not exist. Please check it carefully."),
    429: (None, "Request was rejected due to rate limiting. If you want more, please contact contact@siliconflow.cn"),
    503: (None, "The system is under heavy load. Please try again later."),
}
#: Fault.error_type -> (status, code, message)
SPECIAL = {
    "insufficient_balance": (403, 30001, "Sorry, your account balance is insufficient"),
    "model_not_found": (400, 20012, "Model does not exist. Please check it carefully."),
}


def thinks(body: dict[str, Any]) -> bool:
    value = body.get("enable_thinking")
    if isinstance(value, bool):
        return value
    return str(body.get("model") or "").startswith("Qwen/Qwen3-") and "Instruct" not in str(body.get("model"))


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    special = SPECIAL.get(error_type or "")
    if special is not None:
        status, special_code, special_text = special
        return status, {"code": special_code, "message": message or special_text, "data": None}
    if status == 401:
        return 401, message or "Api key is invalid"
    code, text = _ERRORS.get(status, (None, f"HTTP {status}"))
    body: dict[str, Any] = {"message": message or text, "data": None}
    if code is not None:
        body = {"code": code, **body}
    return status, body


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    return reasoning_events(events, REASONING, extra={"content": None}) if thinks(body) else events


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return reasoning_message(answer, REASONING) if thinks(body) else answer


def response_body(ctx: Ctx, kind: str, answer: dict[str, Any]) -> dict[str, Any]:
    if kind != "rerank":
        return answer
    request = ctx.body if isinstance(ctx.body, dict) else {}
    keep_text = request.get("return_documents") is True
    results = []
    for item in answer.get("results") or []:
        out = {"index": item["index"], "relevance_score": item["relevance_score"]}
        if keep_text:
            out["document"] = item.get("document")
        results.append(out)
    tokens = (answer.get("usage") or {}).get("total_tokens", 0)
    return {"id": ctx.rid, "results": results, "tokens": {"input_tokens": tokens, "output_tokens": 0}}


PROFILE = Profile(
    name="siliconflow",
    sources=(
        "https://docs.siliconflow.com/en/faqs/error-code",
        "https://docs.siliconflow.cn/cn/api-reference/chat-completions/chat-completions",
        "https://docs.siliconflow.cn/en/api-reference/rerank/create-rerank",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    response_body=response_body,
)
