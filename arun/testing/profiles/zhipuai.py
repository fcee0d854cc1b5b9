"""Zhipu BigModel's chat completions and embeddings (docs.bigmodel.cn).

* errors are ``{"error": {"code": "<business code>", "message": "..."}}`` with no ``type``, and
  the business code, not the HTTP status, says what failed: an unpaid balance (1113) comes as a
  429 like a concurrency limit (1302), a too-long prompt (1261) and unsafe content (1301) as a
  plain 400 (faq/api-code, which pairs each code with its HTTP status);
* the streamed answer carries ``usage`` on its last chunk, the one with the finish reason, and
  no separate ``choices: []`` chunk (api-reference, chat completion stream example);
* thinking mode (GLM-4.5 and later, on unless ``thinking: {type: disabled}``) puts the chain of
  thought in ``reasoning_content`` beside ``content`` (guide/capabilities/thinking-mode);
* finish reasons of its own: ``sensitive`` when the content filter stopped the answer and
  ``network_error`` when inference failed (api-reference, ``finish_reason``).  The simulator
  sends them when the last user message contains ``[sim:sensitive]`` / ``[sim:network_error]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import (
    after_role,
    last_user_text,
    reasoning_message,
    request_usage,
    rewrite_chunks,
    thinking_disabled,
    usage_on_finish,
)

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

REASONING = ["Think about", " the question", " first."]

#: a simulated fault (status, error type) -> Zhipu's business code and message (faq/api-code)
_BY_TYPE = {
    "insufficient_quota": ("1113", "您的账户已欠费，请充值后重试"),
    "context_length_exceeded": ("1261", "Prompt 超长"),
    "content_filter": ("1301", "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合"),
    "frequency": ("1303", "您当前使用该 API 的频率过高，请降低频率，或联系客服增加限额"),
    "overloaded": ("1305", "该 API 已触发流量限制"),
}
_BY_STATUS = {
    400: ("1210", "API 调用参数有误，请检查文档"),
    401: ("1000", "身份验证失败"),
    403: ("1220", "您无权访问该 API"),
    404: ("1211", "模型不存在，请检查模型代码"),
    408: ("1234", "网络错误，请联系客服"),
    413: ("1210", "API 调用参数有误，请检查文档"),
    422: ("1214", "参数非法。请检查文档"),
    429: ("1302", "您当前使用该 API 的并发数过高，请降低并发，或联系客服增加限额"),
}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    code, text = _BY_TYPE.get(error_type or "") or _BY_STATUS.get(status) or ("500", "内部错误")
    return status, {"error": {"code": code, "message": message or text}}


def _forced_finish(body: dict[str, Any]) -> str | None:
    text = last_user_text(body)
    for reason in ("sensitive", "network_error"):
        if f"[sim:{reason}]" in text:
            return reason
    return None


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    thinking = not thinking_disabled(body)
    forced = _forced_finish(body)
    usage = request_usage(ctx, body)

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        chunk.pop("obfuscation", None)
        chunk.pop("service_tier", None)
        out = usage_on_finish(chunk, usage)  # no separate usage chunk: the usage rides on the finish chunk
        if not out:
            return out
        choice = chunk["choices"][0]
        if choice.get("finish_reason"):
            if forced:
                choice["finish_reason"] = forced
            return out
        return after_role(chunk, REASONING, extra={"role": "assistant"}) if thinking else out

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    if not thinking_disabled(body):
        reasoning_message(answer, REASONING)
    choice = answer["choices"][0]
    forced = _forced_finish(body)
    if forced:
        choice["finish_reason"] = forced
    for key in ("service_tier", "system_fingerprint"):
        answer.pop(key, None)
    return answer


PROFILE = Profile(
    name="zhipuai",
    sources=(
        "https://docs.bigmodel.cn/cn/faq/api-code",
        "https://docs.bigmodel.cn/api-reference/模型-api/对话补全",
        "https://docs.bigmodel.cn/cn/guide/capabilities/thinking-mode",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
)
