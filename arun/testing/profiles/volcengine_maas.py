"""Volcengine Ark: OpenAI-compatible chat and embeddings addressed by endpoint id or model id.

* errors are ``{"error": {"code", "message", "param", "type"}}`` with Ark's own codes and types
  (public error-code page): 400 ``InvalidParameter``/BadRequest, 401 ``AuthenticationError``/
  Unauthorized, 403 ``AccessDenied`` and ``AccountOverdueError``/Forbidden, 404
  ``InvalidEndpointOrModel.NotFound``/NotFound, 429 ``RateLimitExceeded.EndpointRPMExceeded``/
  TooManyRequests, 400 ``SensitiveContentDetected`` for moderated input; statuses the page gives
  no code for keep the OpenAI body;
* thinking: Seed models think unless ``thinking: {type: disabled}`` (ModelArk chat API, "default
  value {"type":"enabled"}"), the chain of thought arrives as ``reasoning_content``;
  ``reasoning_effort`` other than ``minimal`` with thinking disabled is refused: 400 "Invalid
  combination of reasoning_effort and thinking type" (RooCodeInc/Roo-Code#11395).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from arun.testing import sim_openai
from arun.testing.profiles import Profile
from arun.testing.profiles.common import guarded, openai_error, reasoning_events, reasoning_message, thinking_disabled

if TYPE_CHECKING:
    from arun.testing.simulator import Ctx

REASONING = ["The user greets me;", " I will greet back."]

#: status -> (code, type, message)
_CODES = {
    400: ("InvalidParameter", "BadRequest", "One or more parameters specified in the request are not valid."),
    401: ("AuthenticationError", "Unauthorized", "The API key or AK/SK in the request is missing or invalid."),
    403: ("AccessDenied", "Forbidden", "The request failed because you do not have access to the requested resource."),
    404: ("InvalidEndpointOrModel.NotFound", "NotFound", "The model or endpoint {model} does not exist or you do not have access to it."),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests", "The Requests Per Minute (RPM) limit of the associated endpoint for your account has been exceeded."),
}
#: Fault.error_type -> (status, code, type, message)
SPECIAL = {
    "account_overdue": (403, "AccountOverdueError", "Forbidden", "The request failed because your account has an overdue balance."),
    "sensitive_content": (400, "SensitiveContentDetected", "BadRequest", "The request failed because the input text may contain sensitive information."),
    "tpm_exceeded": (429, "RateLimitExceeded.EndpointTPMExceeded", "TooManyRequests", "The Tokens Per Minute (TPM) limit of the associated endpoint for your account has been exceeded."),
    "model_not_open": (404, "ModelNotOpen", "NotFound", "Your account has not activated the model service. Please activate the model service in the Ark Console."),
}
COMBINATION = "Invalid combination of reasoning_effort and thinking type"


def _ark_error(ctx: Ctx, status: int, code: str, typ: str, message: str) -> tuple[int, Any]:
    model = ctx.body.get("model") if isinstance(ctx.body, dict) else None
    text = message.replace("{model}", str(model)) + f" Request id: {ctx.rid}"
    return status, {"error": {"code": code, "message": text, "param": "", "type": typ}}


def error_body(ctx: Ctx, status: int, error_type: str | None, message: str | None) -> tuple[int, Any]:
    special = SPECIAL.get(error_type or "")
    if special is not None:
        return _ark_error(ctx, *special[:3], message or special[3])
    known = _CODES.get(status)
    if known is None:
        return openai_error(ctx, status, error_type, message)
    return _ark_error(ctx, status, known[0], known[1], message or known[2])


def thinks(body: dict[str, Any]) -> bool:
    return not thinking_disabled(body) and body.get("reasoning_effort") != "minimal"


def chat_events(ctx: Ctx, body: dict[str, Any], events: list[bytes]) -> list[bytes]:
    return reasoning_events(events, REASONING, extra={"content": None}) if thinks(body) else events


def chat_body(ctx: Ctx, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return reasoning_message(answer, REASONING) if thinks(body) else answer


def _combination(ctx: Ctx) -> web.StreamResponse | None:
    """A reasoning effort with thinking disabled is refused (only ``minimal`` goes with it)."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if thinking_disabled(body) and body.get("reasoning_effort") not in (None, "minimal"):
        return ctx.error(400, None, COMBINATION + ".")
    return None


PROFILE = Profile(
    name="volcengine_maas",
    sources=(
        "https://www.volcengine.com/docs/82379/1299023",
        "https://docs.byteplus.com/en/docs/Byteplus_LAS/Chat_API",
        "https://github.com/RooCodeInc/Roo-Code/issues/11395",
    ),
    chat_events=chat_events,
    chat_body=chat_body,
    error_body=error_body,
    routes=(("POST", "/chat/completions", guarded(_combination, sim_openai.chat), "json", "/v1/chat/completions"),),
)
