"""arun through its public API only (``ModelRuntime`` + model instances), with
default settings.  ``python -m benchmarks.clients.arun_client --max-chunks``
prints the embedding model's ``max_chunks`` (the fan-out batch size)."""

from __future__ import annotations

import asyncio
import sys
from time import perf_counter
from typing import Any

from benchmarks.common import API_KEY, CHAT_MODEL, EMBED_MODEL, PROMPT, RERANK_MODEL


def version() -> str:
    import arun
    return f"arun {arun.__version__}"


async def consume(stream: Any) -> tuple[str, float | None, int, int]:
    """Read an arun stream to its end: (text, time of the first content chunk, content chunks,
    completion tokens from the usage chunk or -1)."""
    pieces: list[str] = []
    t_first: float | None = None
    usage = -1
    async with stream:
        async for chunk in stream:
            content = chunk.delta.message.content
            if content:
                if t_first is None:
                    t_first = perf_counter()
                pieces.append(content)
            u = chunk.delta.usage
            if u is not None:
                usage = u.completion_tokens
    return "".join(pieces), t_first, len(pieces), usage


class Client:
    def __init__(self, url: str, spec: dict[str, Any]) -> None:
        self.base = url.rstrip("/")
        self.spec = spec
        self.creds = {"openai_api_key": API_KEY, "openai_api_base": self.base}
        self.jina_creds = {"api_key": "jina_bench", "base_url": self.base + "/v1"}

    async def start(self) -> None:
        from arun import ModelRuntime, UserPromptMessage

        self.rt = ModelRuntime()
        await self.rt.__aenter__()
        self.messages = [UserPromptMessage(content=PROMPT)]
        kind = self.spec["kind"]
        if kind in ("stream", "chat"):
            self.llm = self.rt.get_model_instance("openai", "llm")
        elif kind == "embed":
            self.emb = self.rt.get_model_instance("openai", "text-embedding")
        elif kind == "rerank":
            self.rr = self.rt.get_model_instance("jina", "rerank")

    async def close(self) -> None:
        await self.rt.__aexit__(None, None, None)

    async def stream(self) -> tuple[str, float | None, int, int]:
        return await consume(await self.llm.invoke(model=CHAT_MODEL, credentials=self.creds,
                                                   prompt_messages=self.messages, stream=True))

    async def chat(self) -> tuple[str, int]:
        res = await self.llm.invoke(model=CHAT_MODEL, credentials=self.creds,
                                    prompt_messages=self.messages, stream=False)
        return res.message.content or "", res.usage.completion_tokens

    async def embed_all(self, texts: list[str]) -> list[list[float]]:
        # arun batches by the model's max_chunks itself; same in-flight bound as the others
        self.batches = 0

        def progress(_n: int) -> None:
            self.batches += 1

        r = await self.emb.invoke(model=EMBED_MODEL, credentials=self.creds, texts=texts,
                                  max_concurrency=self.spec.get("conc", 16), on_progress=progress)
        return r.embeddings

    async def rerank(self, query: str, docs: list[str], top_n: int) -> list[tuple[int, float, Any]]:
        out = await self.rr.invoke(model=RERANK_MODEL, credentials=self.jina_creds, query=query,
                                   docs=docs, top_n=top_n)
        return [(d.index, d.score, d.text) for d in out.docs]


async def _max_chunks() -> int:
    from arun import ModelRuntime

    async with ModelRuntime() as rt:
        emb = rt.get_model_instance("openai", "text-embedding")
        schema = await emb.get_model_schema(EMBED_MODEL, {})
        return int(schema.property("max_chunks", 0))


if __name__ == "__main__":
    if "--max-chunks" in sys.argv:
        print(asyncio.run(_max_chunks()))
