"""LiteLLM (``litellm.acompletion`` / ``aembedding`` / ``arerank``) with
``api_base`` pointed at the upstream.  Runs in the peers venv only."""

from __future__ import annotations

import os
from time import perf_counter
from typing import Any

# no network: use the bundled model cost map instead of fetching it at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")

import litellm

from benchmarks.common import API_KEY, CHAT_MODEL, EMBED_MODEL, PROMPT, RERANK_MODEL

litellm.suppress_debug_info = True
litellm.telemetry = False


def version() -> str:
    try:
        from importlib.metadata import version as v
        return f"litellm {v('litellm')}"
    except Exception:
        return "litellm"


class Client:
    def __init__(self, url: str, spec: dict[str, Any]) -> None:
        self.base = url.rstrip("/")
        self.url = self.base + "/v1"
        self.spec = spec
        self.messages = [{"role": "user", "content": PROMPT}]

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        try:
            await litellm.close_litellm_async_clients()
        except Exception:
            pass

    async def stream(self) -> tuple[str, float | None, int, int]:
        pieces: list[str] = []
        t_first: float | None = None
        usage = -1
        s = await litellm.acompletion(model="openai/" + CHAT_MODEL, messages=self.messages,
                                      api_base=self.url, api_key=API_KEY, stream=True,
                                      stream_options={"include_usage": True}, max_retries=0)
        async for ch in s:
            for c in ch.choices:
                if c.delta.content:
                    if t_first is None:
                        t_first = perf_counter()
                    pieces.append(c.delta.content)
            u = getattr(ch, "usage", None)
            if u is not None:
                usage = u.completion_tokens
        return "".join(pieces), t_first, len(pieces), usage

    async def chat(self) -> tuple[str, int]:
        r = await litellm.acompletion(model="openai/" + CHAT_MODEL, messages=self.messages,
                                      api_base=self.url, api_key=API_KEY, max_retries=0)
        return r.choices[0].message.content or "", (r.usage.completion_tokens if r.usage else -1)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        r = await litellm.aembedding(model="openai/" + EMBED_MODEL, input=texts,
                                     api_base=self.url, api_key=API_KEY, max_retries=0)
        data = [d if isinstance(d, dict) else d.model_dump() for d in r.data]
        data.sort(key=lambda d: d["index"])
        return [d["embedding"] for d in data]

    async def rerank(self, query: str, docs: list[str], top_n: int) -> list[tuple[int, float, Any]]:
        r = await litellm.arerank(model="jina_ai/" + RERANK_MODEL, query=query, documents=docs,
                                  top_n=top_n, return_documents=True, api_base=self.url,
                                  api_key="jina_bench")
        out = []
        for it in r.results:
            it = it if isinstance(it, dict) else it.model_dump()
            doc = it.get("document")
            text = doc.get("text") if isinstance(doc, dict) else doc
            out.append((it["index"], it["relevance_score"], text))
        return out
