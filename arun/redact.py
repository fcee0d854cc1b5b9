"""Keep secrets out of messages, logs, reprs and traces.

Two layers: the exact values the runtime has seen in ``secret-input`` credential
fields (registered when credentials pass through a model call) and patterns for
the key shapes providers echo back in their error bodies ("Incorrect API key
provided: sk-abc...").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact", "register_secret", "register_secrets", "MASK"]

MASK = "****"

_PATTERNS = re.compile(
    r"\b(?:sk|pk|rk|jina|gsk|xai)[-_][A-Za-z0-9_\-]{6,}"  # provider key shapes
    r"|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*"  # Authorization headers
)

_known: set[str] = set()
_known_re: re.Pattern[str] | None = None


def register_secret(value: object) -> None:
    """Remember a secret value so that :func:`redact` hides it wherever it appears."""
    global _known_re
    if isinstance(value, str) and len(value) >= 8 and value not in _known:
        _known.add(value)
        _known_re = re.compile("|".join(re.escape(s) for s in sorted(_known, key=len, reverse=True)))


def register_secrets(values: Iterable[object]) -> None:
    for value in values:
        register_secret(value)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and key-shaped token masked."""
    if not text:
        return text
    if _known_re is not None:
        text = _known_re.sub(MASK, text)
    return _PATTERNS.sub(_mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    token = match.group(0)
    if token[:6].lower() == "bearer":
        return "Bearer " + MASK
    return token[:3] + MASK
