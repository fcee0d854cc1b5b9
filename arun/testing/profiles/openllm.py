"""BentoML OpenLLM 0.6's OpenAI-compatible server: vLLM 0.8.5's handlers mounted under ``/v1``.

OpenLLM's bentos mount vLLM's ``create_chat_completion``, ``create_completion``,
``create_embedding`` and ``show_available_models`` on a FastAPI app at ``/v1``
(bentoml/openllm-models ``src/templates/service.py.j2``) and pin ``vllm==0.8.5``
(``src/templates/requirements.txt.j2``), so the answers are that vLLM's:

* errors are the flat body of vLLM < 0.10.1: ``{"object": "error", "message": ..., "type":
  "BadRequestError", "param": null, "code": 400}`` -- no ``error`` key (vllm-project/vllm issue
  12886 quotes one; PR 22099 nested it in v0.10.1);
* an error inside a stream wraps that flat object: ``data: {"error": {"object": "error", ...}}``
  (``OpenAIServing.create_streaming_error_response`` of that release);
* reasoning recipes (``enable_reasoning: true`` with ``reasoning_parser: deepseek_r1``: QwQ,
  DeepSeek-R1 in ``src/recipe.yaml``) put the chain of thought in ``reasoning_content`` -- the
  field's name before vLLM renamed it to ``reasoning``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arun.testing.profiles import Profile
from arun.testing.profiles.common import data_event, reasoning_events, reasoning_message, status_phrase
from arun.testing.profiles.vllm import FLAT_CONTEXT_MESSAGE, vllm_error

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

__all__ = ["PROFILE", "REASONING"]

REASONING = ["Let me think", " about the", " question."]
_REASONING_MODELS = ("qwq", "r1")


def _reasons(body: dict[str, Any]) -> bool:
    model = str(body.get("model") or "").lower()
    return any(tag in model for tag in _REASONING_MODELS)


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if message is None and error_type == "context_length_exceeded":
        status, message = 400, FLAT_CONTEXT_MESSAGE
    return status, vllm_error(status, message or status_phrase(status), flat=True)


def stream_error(ctx: Ctx) -> bytes:
    f = ctx.fault
    err = vllm_error(400, (f.message if f is not None else None) or "The prompt is too long for this model.", flat=True)
    return data_event({"error": err})


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    return reasoning_events(events, REASONING) if _reasons(body) else events


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return reasoning_message(answer, REASONING) if _reasons(body) else answer


PROFILE = Profile(
    name="openllm",
    sources=(
        "bentoml/openllm-models src/templates/service.py.j2 (vLLM handlers at /v1), requirements.txt.j2 (vllm==0.8.5)",
        "bentoml/openllm-models src/recipe.yaml (enable_reasoning, reasoning_parser deepseek_r1)",
        "vllm-project/vllm issue 12886 (the flat error body), PR 22099 (nested from v0.10.1)",
        "vllm-project/vllm v0.8 serving_engine.py create_streaming_error_response",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    stream_error=stream_error,
)
