"""What one load level measured, as pure arithmetic over per-request samples.

Nothing here reads a clock: the load drivers record timestamps into :class:`Sample`
and :func:`summarize_level` turns a list of them into the figures of the report,
so every number can be checked on synthetic timestamps.

Definitions follow vLLM's ``bench serve`` and NVIDIA's genai-perf:

* TTFT: send -> first content (or tool-call) delta.
* ITL: the gaps between successive content deltas, pooled over all requests.
* TPOT: ``(e2e - TTFT) / (output_tokens - 1)`` per request (requests with one token have none).
* E2E: send -> last byte of the response.
* Throughputs divide by the level's wall time (first send -> last completion).
* Goodput: successful requests per second that met every SLO bound.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PERCENTILES",
    "Sample",
    "SLO",
    "percentile",
    "distribution",
    "parse_duration",
    "parse_slo",
    "meets_slo",
    "summarize_level",
]

PERCENTILES = (50, 90, 99)


@dataclass(slots=True)
class Sample:
    """One request: timestamps in seconds (any origin), counts, and the error class if it failed."""

    start: float
    end: float
    error: str | None = None  # the arun error class name (``InvokeRateLimitError``, ...)
    ttft: float | None = None  # seconds; None when not streamed (or nothing arrived)
    itl: list[float] = field(default_factory=list)  # seconds between successive content deltas
    output_tokens: int = 0
    input_tokens: int = 0
    tokens_from: str = "usage"  # "usage" (terminal usage) | "chunks" (counted content deltas) | "none"
    waited: float = 0.0  # seconds the policy layer waited (Retry-After, backoff, limits)
    retries: int = 0
    items: int = 0  # embed: texts sent; rerank: documents sent
    results: int = 0  # embed: vectors received; rerank: results received

    @property
    def e2e(self) -> float:
        return self.end - self.start

    @property
    def tpot(self) -> float | None:
        if self.ttft is None or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values`` by linear interpolation between closest ranks
    (numpy's default method, which vLLM's benchmark uses)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def distribution(values: Iterable[float | None], scale: float = 1000.0) -> dict[str, float] | None:
    """mean and p50/p90/p99 of the non-None values, times ``scale`` (seconds -> ms by default); None if empty."""
    vals = [v * scale for v in values if v is not None]
    if not vals:
        return None
    out = {"mean": sum(vals) / len(vals)}
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(vals, q)
    return out


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}


def parse_duration(text: str) -> float:
    """``"500ms"``, ``"5s"``, ``"1.5s"``, ``"2m"`` -> seconds; a bare number is refused (ms or s?)."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a duration: write a number with a unit, ms, s or m (e.g. 500ms, 5s)")
    return float(m.group(1)) * _UNIT[m.group(2)]


@dataclass(frozen=True, slots=True)
class SLO:
    """Upper bounds in seconds a request must meet to count towards goodput (None = no bound)."""

    ttft: float | None = None
    tpot: float | None = None
    e2e: float | None = None

    def to_dict(self) -> dict[str, float]:
        return {f"{k}_ms": v * 1000 for k, v in (("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e)) if v is not None}

    @property
    def needs_stream(self) -> bool:
        return self.ttft is not None or self.tpot is not None


def parse_slo(text: str) -> SLO:
    """``"ttft=500ms,tpot=50ms,e2e=5s"`` -> :class:`SLO`; the message names the part that is wrong."""
    bounds: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise ValueError(f"{part.strip()!r}: expected NAME=DURATION (names: ttft, tpot, e2e)")
        if key not in ("ttft", "tpot", "e2e"):
            raise ValueError(f"{key!r}: unknown SLO metric (use ttft, tpot or e2e)")
        if key in bounds:
            raise ValueError(f"{key!r} given twice")
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
        if seconds <= 0:
            raise ValueError(f"{key}: the bound must be positive")
        bounds[key] = seconds
    if not bounds:
        raise ValueError("no bound given (e.g. ttft=500ms,e2e=5s)")
    return SLO(**bounds)


def meets_slo(sample: Sample, slo: SLO) -> bool:
    """A failed request never meets it; a bound on a figure the request lacks (TPOT of a
    one-token answer) is not held against it."""
    if sample.error is not None:
        return False
    if slo.ttft is not None and (sample.ttft is None or sample.ttft > slo.ttft):
        return False
    tpot = sample.tpot
    if slo.tpot is not None and tpot is not None and tpot > slo.tpot:
        return False
    return not (slo.e2e is not None and sample.e2e > slo.e2e)


def _tokens_source(ok: Sequence[Sample]) -> str:
    kinds = {s.tokens_from for s in ok}
    if not kinds:
        return "none"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def summarize_level(
    samples: Sequence[Sample], *, started: float, cpu_seconds: float, slo: SLO | None = None
) -> dict[str, Any]:
    """Every figure of one level. ``started``: when the level began sending (same clock as the
    samples); ``cpu_seconds``: the client process's CPU time spent during the level."""
    ok = [s for s in samples if s.error is None]
    ended = max((s.end for s in samples), default=started)
    wall = ended - started
    per_s = (lambda n: n / wall) if wall > 0 else (lambda n: 0.0)
    out_tokens = sum(s.output_tokens for s in ok)
    in_tokens = sum(s.input_tokens for s in ok)
    waited = [s for s in samples if s.waited > 0]
    summary: dict[str, Any] = {
        "requests": len(samples),
        "completed": len(ok),
        "failed": len(samples) - len(ok),
        "duration_s": wall,
        "request_throughput": per_s(len(ok)),
        "output_throughput": per_s(out_tokens),
        "input_throughput": per_s(in_tokens),
        "total_token_throughput": per_s(out_tokens + in_tokens),
        "total_input_tokens": in_tokens,
        "total_output_tokens": out_tokens,
        "output_tokens_source": _tokens_source(ok),
        "ttft_ms": distribution(s.ttft for s in ok),
        "tpot_ms": distribution(s.tpot for s in ok),
        "itl_ms": distribution(gap for s in ok for gap in s.itl),
        "e2e_ms": distribution(s.e2e for s in ok),
        "errors": dict(sorted(Counter(s.error for s in samples if s.error is not None).items())),
        "rate_limit_waits": {
            "requests": len(waited),
            "seconds": sum(s.waited for s in waited),
            "retries": sum(s.retries for s in samples),
        },
        "client_cpu": {
            "seconds": cpu_seconds,
            "ms_per_request": cpu_seconds * 1000 / len(samples) if samples else 0.0,
            "core_utilization": cpu_seconds / wall if wall > 0 else 0.0,
        },
    }
    items = sum(s.items for s in ok)
    if items:
        summary["items"] = items
        summary["items_throughput"] = per_s(items)
        summary["results"] = sum(s.results for s in ok)
        summary["results_throughput"] = per_s(summary["results"])
    if slo is not None:
        good = sum(1 for s in samples if meets_slo(s, slo))
        summary["goodput"] = {
            "slo": slo.to_dict(),
            "good_requests": good,
            "request_goodput": per_s(good),
            "fraction": good / len(samples) if samples else 0.0,
        }
    return summary
