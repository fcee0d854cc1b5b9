"""Things the upstream, the runner and every client agree on.  Standard library only:
this module is imported inside the peers venv too."""

from __future__ import annotations

import base64
import struct

CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
RERANK_MODEL = "jina-reranker-v2-base-multilingual"
API_KEY = "sk-bench"
PROMPT = "Say something long."


def piece(i: int) -> str:
    """The content of streamed chunk ``i`` (0-based)."""
    return f"w{i} "


def expected_text(chunks: int) -> str:
    return "".join(piece(i) for i in range(chunks))


def embed_text(k: int) -> str:
    """Input text number ``k`` of an embedding fan-out.  The upstream parses the
    trailing integer back and puts it in component 0 of the vector, so every
    client can check that results come back in input order."""
    return f"document number {k}"


def order_key(text: str) -> float:
    try:
        return float(int(text.rsplit(" ", 1)[-1]))
    except ValueError:
        return -1.0


def rerank_docs(n: int) -> list[str]:
    return [f"passage {i} about topic {i % 7}" for i in range(n)]


def rerank_score(i: int, n: int) -> float:
    """Deterministic, distinct relevance score for document ``i`` of ``n``."""
    return round(((i * 7919) % n + 1) / (n + 1), 6)


def rerank_expected(n: int, top_n: int) -> list[tuple[int, float]]:
    scored = sorted(((i, rerank_score(i, n)) for i in range(n)), key=lambda t: -t[1])
    return scored[:top_n]


def b64_to_floats(s: str) -> tuple[float, ...]:
    raw = base64.b64decode(s)
    return struct.unpack(f"<{len(raw) // 4}f", raw)


# the fields one client run reports back to the runner (JSON line on stdout)
RESULT_FIELDS = (
    "client", "scenario", "ok", "error", "requests", "chunks", "wall_s", "cpu_s",
    "ttfc_p50_ms", "ttfc_p99_ms", "maxrss_mb", "checked",
)
