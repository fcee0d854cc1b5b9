"""Deterministic response generation shared by every simulated protocol.

Everything here is pure and cheap: the protocol modules normalise their request into a
:class:`Conversation`, call :func:`plan_reply`, and render the resulting :class:`Reply` in their
own wire format.  The token formulas are public so tests can compute expected usage numbers.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import msgspec

__all__ = [
    "Conversation",
    "Reply",
    "ToolCall",
    "ToolSpec",
    "count_words",
    "prompt_tokens",
    "completion_tokens",
    "embedding_tokens",
    "rerank_tokens",
    "split_pieces",
    "tool_arguments",
    "plan_reply",
    "embedding_vector",
    "rerank_score",
    "moderation_flagged",
    "transcript_text",
    "audio_bytes",
    "split_arguments",
    "PAD_WORDS",
    "MAX_TOOL_CALLS",
]

MAX_TOOL_CALLS = 4
PAD_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

_json_encode = msgspec.json.encode
_PIECE_RE = re.compile(r"\S+\s*")


# --------------------------------------------------------------------------- token formulas


def count_words(text: str | None) -> int:
    """Number of whitespace-separated words in ``text``."""
    if not text:
        return 0
    return len(text.split())


def prompt_tokens(texts: Iterable[str], n_messages: int) -> int:
    """Prompt tokens = words over all message texts (+ system text) + 3 per message."""
    return sum(count_words(t) for t in texts) + 3 * n_messages


def completion_tokens(reply: "Reply") -> int:
    """Pieces of content, or words in the tool-call arguments when the reply is tool calls."""
    if reply.tool_calls:
        return sum(count_words(c.arguments) for c in reply.tool_calls)
    return len(reply.pieces)


def embedding_tokens(inputs: Iterable[str]) -> int:
    """Embedding tokens = words per input, summed."""
    return sum(count_words(t) for t in inputs)


def rerank_tokens(query: str, documents: Sequence[str]) -> int:
    """Rerank usage = words in the query + words in every document."""
    return count_words(query) + sum(count_words(d) for d in documents)


# --------------------------------------------------------------------------- conversations


@dataclass
class ToolSpec:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON object text
    input: dict[str, Any]


@dataclass
class Conversation:
    """Protocol-neutral view of a chat request."""

    texts: list[str]  # every text that counts towards prompt tokens (system included)
    n_messages: int  # messages counted for the +3 overhead
    last_role: str  # "user" | "tool" | "assistant" | "system" | ""
    last_user_text: str
    tool_results: list[str]
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice_none: bool = False
    json_mode: bool = False
    max_words: int | None = None
    stop: list[str] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return prompt_tokens(self.texts, self.n_messages)


@dataclass
class Reply:
    text: str  # "".join(pieces)
    pieces: list[str]
    finish: str  # "stop" | "length" | "stop_sequence" | "tool_calls"
    stop_sequence: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        return completion_tokens(self)


def split_pieces(text: str) -> list[str]:
    """Split text word by word; each piece is a word plus its trailing whitespace.

    ``"".join(split_pieces(t)) == t`` always holds (leading whitespace sticks to the first piece).
    """
    pieces = _PIECE_RE.findall(text)
    if not pieces:
        return [text] if text else []
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces[0] = text[:lead] + pieces[0]
    return pieces


def _schema_properties(params: Any) -> dict[str, Any]:
    if isinstance(params, dict):
        props = params.get("properties")
        if isinstance(props, dict):
            return props
    return {}


def tool_arguments(tool: ToolSpec, user_text: str) -> dict[str, Any]:
    """One entry per schema property: string → user text, integer/number → 1, boolean → true."""
    out: dict[str, Any] = {}
    for name, schema in _schema_properties(tool.parameters).items():
        typ = schema.get("type") if isinstance(schema, dict) else None
        if isinstance(typ, list):  # e.g. ["string", "null"]
            typ = next((t for t in typ if t != "null"), None)
        if typ == "string":
            out[name] = user_text
        elif typ in ("integer", "number"):
            out[name] = 1
        elif typ == "boolean":
            out[name] = True
        else:
            out[name] = None
    return out


def split_arguments(arguments: str, max_piece: int = 24) -> list[str]:
    """Split a JSON argument string into >= 2 fragments (at most ``max_piece`` chars each)."""
    n = len(arguments)
    if n < 2:
        return [arguments, ""]
    size = min(max_piece, (n + 1) // 2)
    return [arguments[i : i + size] for i in range(0, n, size)]


def _pad_words(words: list[str], n: int) -> list[str]:
    if len(words) >= n:
        return words[:n]
    out = list(words)
    i = 0
    while len(out) < n:
        out.append(PAD_WORDS[i % len(PAD_WORDS)])
        i += 1
    return out


def base_reply_text(conv: Conversation, reply_words: int | None = None) -> str:
    """The unconstrained reply text (before JSON wrapping, stop sequences and max tokens)."""
    if conv.last_role == "tool":
        text = "Tool results: " + "; ".join(conv.tool_results)
    else:
        text = "Echo: " + conv.last_user_text
    if reply_words is not None:
        text = " ".join(_pad_words(text.split(), max(0, reply_words)))
    return text


def plan_reply(
    conv: Conversation,
    *,
    reply_words: int | None = None,
    id_prefix: str = "call_",
) -> Reply:
    """Decide what the simulated model answers for ``conv``."""
    if conv.tools and conv.last_role == "user" and not conv.tool_choice_none:
        calls = []
        for i, tool in enumerate(conv.tools[:MAX_TOOL_CALLS]):
            args = tool_arguments(tool, conv.last_user_text)
            calls.append(
                ToolCall(
                    id=f"{id_prefix}{i}",
                    name=tool.name,
                    arguments=_json_encode(args).decode(),
                    input=args,
                )
            )
        return Reply(text="", pieces=[], finish="tool_calls", tool_calls=calls)

    text = base_reply_text(conv, reply_words)
    if conv.json_mode:
        text = _json_encode({"answer": text}).decode()
    finish = "stop"
    matched: str | None = None
    if conv.stop:
        best = -1
        for s in conv.stop:
            if not s:
                continue
            pos = text.find(s)
            if pos != -1 and (best == -1 or pos < best):
                best, matched = pos, s
        if best != -1:
            text = text[:best]
            finish = "stop_sequence"
        else:
            matched = None
    pieces = split_pieces(text)
    if conv.max_words is not None and len(pieces) > conv.max_words:
        pieces = pieces[: max(0, conv.max_words)]
        finish, matched = "length", None
        text = "".join(pieces)
    return Reply(text=text, pieces=pieces, finish=finish, stop_sequence=matched)


# --------------------------------------------------------------------------- other modalities


@lru_cache(maxsize=4096)
def _vector(text: str, dim: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return tuple(v / norm for v in vec)


def embedding_vector(text: str, dim: int = 8) -> list[float]:
    """Deterministic L2-normalised vector for ``text`` (seeded from its sha256)."""
    return list(_vector(text, max(1, int(dim))))


def rerank_score(query: str, document: str) -> float:
    """Word-overlap relevance in [0, 1]: share of distinct query words found in the document."""
    q = {w.strip(".,;:!?\"'()").lower() for w in query.split()} - {""}
    if not q:
        return 0.0
    d = {w.strip(".,;:!?\"'()").lower() for w in document.split()}
    return len(q & d) / len(q)


def moderation_flagged(text: str) -> dict[str, bool]:
    """Which moderation categories fire: ``hate`` for the word "hate", ``violence`` for "kill"."""
    words = {w.strip(".,;:!?\"'()").lower() for w in text.split()}
    return {"hate": "hate" in words, "violence": "kill" in words}


def transcript_text(n_bytes: int) -> str:
    return f"transcript of {n_bytes} bytes"


_AUDIO_MAGIC = {
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "wav": b"RIFF\x00\x00\x00\x00WAVE",
    "flac": b"fLaC",
    "opus": b"OggS",
    "aac": b"\xff\xf1",
    "pcm": b"",
}


def audio_bytes(text: str, bytes_per_word: int = 256, fmt: str = "mp3") -> bytes:
    """Deterministic audio: ``bytes_per_word`` bytes per input word (at least one word)."""
    total = max(1, count_words(text)) * max(1, bytes_per_word)
    head = _AUDIO_MAGIC.get(fmt, _AUDIO_MAGIC["mp3"])
    seed = hashlib.sha256(text.encode("utf-8")).digest()
    body_len = max(0, total - len(head))
    reps = body_len // len(seed) + 1
    return (head + (seed * reps)[:body_len])[:total] if total >= len(head) else head[:total]
