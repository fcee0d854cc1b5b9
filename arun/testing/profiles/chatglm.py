"""ChatGLM3's OpenAI-style API server (THUDM/ChatGLM3 ``openai_api_demo/api_server.py``).

What the profile sends on every answer:

* sse-starlette framing: ``\\r\\n`` line endings, ``data: [DONE]`` last (``EventSourceResponse``);
* ``"id": ""`` on every answer and chunk ("for open_source model, id is empty"), no
  ``system_fingerprint``;
* FastAPI errors, ``{"detail": "..."}`` (``HTTPException(status_code=400, detail="Invalid
  request")``; the server has no authentication and no rate limit of its own);
* a failure inside a stream has no error event: the generator raises and the response ends
  without ``[DONE]`` (the profile's in-stream error is an empty event for that reason).

Two behaviours of the real server contradict promises the conformance suite makes of every
provider, so the profile leaves them out and :func:`stream_without_usage` /
:func:`function_call_body` build them as raw bodies for ``tests/providers/test_chatglm.py``:

* streamed chunks carry no ``usage`` (``model_dump_json(exclude_unset=True)`` on chunks built
  without it), so a stream's usage is counted locally and differs from the non-streamed one;
* a tool call comes back as OpenAI's deprecated single ``message.function_call`` with
  ``finish_reason: "function_call"`` and the model's raw text as ``content`` -- never parallel
  ``tool_calls``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from arun.testing.profiles import Profile
from arun.testing.profiles.common import crlf, data_event, rewrite_chunks, status_phrase

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE", "stream_without_usage", "function_call_body"]


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if message is None:
        message = "Invalid request" if status == 400 else status_phrase(status)
    return status, {"detail": message}


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        chunk["id"] = ""
        chunk.pop("system_fingerprint", None)
        return [chunk]

    return [crlf(e) for e in rewrite_chunks(events, edit)]


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    answer["id"] = ""
    answer.pop("system_fingerprint", None)
    return answer


def stream_error(ctx: Ctx) -> bytes:
    return b""  # the server writes no error event: the stream just stops


def stream_without_usage(model: str, pieces: list[str]) -> bytes:
    """A streamed answer as ``predict()`` writes it: role chunk, content chunks, a ``stop`` chunk, no usage."""
    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        return crlf(data_event({"model": model, "id": "", "choices": [{"delta": delta, "finish_reason": finish, "index": 0}], "object": "chat.completion.chunk"}))

    out = [chunk({"role": "assistant"}, None)]
    out += [chunk({"role": "assistant", "content": p, "function_call": None}, None) for p in pieces]
    out.append(chunk({}, "stop"))
    out.append(b"data: [DONE]\r\n\r\n")
    return b"".join(out)


def function_call_body(model: str, name: str, arguments: str, raw_text: str) -> bytes:
    """A non-streamed tool call: the raw model text as content, one ``function_call``, usage."""
    return msgspec.json.encode(
        {
            "model": model,
            "id": "",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": raw_text, "name": None, "function_call": {"name": name, "arguments": arguments}},
                    "finish_reason": "function_call",
                }
            ],
            "created": 1735689600,
            "usage": {"prompt_tokens": 42, "total_tokens": 57, "completion_tokens": 15},
        }
    )


PROFILE = Profile(
    name="chatglm",
    sources=(
        "THUDM/ChatGLM3 openai_api_demo/api_server.py (ChatCompletionResponse, predict, create_chat_completion)",
        "sysid/sse-starlette (CRLF framing)",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    stream_error=stream_error,
)
