"""The official openai SDK (AsyncOpenAI, httpx) pointed at the upstream.  Runs in
the peers venv only."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import openai

from benchmarks.common import API_KEY, CHAT_MODEL, EMBED_MODEL, PROMPT

SUPPORTS = frozenset({"stream", "chat", "embed"})  # the SDK has no rerank endpoint


def version() -> str:
    return f"openai {openai.__version__}"


class Client:
    def __init__(self, url: str, spec: dict[str, Any]) -> None:
        self.url = url.rstrip("/") + "/v1"
        self.spec = spec
        self.messages = [{"role": "user", "content": PROMPT}]

    async def start(self) -> None:
        self.client = openai.AsyncOpenAI(api_key=API_KEY, base_url=self.url, max_retries=0,
                                         timeout=120.0)

    async def close(self) -> None:
        await self.client.close()

    async def stream(self) -> tuple[str, float | None, int, int]:
        pieces: list[str] = []
        t_first: float | None = None
        usage = -1
        s = await self.client.chat.completions.create(
            model=CHAT_MODEL, messages=self.messages, stream=True,
            stream_options={"include_usage": True})
        async with s:
            async for ch in s:
                for c in ch.choices:
                    if c.delta.content:
                        if t_first is None:
                            t_first = perf_counter()
                        pieces.append(c.delta.content)
                if ch.usage is not None:
                    usage = ch.usage.completion_tokens
        return "".join(pieces), t_first, len(pieces), usage

    async def chat(self) -> tuple[str, int]:
        r = await self.client.chat.completions.create(model=CHAT_MODEL, messages=self.messages)
        return r.choices[0].message.content or "", (r.usage.completion_tokens if r.usage else -1)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        # the SDK asks for base64 by default and decodes it itself
        r = await self.client.embeddings.create(model=EMBED_MODEL, input=texts)
        data = sorted(r.data, key=lambda d: d.index)
        return [d.embedding for d in data]
