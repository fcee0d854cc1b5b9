"""together.ai's OpenAI-compatible chat completions (docs.together.ai).

* a model that reaches its end-of-sequence token finishes with ``finish_reason: "eos"``, not
  ``stop`` (the Together SDK's ``FinishReason``: ``length``, ``stop``, ``eos``, ``tool_calls``;
  togethercomputer/together-python ``src/together/types/common.py``);
* a stream carries its usage on the chunk with the finish reason, ``"usage": null`` on every chunk
  before it and no separate usage chunk, and each content delta names the sampled ``token_id``
  (stream chunks quoted in mlflow/mlflow#11557, the Together gateway provider).

Error bodies are left as OpenAI's ``{"error": {...}}`` [I: Together documents no other shape].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import request_usage, rewrite_chunks, usage_on_finish

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE"]


def _eos(choice: dict[str, Any]) -> None:
    if choice.get("finish_reason") == "stop":
        choice["finish_reason"] = "eos"


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    usage = request_usage(ctx, body)
    token_id = 1000

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal token_id
        chunk.pop("obfuscation", None)  # OpenAI's own fields
        chunk.pop("service_tier", None)
        out = usage_on_finish(chunk, usage)
        if not out:
            return out
        choice = chunk["choices"][0]
        if choice.get("finish_reason"):
            _eos(choice)
            return out
        chunk["usage"] = None
        delta = choice.get("delta")
        if isinstance(delta, dict) and delta.get("content"):
            token_id += 1
            delta["token_id"] = token_id
        return out

    return rewrite_chunks(events, edit)


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    _eos(answer["choices"][0])
    return answer


PROFILE = Profile(
    name="togetherai",
    sources=(
        "togethercomputer/together-python src/together/types/common.py (FinishReason: eos)",
        "https://github.com/mlflow/mlflow/pull/11557 (stream chunks: usage on the last one, null before, token_id)",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
)
