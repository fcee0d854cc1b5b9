"""Keep secrets out of messages, logs, reprs and traces.

Three layers, applied by :func:`redact` in this order:

1. ``extra``: the exact secret values of the call at hand (every credential field
   the provider schema marks secret, see :func:`secret_values`), masked wherever
   they appear, whatever their length.  They are few (one or two per call), so a
   plain ``str.replace`` per value is the whole cost.
2. The registry: every secret value (8 characters or more) the runtime has seen
   pass through a call, kept so that text built far from the call (a log line, a
   cooldown reason) is masked too.
3. Patterns for the key shapes providers echo back ("Incorrect API key provided:
   sk-abc...", ``Bearer ...``).

The registry
------------
:func:`register_secret` runs on every request, so it is O(1) and compiles
nothing: a value already known is only moved to the young end of an LRU
(``OrderedDict.move_to_end``); a new one is appended and indexed under its first
:data:`MIN_REGISTERED` characters.  The registry holds at most
:func:`capacity` values (``$ARUN_REDACT_CAPACITY``, default 10,000; see
:func:`set_capacity`); the least recently registered is forgotten first.  A value
still in use is registered again by its next call.

The matcher does not grow with the registry: one precompiled regex finds, in C,
the positions where a registered value can start -- after whitespace, a quote, a
bracket or one of ``, ; = : & ? | / \\`` (or at the start of the text), with at
least 8 non-space characters ahead -- and each such position costs one dict probe
of the next 8 characters in the prefix index, whatever the number of secrets.
Only a hit compares the values that share the prefix (longest first) against the
text.  Cost: O(candidate positions) probes, memory: O(capacity).  So a registered
value is found wherever it appears as a token of the text (``key=...``,
``"..."``, ``Bearer ...``, a URL segment), not when glued to the end of another
word; and not when its first 8 characters hold whitespace (API keys have none).
The call's own values (``extra``) are found anywhere.

Values shorter than 8 characters are never registered: masking every occurrence
of a short string in every text would destroy ordinary messages.  The call's own
short values are masked through ``extra`` (:meth:`arun.errors.ArunError.redact_with`).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "MIN_REGISTERED",
    "capacity",
    "redact",
    "register_secret",
    "register_secrets",
    "registered_count",
    "secret_values",
    "set_capacity",
]

MASK = "****"
#: Shortest value the registry keeps (and the length of its index prefix).
MIN_REGISTERED = 8
_DEFAULT_CAPACITY = 10_000

_PATTERNS = re.compile(
    r"\b(?:sk|pk|rk|jina|gsk|xai)[-_][A-Za-z0-9_\-]{6,}"  # provider key shapes
    r"|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*"  # Authorization headers
)
#: Where a registered value can start: after a delimiter (or at the start), MIN_REGISTERED non-spaces ahead.
_CANDIDATE = re.compile(r"(?<![^\s\"'`<>()\[\]{},;=:&?|\\/])(?=\S{" + str(MIN_REGISTERED) + "})")

#: value -> None, oldest first (an LRU).
_registry: OrderedDict[str, None] = OrderedDict()
#: first MIN_REGISTERED characters -> the registered values that start with them, longest first.
_index: dict[str, tuple[str, ...]] = {}
_lock = threading.Lock()


def _capacity_from_env() -> int:
    try:
        return max(1, int(os.environ.get("ARUN_REDACT_CAPACITY") or _DEFAULT_CAPACITY))
    except ValueError:
        return _DEFAULT_CAPACITY


_capacity = _capacity_from_env()


def capacity() -> int:
    """How many secret values the registry keeps."""
    return _capacity


def set_capacity(size: int) -> None:
    """Bound the registry to ``size`` values (at least 1), forgetting the oldest beyond it."""
    global _capacity
    if size < 1:
        from arun.errors import ArunUsageError  # arun.errors builds on this module

        raise ArunUsageError("the redaction registry needs a capacity of at least 1")
    with _lock:
        _capacity = size
        while len(_registry) > _capacity:
            _forget_oldest()


def registered_count() -> int:
    """How many secret values the registry holds now."""
    return len(_registry)


def register_secret(value: object) -> None:
    """Remember a secret value (8 characters or more) so that :func:`redact` hides it wherever it appears."""
    if not isinstance(value, str) or len(value) < MIN_REGISTERED:
        return
    try:  # known: made young again, one C call and no lock (the common case: every request)
        _registry.move_to_end(value)
        return
    except KeyError:
        pass
    with _lock:
        if value in _registry:
            _registry.move_to_end(value)
            return
        _registry[value] = None
        key = value[:MIN_REGISTERED]
        _index[key] = tuple(sorted((*_index.get(key, ()), value), key=len, reverse=True))
        if len(_registry) > _capacity:
            _forget_oldest()


def register_secrets(values: Iterable[object]) -> None:
    for value in values:
        register_secret(value)


def _forget_oldest() -> None:
    old, _ = _registry.popitem(last=False)
    key = old[:MIN_REGISTERED]
    rest = tuple(v for v in _index.get(key, ()) if v != old)
    if rest:
        _index[key] = rest
    else:
        _index.pop(key, None)


def secret_values(credentials: Mapping[str, Any] | None, secret_fields: Iterable[str]) -> tuple[str, ...]:
    """The non-empty string values of ``credentials`` under the fields the schema marks secret."""
    if not credentials:
        return ()
    out = []
    for name in secret_fields:
        value = credentials.get(name)
        if isinstance(value, str) and value:
            out.append(value)
    return tuple(out)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """Return ``text`` with the ``extra`` values, every registered secret and every key-shaped token masked."""
    if not text:
        return text
    if extra:
        for value in sorted((v for v in extra if isinstance(v, str) and v), key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
    if _index:
        text = _mask_registered(text)
    return _PATTERNS.sub(_mask_match, text)


def _mask_registered(text: str) -> str:
    index = _index
    spans: list[tuple[int, int]] = []
    covered = 0  # text before this offset is already masked
    for candidate in _CANDIDATE.finditer(text):
        i = candidate.start()
        if i < covered:
            continue
        values = index.get(text[i : i + MIN_REGISTERED])
        if values is not None:
            hit = next((v for v in values if text.startswith(v, i)), None)
            if hit is not None:
                spans.append((i, i + len(hit)))
                covered = i + len(hit)
    if not spans:
        return text
    parts = []
    last = 0
    for a, b in spans:
        parts.append(text[last:a])
        parts.append(MASK)
        last = b
    parts.append(text[last:])
    return "".join(parts)


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    if token[:6].lower() == "bearer":
        return "Bearer " + MASK
    return token[:3] + MASK
