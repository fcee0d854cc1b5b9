"""What a limit is: :class:`LimitSpec` (configured), :class:`LimitState` (seen), :class:`LimitExceededError`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arun.errors import ArunUsageError, InvokeRateLimitError

__all__ = ["DEFAULT_WINDOW", "UNLIMITED", "LimitSpec", "LimitState", "LimitExceededError", "stricter"]

#: Seconds over which ``rpm`` and ``tpm`` are counted.
DEFAULT_WINDOW = 60.0


def _positive_int(name: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ArunUsageError(f"limit {name!r} must be a positive integer, got {value!r}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ArunUsageError(f"limit {name!r} must be a positive integer, got {value!r}") from None
    if not math.isfinite(number) or number < 1 or number != int(number):
        raise ArunUsageError(f"limit {name!r} must be a positive integer, got {value!r}")
    return int(number)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """Limits of one (credential config, model); ``None`` means unlimited.

    ``rpm`` and ``tpm`` count per limiter window (60 s unless the limiter was
    built with another ``window``).
    """

    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_in_flight"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ArunUsageError(f"LimitSpec.{name} must be a positive int or None, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "LimitSpec":
        """Read ``rpm`` / ``tpm`` / ``max_in_flight`` (ints or numeric strings).

        Works on a credential config dict or a model YAML's ``model_properties``;
        other keys are ignored, missing or empty values mean unlimited.
        Anything else (zero, negative, fractional, not a number) raises ValueError.
        """
        if not data:
            return UNLIMITED
        return cls(
            rpm=_positive_int("rpm", data.get("rpm")),
            tpm=_positive_int("tpm", data.get("tpm")),
            max_in_flight=_positive_int("max_in_flight", data.get("max_in_flight")),
        )

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_in_flight is None

    def tighten(self, other: "LimitSpec | None") -> "LimitSpec":
        """The stricter of the two, limit by limit (e.g. credential config and model YAML)."""
        if other is None:
            return self
        return LimitSpec(stricter(self.rpm, other.rpm), stricter(self.tpm, other.tpm), stricter(self.max_in_flight, other.max_in_flight))


UNLIMITED = LimitSpec()


def stricter(a: int | None, b: int | None) -> int | None:
    """The lower of two limits, None being no limit."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


@dataclass(frozen=True, slots=True)
class LimitState:
    """What an operator sees for one key (see :meth:`Limiter.snapshot`)."""

    key: str
    #: Effective limits: the configured spec tightened by what headers taught.
    rpm: int | None
    tpm: int | None
    max_in_flight: int | None
    #: Left in the current window (None when unlimited).
    requests_remaining: int | None
    tokens_remaining: int | None
    in_flight: int
    #: Wall-clock (``time.time()``) end of a header block, None when not blocked.
    blocked_until: float | None = None
    block_reason: str | None = None
    window: float = DEFAULT_WINDOW


class LimitExceededError(InvokeRateLimitError):
    """Capacity did not come before the deadline.

    ``retry_after`` estimates the seconds until it does (None when it never
    will: the request alone needs more tokens than ``tpm``, or the limiter
    closed).  ``reason`` is one of ``rpm``, ``tpm``, ``in_flight``,
    ``blocked``, ``too_large``; ``queue`` when the deadline passed behind
    earlier callers before the limit was known, ``closed`` when the limiter
    closed under a waiter.
    """

    description = "Rate Limit Error"

    def __init__(self, key: str, reason: str, retry_after: float | None, detail: str = "") -> None:
        when = f", capacity in ~{retry_after:.3f}s" if retry_after is not None else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"Rate Limit Error, local {reason} limit for {key}{extra}{when}",
            retry_after=None if retry_after is None else max(0.0, retry_after),
        )
        self.key = key
        self.reason = reason
