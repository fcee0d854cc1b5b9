"""The floor: bare aiohttp + an incremental SSE decoder over
``resp.content.iter_any()`` + reused ``msgspec.json.Decoder``s of minimal Structs.

It does the same work as every other client: it decodes every chunk, joins the
content pieces, reads usage, base64-decodes every vector into a list of floats,
and returns rerank results; the harness checks all of it.
"""

from __future__ import annotations

import array
import base64
from time import perf_counter
from typing import Any

import aiohttp
import msgspec

from benchmarks.common import API_KEY, CHAT_MODEL, EMBED_MODEL, PROMPT, RERANK_MODEL


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    completion_tokens: int = 0


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: Any | None = None


class _Msg(msgspec.Struct):
    content: str | None = None


class _MChoice(msgspec.Struct):
    message: _Msg
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_MChoice]
    usage: _Usage | None = None


class _EmbItem(msgspec.Struct):
    index: int
    embedding: str


class _EmbResp(msgspec.Struct):
    data: list[_EmbItem]


class _RDoc(msgspec.Struct):
    text: str


class _RItem(msgspec.Struct):
    index: int
    relevance_score: float
    document: _RDoc | None = None


class _RResp(msgspec.Struct):
    results: list[_RItem]


class SSEDecoder:
    """Incremental SSE framing (LF or CRLF), yielding each event's data payload."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            ev = buf[start:end]
            start = end + 2
            if ev.startswith(b"data: ") and b"\n" not in ev:
                out.append(ev[6:])
                continue
            lines = [ln for ln in ev.split(b"\n") if ln.startswith(b"data:")]
            if lines:
                out.append(b"\n".join(ln[6:] if ln[5:6] == b" " else ln[5:] for ln in lines))
        self.buf = buf[start:]
        return out


def version() -> str:
    return f"aiohttp {aiohttp.__version__}, msgspec {msgspec.__version__}"


class Client:
    def __init__(self, url: str, spec: dict[str, Any]) -> None:
        self.url = url.rstrip("/") + "/v1"
        self.spec = spec
        self.headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        enc = msgspec.json.Encoder()
        self.stream_body = enc.encode({"model": CHAT_MODEL, "stream": True,
                                       "stream_options": {"include_usage": True},
                                       "messages": [{"role": "user", "content": PROMPT}]})
        self.chat_body = enc.encode({"model": CHAT_MODEL,
                                     "messages": [{"role": "user", "content": PROMPT}]})
        self.enc = enc
        self.chunk_dec = msgspec.json.Decoder(_Chunk)
        self.comp_dec = msgspec.json.Decoder(_Completion)
        self.emb_dec = msgspec.json.Decoder(_EmbResp)
        self.rr_dec = msgspec.json.Decoder(_RResp)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=120))

    async def close(self) -> None:
        await self.session.close()

    async def stream(self) -> tuple[str, float | None, int, int]:
        dec = self.chunk_dec.decode
        sse = SSEDecoder()
        pieces: list[str] = []
        t_first: float | None = None
        usage = -1
        done = False
        async with self.session.post(self.url + "/chat/completions", data=self.stream_body,
                                     headers=self.headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {await resp.text()}")
            async for data in resp.content.iter_any():
                for payload in sse.feed(data):
                    if payload == b"[DONE]":
                        done = True
                        break
                    ch = dec(payload)
                    if ch.error is not None:
                        raise RuntimeError(f"stream error: {ch.error}")
                    for c in ch.choices:
                        if c.delta.content:
                            if t_first is None:
                                t_first = perf_counter()
                            pieces.append(c.delta.content)
                    if ch.usage is not None:
                        usage = ch.usage.completion_tokens
        if not done:
            raise RuntimeError("stream ended without [DONE]")
        return "".join(pieces), t_first, len(pieces), usage

    async def chat(self) -> tuple[str, int]:
        async with self.session.post(self.url + "/chat/completions", data=self.chat_body,
                                     headers=self.headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
        c = self.comp_dec.decode(body)
        return c.choices[0].message.content or "", (c.usage.completion_tokens if c.usage else -1)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        body = self.enc.encode({"model": EMBED_MODEL, "input": texts,
                                "encoding_format": "base64"})
        async with self.session.post(self.url + "/embeddings", data=body,
                                     headers=self.headers) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {raw[:200]!r}")
        items = self.emb_dec.decode(raw).data
        out: list[list[float]] = [None] * len(items)  # type: ignore[list-item]
        b64 = base64.b64decode
        for it in items:
            out[it.index] = array.array("f", b64(it.embedding)).tolist()
        return out

    async def rerank(self, query: str, docs: list[str], top_n: int) -> list[tuple[int, float, Any]]:
        body = self.enc.encode({"model": RERANK_MODEL, "query": query, "documents": docs,
                                "top_n": top_n, "return_documents": True})
        async with self.session.post(self.url + "/rerank", data=body, headers=self.headers) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {raw[:200]!r}")
        return [(r.index, r.relevance_score, r.document.text if r.document else None)
                for r in self.rr_dec.decode(raw).results]
