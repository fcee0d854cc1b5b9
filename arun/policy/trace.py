"""Observability of the policy layer: per-request decision traces, per-config state, OTel spans.

* :class:`Trace` — what the router decided for one request, in order: attempts
  (target, config, outcome, duration), configs skipped and why (cooling, limit,
  retry-after beyond the cap), waits (backoff, Retry-After, earliest recovery),
  rotations, fallbacks, the commit point of a stream and the terminal outcome.
  Handed to ``on_trace`` hooks, attached to streams (``stream.trace``) and to
  the errors the router raises (``error.trace``).
* :class:`ConfigStatus` — what an operator sees for one credential config.
* OpenTelemetry spans following the GenAI semantic conventions
  (``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.request.model``,
  ``gen_ai.usage.input_tokens``, ...), one per request with one event per
  decision — only when ``opentelemetry`` is importable (the ``opentelemetry``
  extra).  The import is tried once, here; without it :func:`start_span`
  returns None and nothing else runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

try:  # optional extra; guarded once
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - depends on the environment
    _otel_trace = None  # type: ignore[assignment]

__all__ = ["Trace", "TraceEvent", "ConfigStatus", "OTEL_AVAILABLE", "start_span", "finish_span"]

OTEL_AVAILABLE = _otel_trace is not None


@dataclass(slots=True)
class TraceEvent:
    """One decision.  ``kind``: attempt, skip, wait, retry, rotate, fallback, commit, complete, error."""

    kind: str
    at: float  # seconds since the request started
    target: str | None = None  # "provider/model"
    config: str | None = None  # credential config id
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Trace:
    """The decision trace of one request."""

    operation: str  # "chat" | "embeddings"
    started: float = field(default_factory=time.perf_counter)
    events: list[TraceEvent] = field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    rotations: int = 0
    fallbacks: int = 0
    waited: float = 0.0
    outcome: str | None = None  # "completed" | "interrupted" | "error" | "cancelled"
    target: str | None = None  # the target that answered (or last tried)
    config: str | None = None  # the config that answered (or last tried)
    error: str | None = None

    def add(self, kind: str, target: str | None = None, config: str | None = None, **detail: Any) -> TraceEvent:
        ev = TraceEvent(kind, round(time.perf_counter() - self.started, 6), target, config, detail)
        self.events.append(ev)
        return ev

    def skipped(self) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == "skip"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "attempts": self.attempts,
            "retries": self.retries,
            "rotations": self.rotations,
            "fallbacks": self.fallbacks,
            "waited": round(self.waited, 6),
            "outcome": self.outcome,
            "target": self.target,
            "config": self.config,
            "error": self.error,
            "events": [
                {"kind": e.kind, "at": e.at, "target": e.target, "config": e.config, **e.detail} for e in self.events
            ],
        }


@dataclass(frozen=True, slots=True)
class ConfigStatus:
    """One credential config of a target, as an operator sees it."""

    target: str
    config_id: str
    healthy: bool
    cooling_until: float | None  # wall clock (time.time()), None when not cooling
    cooling_reason: str | None
    cooling_remaining: float
    in_flight: int
    requests: int
    failures: int
    ewma_ttft: float | None
    last_error: str | None
    limit: Any = None  # the limiter's snapshot (remaining requests/tokens), when limited


# -- OpenTelemetry --------------------------------------------------------------------------

_tracer: Any = None
#: a tracer provider named by the environment (the API installs it on first ask), read once
_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_UNKNOWN = object()


def _get_tracer() -> Any:
    """The tracer of the installed tracer provider; None while none is installed (the API's proxy
    would hand out spans that record nothing).  Asked again on the next request: while nothing is
    installed that is one read of the API's global (``get_tracer_provider`` itself reads the
    environment on every call), so a provider installed later is used from its first request on."""
    global _tracer
    if _tracer is None and _otel_trace is not None:
        if getattr(_otel_trace, "_TRACER_PROVIDER", _UNKNOWN) is None and not _ENV_PROVIDER:
            return None
        if isinstance(_otel_trace.get_tracer_provider(), _otel_trace.ProxyTracerProvider):
            return None
        _tracer = _otel_trace.get_tracer("arun.policy")
    return _tracer


def reset_tracer() -> None:
    """Forget the cached tracer (tests that install a tracer provider call this)."""
    global _tracer
    _tracer = None


def start_span(operation: str, provider: str, model: str, params: Mapping[str, Any] | None = None) -> Any:
    """A started client span, or None when OpenTelemetry is not installed or the span does not record."""
    tracer = _get_tracer()
    if tracer is None:
        return None
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
    }
    if params:
        for key, attr in _PARAM_ATTRS.items():
            value = params.get(key)
            if isinstance(value, (int, float, str, bool)):
                attrs[attr] = value
    span = tracer.start_span(f"{operation} {model}", kind=_otel_trace.SpanKind.CLIENT, attributes=attrs)
    # no tracer provider installed (or the sampler said no): nothing to record, nothing to finish
    return span if span.is_recording() else None


_PARAM_ATTRS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}


def finish_span(
    span: Any,
    trace: Trace,
    *,
    provider: str | None = None,
    model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    finish_reason: str | None = None,
    error: BaseException | None = None,
) -> None:
    """Record the decisions as span events, the usage and outcome as attributes, and end the span."""
    if span is None:
        return
    for ev in trace.events:
        attrs: dict[str, Any] = {"arun.event.at": ev.at}
        if ev.target:
            attrs["arun.target"] = ev.target
        if ev.config:
            attrs["arun.config_id"] = ev.config
        for k, v in ev.detail.items():
            if isinstance(v, (int, float, str, bool)):
                attrs[f"arun.{k}"] = v
        span.add_event(f"arun.{ev.kind}", attributes=attrs)
    if provider:
        span.set_attribute("gen_ai.system", provider)
    if model:
        span.set_attribute("gen_ai.response.model", model)
    if input_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", int(input_tokens))
    if output_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", int(output_tokens))
    if finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", (finish_reason,))
    span.set_attribute("arun.attempts", trace.attempts)
    span.set_attribute("arun.retries", trace.retries)
    span.set_attribute("arun.rotations", trace.rotations)
    span.set_attribute("arun.fallbacks", trace.fallbacks)
    if trace.outcome:
        span.set_attribute("arun.outcome", trace.outcome)
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR, str(error)[:200]))  # type: ignore[union-attr,unused-ignore]
    span.end()
