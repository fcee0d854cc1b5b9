"""iFlytek Spark's OpenAI-compatible HTTP API (spark-api-open.xf-yun.com).

* every answer and every streamed chunk carries ``code`` (0), ``message`` ("Success") and ``sid``
  beside the OpenAI fields (HTTP调用文档 response examples; client code such as the
  ``ISparkResponse`` interfaces that parse them);
* a failure detected after the answer started, e.g. the output audit (10014), arrives as a
  ``{"code": <nonzero>, "message", "sid"}`` object in the 200 answer or stream (接口说明: error codes
  10013/10014 for the input and output audits).  The simulator sends one when the last user
  message contains ``[sim:spark:<code>]``; its in-stream error event is a 10014;
* error statuses come with an OpenAI-shaped body whose ``code`` is Spark's and whose message
  ends with the sid: ``{"error": {"message": "AppIdNoAuthError (sid: ...)", "type": "api_error",
  "param": null, "code": "11200"}}`` (bodies quoted from live calls in public repositories).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import data_event, last_user_text, rewrite_chunks

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

_FORCED = re.compile(r"\[sim:spark:(\d+)\]")

#: Spark's error codes and messages (接口说明, 服务错误码)
MESSAGES = {
    10005: "invalid param", 10007: "user traffic limited", 10013: "input content audit failed",
    10014: "output content audit failed", 10907: "token count exceeds the limit",
    11200: "AppIdNoAuthError", 11201: "AppIdDailyLimitError", 11202: "AppIdQpsOverFlowError",
    11203: "AppIdConcurrencyOverFlowError", 10012: "EngineInternalError",
}  # fmt: skip
_BY_STATUS = {400: (10005, "invalid_request_error"), 401: (11200, "api_error"), 403: (11200, "api_error"),
              404: (10005, "invalid_request_error"), 413: (10907, "invalid_request_error"),
              422: (10005, "invalid_request_error"), 429: (11202, "api_error")}  # fmt: skip
_BY_TYPE = {"insufficient_quota": (11201, "api_error"), "context_length_exceeded": (10907, "invalid_request_error"),
            "content_filter": (10013, "invalid_request_error"), "concurrency": (11203, "api_error")}  # fmt: skip


def _sid(ctx: Ctx) -> str:
    return f"cha000b{ctx.rid[:4]}@dx{ctx.rid[4:20]}"


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    code, kind = _BY_TYPE.get(error_type or "") or _BY_STATUS.get(status) or (10012, "api_error")
    text = message or MESSAGES.get(code, "error")
    return status, {"error": {"message": f"{text} (sid: {_sid(ctx)})", "type": kind, "param": None, "code": str(code)}}


def _failure(ctx: Ctx, code: int) -> dict[str, Any]:
    return {"code": code, "message": MESSAGES.get(code, "error"), "sid": _sid(ctx)}


def _forced(body: dict[str, Any]) -> int | None:
    found = _FORCED.search(last_user_text(body))
    return int(found.group(1)) if found else None


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    forced = _forced(body)
    sid = _sid(ctx)
    sent = 0

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal sent
        chunk.pop("obfuscation", None)
        chunk.pop("system_fingerprint", None)
        sent += 1
        if forced is not None and sent > 2:
            return [_failure(ctx, forced)] if sent == 3 else []
        return [{"code": 0, "message": "Success", "sid": sid, **chunk}]

    out = rewrite_chunks(events, edit)
    if forced is not None:
        out = [e for e in out if not e.startswith(b"data: [DONE]")]
    return out


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    forced = _forced(body)
    if forced is not None:
        return _failure(ctx, forced)
    answer.pop("system_fingerprint", None)
    return {"code": 0, "message": "Success", "sid": _sid(ctx), **answer}


def stream_error(ctx: Ctx) -> bytes:
    return data_event(_failure(ctx, 10014))


PROFILE = Profile(
    name="spark",
    sources=(
        "https://www.xfyun.cn/doc/spark/HTTP调用文档.html",
        "https://xfyun.cn/doc/spark/接口说明.html",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    stream_error=stream_error,
)
