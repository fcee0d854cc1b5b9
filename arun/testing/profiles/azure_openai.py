"""Azure OpenAI's data plane (learn.microsoft.com/azure/ai-foundry/openai/reference).

* every request names its API version: ``?api-version=...`` on
  ``/openai/deployments/{deployment}/...``; without it the service answers 404
  ``{"error": {"code": "404", "message": "Resource not found"}}``;
* content filtering (concepts/content-filter): a streamed answer starts with an annotation
  chunk whose ``choices`` is empty and which carries ``prompt_filter_results``; every choice
  carries ``content_filter_results``; annotation chunks whose choice has no ``delta``
  (``content_filter_offsets``, the asynchronous filter) follow the content; a filtered
  completion ends with ``finish_reason: content_filter`` (streamed: after the pieces sent so
  far; not streamed: without content); a filtered prompt is a 400 with
  ``code: content_filter`` and ``innererror.code: ResponsibleAIPolicyViolation``.  Here the
  word "hate" in the last user message trips the prompt filter, "kill" the completion filter
  (the simulator's moderation words);
* error bodies are ``{"error": {"code": ..., "message": ...}}`` with the status as a string
  code: 401 "Access denied due to invalid subscription key or wrong API endpoint", 404
  ``DeploymentNotFound``, 429 "Requests to the ChatCompletions_Create Operation under Azure
  OpenAI API version ... have exceeded token rate limit ... Please retry after N seconds"
  with a ``retry-after`` header (openai/quotas-limits, openai/how-to/quota).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from arun.testing import sim_openai
from arun.testing.content import moderation_flagged
from arun.testing.profiles import Profile
from arun.testing.profiles.common import data_event, guarded, openai_error, rewrite_chunks

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

DEFAULT_VERSION = "2024-10-21"
_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def _results(filtered: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        c: {"filtered": c == filtered, "severity": "high" if c == filtered else "safe"} for c in _CATEGORIES
    }
    return out


def _prompt_results() -> list[dict[str, Any]]:
    results = _results()
    results["jailbreak"] = {"filtered": False, "detected": False}
    return [{"prompt_index": 0, "content_filter_results": results}]


def _flags(body: Any) -> dict[str, bool]:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return {}
    return moderation_flagged(sim_openai.conversation(body).last_user_text)


def _completion_filtered(body: Any) -> bool:
    return bool(_flags(body).get("violence"))


# -- routes: the api-version check and the prompt filter, then the OpenAI handler ----------------


def _unversioned(ctx: Ctx) -> web.StreamResponse | None:
    return ctx.error(404, "missing_api_version") if not ctx.request.query.get("api-version") else None


def _unversioned_or_filtered(ctx: Ctx) -> web.StreamResponse | None:
    refused = _unversioned(ctx)
    if refused is None and _flags(ctx.body).get("hate"):
        return ctx.error(400, "content_filter")
    return refused


# -- streamed and whole answers -----------------------------------------------------------------


def _annotation(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"choices": choices, "created": 0, "id": "", "model": "", "object": "", **extra}


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    filtered = _completion_filtered(body)
    sent = 0

    def edit(chunk: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal sent
        choices = chunk.get("choices") or []
        if not choices:  # the usage chunk
            return [chunk]
        choice = choices[0]
        if choice.get("finish_reason"):
            if filtered:
                choice["finish_reason"] = "content_filter"
            choice["content_filter_results"] = _results("violence") if filtered else {}
            offsets = {"check_offset": 0, "start_offset": 0, "end_offset": sent}
            return [chunk, _annotation([{
                "index": 0, "finish_reason": None,
                "content_filter_results": _results("violence" if filtered else None),
                "content_filter_offsets": offsets,
            }])]  # fmt: skip
        delta = choice.get("delta") or {}
        piece = delta.get("content")
        if piece and filtered and sent:
            return []  # the filter cut the completion after its first piece
        if piece:
            sent += len(piece)
        choice["content_filter_results"] = _results() if piece else {}
        return [chunk]

    return [data_event(_annotation([], prompt_filter_results=_prompt_results())), *rewrite_chunks(events, edit)]


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    answer["prompt_filter_results"] = _prompt_results()
    choice = answer["choices"][0]
    if _completion_filtered(body):
        choice["finish_reason"] = "content_filter"
        choice["message"] = {"role": "assistant"}  # a filtered completion returns no content
        choice["content_filter_results"] = _results("violence")
    else:
        choice["content_filter_results"] = _results()
    return answer


# -- errors -------------------------------------------------------------------------------------


def _operation(ctx: Ctx) -> str:
    path = str(ctx.path)
    if path.endswith("/embeddings"):
        return "Embeddings_Create"
    if path.endswith("/audio/transcriptions"):
        return "Transcriptions_Create"
    if path.endswith("/audio/speech"):
        return "Speech_Create"
    return "ChatCompletions_Create"


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    if error_type == "missing_api_version":
        return 404, {"error": {"code": "404", "message": "Resource not found"}}
    if error_type == "content_filter":
        inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {**_results("hate"),
                 "jailbreak": {"filtered": False, "detected": False}}}  # fmt: skip
        return 400, {"error": {
            "message": message or (
                "The response was filtered due to the prompt triggering Azure OpenAI's content management "
                "policy. Please modify your prompt and retry. To learn more about our content filtering "
                "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
            ),
            "type": None, "param": "prompt", "code": "content_filter", "status": 400, "innererror": inner,
        }}  # fmt: skip
    if error_type is None and status == 401:
        return 401, {"error": {"code": "401", "message": message or (
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
            "key for an active subscription and use a correct regional API endpoint for your resource."
        )}}  # fmt: skip
    if error_type is None and status == 404:
        return 404, {"error": {"code": "DeploymentNotFound", "message": message or (
            "The API deployment for this resource does not exist. If you created the deployment within the "
            "last 5 minutes, please wait a moment and try again."
        )}}  # fmt: skip
    if error_type is None and status == 429:
        version = ctx.request.query.get("api-version") or DEFAULT_VERSION
        wait = ctx.fault.retry_after if ctx.fault is not None and ctx.fault.retry_after is not None else 6
        return 429, {"error": {"code": "429", "message": message or (
            f"Requests to the {_operation(ctx)} Operation under Azure OpenAI API version {version} have exceeded "
            f"token rate limit of your current OpenAI S0 pricing tier. Please retry after {int(wait)} seconds. "
            "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default "
            "rate limit."
        )}}  # fmt: skip
    return openai_error(ctx, status, error_type, message)


PROFILE = Profile(
    name="azure_openai",
    sources=(
        "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference",
        "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter",
        "https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    routes=(
        ("POST", "/chat/completions", guarded(_unversioned_or_filtered, sim_openai.chat), "json", "/v1/chat/completions"),
        ("POST", "/embeddings", guarded(_unversioned, sim_openai.embeddings), "json", "/v1/embeddings"),
        ("POST", "/audio/transcriptions", guarded(_unversioned, sim_openai.transcriptions), "multipart", "/v1/audio/transcriptions"),
        ("POST", "/audio/speech", guarded(_unversioned, sim_openai.speech), "json", "/v1/audio/speech"),
    ),
)
