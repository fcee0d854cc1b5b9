"""Retry arithmetic and the retry / rotate decision, in one place.

The *loop* lives in :mod:`arun.policy.router` (one flat ``while`` per target);
this module owns the rules it applies, so that nothing else in arun retries:

* **what is retried on the same credential**: connect errors, timeouts and
  pre-commit stream cuts (:class:`InvokeConnectionError`), 408 / 409 / 429 /
  5xx / 529 (:class:`InvokeServerUnavailableError`, :class:`InvokeRateLimitError`
  except :class:`InvokeQuotaExhaustedError`, or any error whose ``status`` is one
  of those) — the policy of the official OpenAI and Anthropic SDKs
  (PROTOCOLS.md §0.6);
* ``x-should-retry: true|false`` on the failed response overrides the status;
* the delay: the error's ``retry_after`` (already parsed from ``retry-after-ms``,
  then ``retry-after`` seconds or HTTP date, by the protocol layer) when it is at
  most :attr:`RetryPolicy.retry_after_cap`; a longer hint means *do not retry this
  credential* (rotate instead); no hint → exponential backoff with full jitter
  ``uniform(0, min(max_delay, base_delay * 2**n))``;
* **what is rotated to another credential**: everything retryable, plus
  authorization errors and exhausted quotas (the key is the problem, not the
  request); bad requests (context length, content filter, unknown model) are
  neither retried nor rotated — only a fallback chain can help them;
* the budgets: ``max_retries`` (sleep, then call again) and ``max_rotations``
  (switch to another credential at once) are separate, so a dead key never eats
  the retries of a healthy one (Bifrost #5876).

Failed responses are closed before the loop sleeps: ``HttpClient.request`` and
``HttpClient.stream`` read and release the body of an error status before
raising, and ``LLMStream`` closes its generator before raising an iteration
error.  Once any output reached the caller, nothing is retried: the router
raises a terminal error instead (see :meth:`PolicyRouter.invoke`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arun.errors import (
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
)

__all__ = ["RetryPolicy", "Decision", "RETRY_STATUSES", "should_retry_header", "is_retryable", "is_rotatable"]

#: Statuses the official SDKs retry (plus every status >= 500).
RETRY_STATUSES = frozenset({408, 409, 429, 529})


def should_retry_header(exc: BaseException) -> bool | None:
    """The ``x-should-retry`` header of the failed response: True, False or None (absent)."""
    headers = getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("x-should-retry")
    except AttributeError:
        return None
    if value is None:
        return None
    value = str(value).strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def is_retryable(exc: BaseException) -> bool:
    """May the same call be sent again on the same credential (ignoring budgets and caps)?"""
    hint = should_retry_header(exc)
    if hint is not None:
        return hint
    if isinstance(exc, InvokeQuotaExhaustedError):
        return False
    if isinstance(exc, (InvokeConnectionError, InvokeServerUnavailableError, InvokeRateLimitError)):
        return True
    status = getattr(exc, "status", None)
    return bool(isinstance(status, int) and (status in RETRY_STATUSES or status >= 500))


def is_rotatable(exc: BaseException) -> bool:
    """Would another credential of the same model plausibly succeed?"""
    if isinstance(exc, (InvokeAuthorizationError, InvokeRateLimitError)):
        return True  # includes InvokeQuotaExhaustedError
    if isinstance(exc, (InvokeConnectionError, InvokeServerUnavailableError)):
        return True
    if getattr(exc, "limit_exceeded", False) or type(exc).__name__ == "LimitExceededError":
        return True
    status = getattr(exc, "status", None)
    return isinstance(status, int) and (status in RETRY_STATUSES or status >= 500)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the loop may do after one failed attempt."""

    retry: bool  # may sleep ``delay`` and call again on this credential
    rotate: bool  # may switch to another credential now
    exclude: bool  # never use this credential again in this request (hint beyond the cap)
    delay: float  # seconds to sleep before a retry
    reason: str  # "retry-after" | "backoff" | "retry-after beyond cap" | "not retryable" | "x-should-retry: false"


@dataclass(frozen=True)
class RetryPolicy:
    """Budgets and delays.  ``rng`` is injectable for tests (``random.random`` by default)."""

    max_retries: int = 2
    max_rotations: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 60.0
    rng: Callable[[], float] = random.random
    #: rotate only on these error classes (None: every rotatable error, see :func:`is_rotatable`)
    rotate_on: tuple[type[BaseException], ...] | None = None

    @classmethod
    def dify(cls) -> RetryPolicy:
        """Dify's balancer: no retries; rotate (without a cap, each config once) on rate limits,
        auth and connection errors; anything else is raised at once."""
        return cls(
            max_retries=0, max_rotations=1_000_000,
            rotate_on=(InvokeRateLimitError, InvokeAuthorizationError, InvokeConnectionError),
        )  # fmt: skip

    def backoff(self, attempt: int) -> float:
        """Full jitter: ``uniform(0, min(max_delay, base_delay * 2**attempt))``; ``attempt`` counts from 0."""
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** min(attempt, 30)))
        return ceiling * self.rng()

    def decide(self, exc: BaseException, retries_done: int) -> Decision:
        """Classify one failure; budgets are checked by the caller (``retries_done`` picks the backoff step)."""
        rotate = is_rotatable(exc) if self.rotate_on is None else isinstance(exc, self.rotate_on)
        if getattr(exc, "limit_exceeded", False):
            return Decision(False, True, False, 0.0, "local limit")  # the limiter already waited
        hint = should_retry_header(exc)
        if not is_retryable(exc):
            reason = "x-should-retry: false" if hint is False else "not retryable"
            return Decision(False, rotate, False, 0.0, reason)
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, (int, float)) and ra > 0:
            if ra > self.retry_after_cap:
                return Decision(False, True, True, 0.0, "retry-after beyond cap")
            return Decision(True, rotate, False, float(ra), "retry-after")
        return Decision(True, rotate, False, self.backoff(retries_done), "backoff")


def error_name(exc: BaseException) -> str:
    return type(exc).__name__


def describe(exc: BaseException) -> dict[str, Any]:
    """A short structured view of an error, for traces."""
    out: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, InvokeError):
        if exc.status is not None:
            out["status"] = exc.status
        if exc.retry_after is not None:
            out["retry_after"] = exc.retry_after
    return out
