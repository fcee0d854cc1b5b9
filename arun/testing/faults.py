"""Fault descriptions and the FIFO fault queue used by the upstream simulator."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Fault", "FaultRule", "FaultQueue"]


@dataclass
class Fault:
    """What to do to one matching request instead of (or while) answering it normally.

    status            respond with that status and the provider's real error body/headers
    body              raw response body (with ``status``, default 200 when only a body is given)
    headers           extra response headers (added to whatever response is produced)
    retry_after       seconds; sets ``retry-after`` and ``retry-after-ms`` on status responses
    error_type        provider error type / code (e.g. ``context_length_exceeded``)
    message           error message override
    disconnect_after  stream: send N events then drop the connection; non-stream: drop before body
    error_event_after stream: after N events send the provider's in-stream error and end
    stall_after       stream: after N events sleep ``stall_seconds`` then finish normally
    first_byte_delay  sleep before sending the response headers
    malformed         non-stream: truncated JSON body (200); stream: one garbage event first
    """

    status: int | None = None
    body: bytes | None = None
    headers: dict[str, str] | None = None
    retry_after: float | None = None
    error_type: str | None = None
    message: str | None = None
    disconnect_after: int | None = None
    error_event_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 30.0
    first_byte_delay: float = 0.0
    malformed: bool = False

    @property
    def replaces_response(self) -> bool:
        """True when the fault answers with an error/raw body instead of the normal response."""
        return self.status is not None or self.body is not None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fault":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        kwargs = dict(data)
        body = kwargs.get("body")
        if isinstance(body, str):
            kwargs["body"] = body.encode("utf-8")
        for name in ("status", "disconnect_after", "error_event_after", "stall_after"):
            v = kwargs.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"{name} must be an integer")
        for name in ("retry_after", "stall_seconds", "first_byte_delay"):
            v = kwargs.get(name)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
                raise ValueError(f"{name} must be a number")
        for name in ("error_type", "message"):
            v = kwargs.get(name)
            if v is not None and not isinstance(v, str):
                raise ValueError(f"{name} must be a string")
        if kwargs.get("headers") is not None and not isinstance(kwargs["headers"], dict):
            raise ValueError("headers must be an object")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d.get("body"), bytes):
            d["body"] = d["body"].decode("utf-8", "replace")
        return d


@dataclass
class FaultRule:
    fault: Fault
    path: str | None = None
    key: str | None = None
    remaining: int | None = 1  # None = forever
    hits: int = field(default=0)

    def matches(self, path: str, key: str | None) -> bool:
        if self.path is not None and not path.startswith(self.path):
            return False
        return not (self.key is not None and key != self.key)


class FaultQueue:
    """FIFO list of fault rules; the first matching rule wins and is consumed once per request."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()  # push() may be called from another thread

    def push(
        self,
        fault: Fault,
        *,
        path: str | None = None,
        key: str | None = None,
        times: int | None = 1,
    ) -> FaultRule:
        """Apply ``fault`` to the next ``times`` requests (None = forever) matching path/key."""
        if times is not None and times <= 0:
            raise ValueError("times must be positive or None")
        rule = FaultRule(fault=fault, path=path, key=key, remaining=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, path: str, key: str | None) -> Fault | None:
        """Return the fault for this request (consuming one use of its rule), or None."""
        if not self._rules:
            return None
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(path, key):
                    rule.hits += 1
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            del self._rules[i]
                    return rule.fault
        return None

    @property
    def pending(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __bool__(self) -> bool:  # an empty queue is still a queue object; keep truthiness sane
        return True
