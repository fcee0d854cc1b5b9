"""What the bench sends: prompts, texts and rerank queries, from a JSONL file or synthetic.

Dataset files hold one JSON value per line (blank lines are skipped):

* ``run``: a string (one user message), ``{"prompt": "..."}``, ``{"messages": [...]}`` or a
  list of ``{"role": ..., "content": ...}`` messages;
* ``embed``: a string or ``{"text": "..."}``;
* ``rerank``: ``{"query": "...", "documents": ["...", ...]}``.

Synthetic text is drawn (seeded) from common English words that are one token each in
the GPT-2, cl100k and o200k encodings, so N words are about N tokens for most tokenizers.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from arun.bench.errors import BenchUsageError
from arun.entities.messages import PromptMessage, UserPromptMessage, messages_from_dicts

__all__ = [
    "WORDS",
    "synthetic_text",
    "synthetic_prompts",
    "synthetic_texts",
    "synthetic_rerank",
    "load_prompts",
    "load_texts",
    "load_rerank",
]

WORDS = tuple(
    """the of and to in is for on with as at by from that this it be are was or an not have has can will
    one all about more time people year way day man thing woman life child world school state family student
    group country problem hand part place case week company system program question work government number
    night point home water room mother area money story fact month lot right study book eye job word business
    issue side kind head house service friend father power hour game line end member law car city community
    name president team minute idea body information back parent face others level office door health person
    art war history party result change morning reason research girl guy moment air teacher force education""".split()
)

RerankQuery = tuple[str, list[str]]


def synthetic_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=max(1, words)))


def synthetic_prompts(count: int, input_tokens: int, seed: int) -> list[list[PromptMessage]]:
    """``count`` distinct single-message prompts of about ``input_tokens`` tokens each."""
    rng = random.Random(seed)
    return [[UserPromptMessage(content=synthetic_text(rng, input_tokens))] for _ in range(count)]


def synthetic_texts(count: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [synthetic_text(rng, words) for _ in range(count)]


def synthetic_rerank(count: int, docs: int, words: int, seed: int) -> list[RerankQuery]:
    rng = random.Random(seed)
    return [(synthetic_text(rng, 8), [synthetic_text(rng, words) for _ in range(docs)]) for _ in range(count)]


def _lines(path: str) -> Iterator[tuple[int, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchUsageError(f"--dataset {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchUsageError(f"--dataset {path}: cannot read it ({exc})") from None
    found = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchUsageError(f"--dataset {path} line {number}: not JSON ({exc.msg} at column {exc.colno})") from None
        found = True
        yield number, value
    if not found:
        raise BenchUsageError(f"--dataset {path}: the file has no lines")


def _bad(path: str, number: int, what: str) -> BenchUsageError:
    return BenchUsageError(f"--dataset {path} line {number}: {what}")


def _messages(path: str, number: int, value: Any) -> list[PromptMessage]:
    if isinstance(value, str) and value:
        return [UserPromptMessage(content=value)]
    if isinstance(value, dict) and isinstance(value.get("prompt"), str) and value["prompt"]:
        return [UserPromptMessage(content=value["prompt"])]
    items = value.get("messages") if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise _bad(path, number, 'expected a string, {"prompt": "..."}, {"messages": [...]} or a list of messages')
    try:
        return messages_from_dicts(items)
    except msgspec.ValidationError as exc:
        raise _bad(path, number, f"not a list of messages ({exc})") from None


def load_prompts(path: str) -> list[list[PromptMessage]]:
    return [_messages(path, number, value) for number, value in _lines(path)]


def load_texts(path: str) -> list[str]:
    out = []
    for number, value in _lines(path):
        text = value.get("text") if isinstance(value, dict) else value
        if not isinstance(text, str) or not text:
            raise _bad(path, number, 'expected a string or {"text": "..."}')
        out.append(text)
    return out


def load_rerank(path: str) -> list[RerankQuery]:
    out = []
    for number, value in _lines(path):
        query = value.get("query") if isinstance(value, dict) else None
        docs = value.get("documents") if isinstance(value, dict) else None
        if not isinstance(query, str) or not isinstance(docs, list) or not docs or not all(isinstance(d, str) for d in docs):
            raise _bad(path, number, 'expected {"query": "...", "documents": ["...", ...]}')
        out.append((query, docs))
    return out
