"""A fast OpenAI-compatible (plus Jina rerank) upstream for benchmarks.

Runs in its own process on a raw ``asyncio.Protocol`` HTTP/1.1 server with
pre-serialised responses, so that it costs as little CPU as possible and the
client under test is the bottleneck.

    python -m benchmarks.upstream --port 0 --chunks 64 --write-mode one
    -> prints ``READY http://127.0.0.1:<port>`` on stdout once listening.

Routes:
  POST /v1/chat/completions   stream (SSE, chunked) and non-stream
  POST /v1/embeddings         encoding_format float | base64, --embed-dim dims
  POST /v1/rerank             Jina shape: results[].index/relevance_score/document
  GET  /__stats               this process's CPU seconds and peak RSS (JSON)

Streams follow the OpenAI wire format exactly: one ``data: {json}\\n\\n`` event
per chunk with ``"usage":null``, a finish chunk, a usage chunk with
``"choices":[]`` when ``stream_options.include_usage`` is set, then
``data: [DONE]``.  ``--write-mode one`` sends each response with a single
``transport.write``; ``--write-mode event`` writes each SSE event separately and
yields to the event loop in between (``--delay`` seconds, 0 = just yield).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import resource
import socket
import struct
import sys
from typing import Any

import msgspec

from benchmarks.common import order_key, piece, rerank_score

CREATED = 1735000000
PROMPT_TOKENS = 12


class _StreamOptions(msgspec.Struct, forbid_unknown_fields=False):
    include_usage: bool = False


class _ChatReq(msgspec.Struct, forbid_unknown_fields=False):
    model: str = "gpt-4o-mini"
    stream: bool = False
    stream_options: _StreamOptions | None = None


class _EmbReq(msgspec.Struct, forbid_unknown_fields=False):
    input: str | list[Any] = ""
    model: str = "text-embedding-3-small"
    encoding_format: str | None = None
    dimensions: int | None = None


class _RerankReq(msgspec.Struct, forbid_unknown_fields=False):
    query: str = ""
    documents: list[Any] = []
    model: str = "jina-reranker-v2-base-multilingual"
    top_n: int | None = None
    return_documents: bool | None = None


_chat_dec = msgspec.json.Decoder(_ChatReq)
_emb_dec = msgspec.json.Decoder(_EmbReq)
_rr_dec = msgspec.json.Decoder(_RerankReq)
_enc = msgspec.json.Encoder()

_STATUS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}


def _head(status: int, ctype: bytes, length: int | None) -> bytes:
    h = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\nx-request-id: req_bench\r\n" % (
        status, _STATUS.get(status, b"X"), ctype)
    if length is None:
        h += b"transfer-encoding: chunked\r\n\r\n"
    else:
        h += b"content-length: %d\r\n\r\n" % length
    return h


def _json_response(obj: Any, status: int = 200) -> bytes:
    body = obj if isinstance(obj, bytes) else _enc.encode(obj)
    return _head(status, b"application/json", len(body)) + body


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Responses:
    """Pre-serialised response cache."""

    def __init__(self, chunks: int, embed_dim: int) -> None:
        self.chunks = chunks
        self.embed_dim = embed_dim
        self._streams: dict[tuple[str, bool], tuple[bytes, list[bytes]]] = {}
        self._chats: dict[str, bytes] = {}
        self._tails: dict[int, tuple[bytes, bytes, bytes]] = {}

    # -- chat -------------------------------------------------------------
    def stream(self, model: str, usage: bool) -> tuple[bytes, list[bytes]]:
        """(whole response in one buffer, [headers, frame, frame, ...])"""
        key = (model, usage)
        got = self._streams.get(key)
        if got is None:
            n = self.chunks
            events: list[bytes] = []
            for i in range(n):
                delta: dict[str, Any] = {"content": piece(i)}
                if i == 0:
                    delta = {"role": "assistant", "content": piece(i), "refusal": None}
                events.append(self._chunk(model, [{"index": 0, "delta": delta, "logprobs": None,
                                                   "finish_reason": None}], None))
            events.append(self._chunk(model, [{"index": 0, "delta": {}, "logprobs": None,
                                               "finish_reason": "stop"}], None))
            if usage:
                events.append(self._chunk(model, [], {
                    "prompt_tokens": PROMPT_TOKENS, "completion_tokens": n,
                    "total_tokens": PROMPT_TOKENS + n,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                  "accepted_prediction_tokens": 0,
                                                  "rejected_prediction_tokens": 0}}))
            events.append(b"data: [DONE]\n\n")
            parts = [_head(200, b"text/event-stream; charset=utf-8", None)]
            parts += [_frame(e) for e in events]
            parts.append(b"0\r\n\r\n")
            got = (b"".join(parts), parts)
            self._streams[key] = got
        return got

    @staticmethod
    def _chunk(model: str, choices: list[Any], usage: Any) -> bytes:
        obj = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": CREATED,
               "model": model, "service_tier": "default", "system_fingerprint": "fp_bench",
               "choices": choices, "usage": usage}
        return b"data: " + _enc.encode(obj) + b"\n\n"

    def chat(self, model: str) -> bytes:
        got = self._chats.get(model)
        if got is None:
            n = self.chunks
            text = "".join(piece(i) for i in range(n))
            got = _json_response({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": CREATED,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                     "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n,
                          "total_tokens": PROMPT_TOKENS + n},
                "service_tier": "default", "system_fingerprint": "fp_bench"})
            self._chats[model] = got
        return got

    # -- embeddings -------------------------------------------------------
    def _tail(self, dim: int) -> tuple[bytes, bytes, bytes]:
        """(float JSON of components 1.., raw bytes of components 1.., base64 of
        the vector bytes from offset 6 on).  Component 0 is the order key."""
        got = self._tails.get(dim)
        if got is None:
            vals = [((j % 64) - 32) / 64.0 for j in range(1, dim)]
            js = b"".join(b"," + repr(v).encode() for v in vals)
            raw = struct.pack(f"<{dim - 1}f", *vals)
            b64 = base64.b64encode(raw[2:])
            got = (js, raw, b64)
            self._tails[dim] = got
        return got

    def embeddings(self, req: _EmbReq) -> bytes:
        inp = req.input
        if isinstance(inp, str):
            items: list[Any] = [inp]
        elif inp and isinstance(inp[0], int):
            items = [inp]
        else:
            items = inp
        dim = req.dimensions or self.embed_dim
        js, raw, b64 = self._tail(dim)
        use_b64 = req.encoding_format == "base64"
        out = [b'{"object":"list","data":[']
        pack = struct.Struct("<f").pack
        for i, text in enumerate(items):
            k = order_key(text) if isinstance(text, str) else float(i)
            if i:
                out.append(b",")
            if use_b64:
                head = base64.b64encode(pack(k) + raw[:2])
                out.append(b'{"object":"embedding","index":%d,"embedding":"%s%s"}' % (i, head, b64))
            else:
                out.append(b'{"object":"embedding","index":%d,"embedding":[%s%s]}'
                           % (i, repr(k).encode(), js))
        ntok = 4 * len(items)
        out.append(b'],"model":"%s","usage":{"prompt_tokens":%d,"total_tokens":%d}}'
                   % (req.model.encode(), ntok, ntok))
        body = b"".join(out)
        return _head(200, b"application/json", len(body)) + body

    # -- rerank -----------------------------------------------------------
    @staticmethod
    def rerank(req: _RerankReq) -> bytes:
        docs = [d if isinstance(d, str) else (d.get("text", "") if isinstance(d, dict) else str(d))
                for d in req.documents]
        n = len(docs)
        scored = sorted(((i, rerank_score(i, n)) for i in range(n)), key=lambda t: -t[1])
        if req.top_n is not None:
            scored = scored[: req.top_n]
        with_docs = req.return_documents is not False
        results = []
        for i, s in scored:
            r: dict[str, Any] = {"index": i, "relevance_score": s}
            if with_docs:
                r["document"] = {"text": docs[i]}
            results.append(r)
        return _json_response({"model": req.model, "usage": {"total_tokens": 10 * n},
                               "results": results})


class HttpProtocol(asyncio.Protocol):
    def __init__(self, server: "Upstream") -> None:
        self.s = server
        self.buf = bytearray()
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        buf = self.buf
        while self.transport is not None and not self.busy:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                self.transport.close()
                return
            clen = 0
            chunked = False
            close = False
            expect = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    clen = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
                elif name == "expect" and "100-continue" in value.lower():
                    expect = True
            start = end + 4
            if chunked:
                body_parts = []
                pos = start
                while True:
                    le = buf.find(b"\r\n", pos)
                    if le < 0:
                        return
                    size = int(bytes(buf[pos:le]).split(b";")[0], 16)
                    if len(buf) < le + 2 + size + 2:
                        return
                    body_parts.append(bytes(buf[le + 2: le + 2 + size]))
                    pos = le + 2 + size + 2
                    if size == 0:
                        break
                body = b"".join(body_parts)
                consumed = pos
            else:
                if len(buf) < start + clen:
                    if expect and not getattr(self, "_continued", False):
                        self._continued = True
                        self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    return
                body = bytes(buf[start: start + clen])
                consumed = start + clen
            self._continued = False
            del buf[:consumed]
            self.s.requests += 1
            self._handle(method, target.split("?", 1)[0], body)
            if close and self.transport is not None and not self.busy:
                self.transport.close()

    def _handle(self, method: str, path: str, body: bytes) -> None:
        t = self.transport
        assert t is not None
        s = self.s
        if path.startswith("/v1/"):
            path = path[3:]
        try:
            if method == "POST" and path == "/chat/completions":
                req = _chat_dec.decode(body)
                if req.stream:
                    usage = bool(req.stream_options and req.stream_options.include_usage)
                    whole, parts = s.responses.stream(req.model, usage)
                    if s.write_mode == "one" and s.delay <= 0:
                        t.write(whole)
                    else:
                        self.busy = True
                        task = asyncio.get_running_loop().create_task(self._write_events(parts))
                        task.add_done_callback(self._events_done)
                else:
                    t.write(s.responses.chat(req.model))
            elif method == "POST" and path == "/embeddings":
                t.write(s.responses.embeddings(_emb_dec.decode(body)))
            elif method == "POST" and path == "/rerank":
                t.write(s.responses.rerank(_rr_dec.decode(body)))
            elif method == "GET" and path == "/__stats":
                ru = resource.getrusage(resource.RUSAGE_SELF)
                t.write(_json_response({"cpu_s": ru.ru_utime + ru.ru_stime,
                                        "maxrss_mb": ru.ru_maxrss / 1024.0,
                                        "requests": s.requests}))
            else:
                t.write(_json_response({"error": {"message": f"no route {method} {path}",
                                                  "type": "invalid_request_error",
                                                  "param": None, "code": None}}, 404))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            t.write(_json_response({"error": {"message": f"bad request: {e}",
                                              "type": "invalid_request_error",
                                              "param": None, "code": None}}, 400))

    async def _write_events(self, parts: list[bytes]) -> None:
        delay = self.s.delay
        for p in parts:
            if self.transport is None:
                return
            self.transport.write(p)
            await asyncio.sleep(delay)

    def _events_done(self, _task: "asyncio.Task[None]") -> None:
        self.busy = False
        if self.buf:
            self._process()


class Upstream:
    def __init__(self, chunks: int = 64, embed_dim: int = 256, write_mode: str = "one",
                 delay: float = 0.0) -> None:
        self.responses = Responses(chunks, embed_dim)
        self.write_mode = write_mode
        self.delay = delay
        self.requests = 0

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: HttpProtocol(self), host, port, backlog=4096,
                                        reuse_address=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks.upstream", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--chunks", type=int, default=64, help="content chunks per stream")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between stream events")
    p.add_argument("--embed-dim", type=int, default=256, help="embedding dimension")
    p.add_argument("--write-mode", choices=("one", "event"), default="one",
                   help="one write per response, or one write per SSE event")
    return p.parse_args(argv)


async def _amain(args: argparse.Namespace) -> None:
    up = Upstream(args.chunks, args.embed_dim, args.write_mode, args.delay)
    # warm the caches so the first request is not special
    up.responses.stream("gpt-4o-mini", True)
    up.responses.chat("gpt-4o-mini")
    server = await up.serve(args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"READY http://{args.host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(_amain(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
