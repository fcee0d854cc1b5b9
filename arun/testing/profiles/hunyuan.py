"""Tencent Hunyuan's OpenAI-compatible chat completions (api.hunyuan.cloud.tencent.com/v1).

As its answers were captured from ``hunyuan-lite`` (LnYo-Cly/ai4j ``APIResponse.md``, December 2025):

* every answer and every streamed chunk carries a top-level ``note`` (the "AI-generated" marking
  Tencent asks to keep) and an empty ``system_fingerprint``; the native API marks its answers the
  same way (``Note``, TencentCloud/tencentcloud-sdk-cpp#34);
* every streamed delta repeats ``role: "assistant"`` and carries an empty ``reasoning_content``,
  the finish chunk included;
* a streamed tool call comes as a chunk with the call's id and name and empty arguments, then a
  chunk that repeats the id (and ``type``) with an empty ``name`` and the arguments.

Usage in a stream is left as the protocol's (a usage chunk when asked for) [I: the capture asked
for none]; error bodies are left as OpenAI's [I: not documented for the compatible API].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import rewrite_chunks

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE", "NOTE"]

NOTE = "以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记"


def _marked(obj: dict[str, Any]) -> dict[str, Any]:
    for name in ("service_tier", "obfuscation"):  # OpenAI's own fields
        obj.pop(name, None)
    obj["system_fingerprint"] = ""
    obj["note"] = NOTE
    return obj


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    ids: dict[int, str] = {}

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        choices = chunk.get("choices") or []
        delta = choices[0].get("delta") if choices else None
        if isinstance(delta, dict):
            delta["role"] = "assistant"
            delta["content"] = delta.get("content") or ""
            delta["reasoning_content"] = ""
            for call in delta.get("tool_calls") or []:
                if call.get("id"):
                    ids[call["index"]] = call["id"]
                else:  # an arguments fragment: the id again, the name empty
                    call.update(id=ids.get(call["index"], ""), type="function")
                    call["function"] = {"name": "", **call.get("function", {})}
        return [_marked(chunk)]

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return _marked(answer)


PROFILE = Profile(
    name="hunyuan",
    sources=(
        "LnYo-Cly/ai4j APIResponse.md (hunyuan-lite streams captured 2025-12: note, role on every delta, tool-call chunks)",
        "https://github.com/TencentCloud/tencentcloud-sdk-cpp/issues/34 (the native API's Note on every chunk)",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
)
