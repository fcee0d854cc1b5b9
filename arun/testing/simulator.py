"""The wire-accurate upstream simulator: one aiohttp server speaking several provider protocols."""

from __future__ import annotations

import asyncio
import collections
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from . import sim_anthropic, sim_jina, sim_ollama, sim_openai
from .faults import Fault, FaultQueue

__all__ = ["UpstreamSimulator", "SimulatorConfig", "RecordedRequest", "SimulatorStats", "Ctx"]

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_ConnErrors = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


@dataclass
class SimulatorConfig:
    reply_words: int | None = None  # pad/replace every chat reply to exactly N words
    chunk_delay: float = 0.0  # sleep between stream events
    one_write: bool = False  # send a whole stream body in a single write
    embedding_dim: int = 8
    audio_bytes_per_word: int = 256


@dataclass
class RecordedRequest:
    method: str
    path: str
    key: str | None
    headers: dict[str, str]
    json: Any = None  # parsed JSON body (None for GET / multipart / unparsable)
    form: dict[str, Any] | None = None  # multipart fields; files as {"filename","content_type","size"}
    query: dict[str, str] = field(default_factory=dict)
    profile: str | None = None  # the simulator profile the request came in under
    raw_path: str = ""  # the path as sent (``path`` is the handler's canonical one)

    @property
    def body(self) -> Any:
        return self.form if self.form is not None else self.json


class SimulatorStats:
    """Request counters (control endpoints under ``/_sim`` are not counted)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_path: collections.Counter[str] = collections.Counter()
        self.by_key: collections.Counter[str] = collections.Counter()

    def count(self, path: str, key: str | None) -> None:
        self.total += 1
        self.by_path[path] += 1
        self.by_key[key or ""] += 1

    def reset(self) -> None:
        self.total = 0
        self.by_path.clear()
        self.by_key.clear()

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_path": dict(self.by_path), "by_key": dict(self.by_key)}

    def __repr__(self) -> str:
        return f"SimulatorStats({self.to_dict()!r})"


def extract_key(request: web.BaseRequest) -> str | None:
    h = request.headers
    auth = h.get("Authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth.strip()
    key = h.get("x-api-key")
    if key is not None:
        return key
    return h.get("api-key")


def key_is_invalid(key: str | None) -> bool:
    return not key or key.startswith(("invalid", "bad"))


class Ctx:
    """Per-request context handed to the protocol modules."""

    __slots__ = ("request", "sim", "config", "path", "key", "body", "fault", "rid", "proto", "profile")

    def __init__(
        self, request: web.Request, sim: "UpstreamSimulator", proto: Any, path: str | None = None, profile: Any = None
    ) -> None:
        self.request = request
        self.sim = sim
        self.config = sim.config
        #: the canonical path (``/v1/chat/completions``) even under a profile's ``/p/<name>/...`` prefix
        self.path = path or request.path
        #: the provider profile whose quirks this answer carries (:mod:`arun.testing.profiles`), or None
        self.profile = profile
        self.key: str | None = None
        self.body: Any = None
        self.fault: Fault | None = None
        self.rid = os.urandom(12).hex()
        self.proto = proto

    # -- headers ---------------------------------------------------------------------------
    def headers(self, content_type: str | None = None) -> dict[str, str]:
        h: dict[str, str] = self.proto.base_headers(self)
        if self.profile is not None and self.profile.headers:
            h.update(self.profile.headers)
        if content_type:
            h["Content-Type"] = content_type
        f = self.fault
        if f is not None:
            if f.retry_after is not None:
                ra = f.retry_after
                h["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
                h["retry-after-ms"] = str(round(ra * 1000))
            if f.headers:
                h.update(f.headers)
        return h

    # -- responses -------------------------------------------------------------------------
    def error(
        self, status: int, error_type: str | None = None, message: str | None = None
    ) -> web.Response:
        profile = self.profile
        if profile is not None and profile.error_body is not None:
            status, obj = profile.error_body(self, status, error_type, message)
            return web.Response(body=_encode(obj), status=status, headers=self.headers("application/json"))
        response: web.Response = self.proto.error_response(self, status, error_type, message)
        return response

    def drop_connection(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.close()

    def respond_bytes(
        self, data: bytes, content_type: str = "application/json", status: int = 200
    ) -> web.StreamResponse:
        f = self.fault
        if f is not None:
            if f.disconnect_after is not None:
                self.drop_connection()
                return web.Response(status=status)
            if f.malformed:
                data = data[: max(1, len(data) // 2)]
        return web.Response(body=data, status=status, headers=self.headers(content_type))

    def respond_json(self, obj: Any, status: int = 200) -> web.StreamResponse:
        return self.respond_bytes(_encode(obj), "application/json", status)

    async def respond_stream(
        self,
        events: list[bytes],
        content_type: str,
        *,
        error_event: bytes | None = None,
        garbage: bytes | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Send ``events`` (already framed) applying the request's stream fault, if any."""
        h = self.headers(content_type)
        h["Cache-Control"] = "no-cache"
        if extra_headers:
            h.update(extra_headers)
        resp = web.StreamResponse(status=200, headers=h)
        cfg = self.config
        f = self.fault
        delay = cfg.chunk_delay
        try:
            await resp.prepare(self.request)
            if f is None and not delay and cfg.one_write:
                await resp.write(b"".join(events))
                await resp.write_eof()
                return resp
            cut: int | None = None
            mode = ""
            stall_at: int | None = None
            if f is not None:
                if f.malformed and garbage is not None:
                    events = list(events)
                    events.insert(min(1, len(events)), garbage)
                if f.disconnect_after is not None:
                    cut, mode = max(0, f.disconnect_after), "disconnect"
                elif f.error_event_after is not None:
                    cut, mode = max(0, f.error_event_after), "error"
                stall_at = f.stall_after
            one_write = cfg.one_write
            buf: list[bytes] = []
            for i, ev in enumerate(events):
                if i == cut:
                    break
                if i == stall_at or (delay and i):
                    if buf:
                        await resp.write(b"".join(buf))
                        buf.clear()
                    if i == stall_at:
                        await self.sim._stall(f.stall_seconds)  # type: ignore[union-attr]
                    if delay and i:
                        await asyncio.sleep(delay)
                if one_write:
                    buf.append(ev)
                else:
                    await resp.write(ev)
            if buf:
                await resp.write(b"".join(buf))
            if stall_at is not None and stall_at >= len(events) and cut is None:
                await self.sim._stall(f.stall_seconds)  # type: ignore[union-attr]
            if mode == "disconnect":
                self.drop_connection()
                return resp
            if mode == "error" and error_event is not None:
                await resp.write(error_event)
            await resp.write_eof()
        except _ConnErrors:
            pass  # the client went away; nothing more to send
        return resp


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


class UpstreamSimulator:
    """Real HTTP server on 127.0.0.1 speaking OpenAI, Anthropic, Ollama and Jina protocols.

    ``async with UpstreamSimulator() as sim: ...`` or ``await sim.start()`` / ``await sim.close()``.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port
        self.faults = FaultQueue()
        self.stats = SimulatorStats()
        self.requests: collections.deque[RecordedRequest] = collections.deque(maxlen=1000)
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._seq = 0

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "UpstreamSimulator":
        if self._runner is not None:
            return self
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        return self

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._closing is not None:
            self._closing.set()
        await runner.cleanup()

    async def __aenter__(self) -> "UpstreamSimulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def reset(self) -> None:
        """Forget faults, stats and recorded requests."""
        self.faults.clear()
        self.stats.reset()
        self.requests.clear()

    @property
    def last_request(self) -> RecordedRequest | None:
        return self.requests[-1] if self.requests else None

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _stall(self, seconds: float) -> None:
        ev = self._closing
        if ev is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(ev.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # -- routing ---------------------------------------------------------------------------
    def _table(self) -> list[tuple[str, str, Handler, str | None, Any]]:
        return [
            ("POST", "/v1/chat/completions", sim_openai.chat, "json", sim_openai),
            ("POST", "/v1/completions", sim_openai.completions, "json", sim_openai),
            ("POST", "/v1/embeddings", sim_openai.embeddings, "json", sim_openai),
            ("POST", "/v1/audio/transcriptions", sim_openai.transcriptions, "multipart", sim_openai),
            ("POST", "/v1/audio/speech", sim_openai.speech, "json", sim_openai),
            ("POST", "/v1/moderations", sim_openai.moderations, "json", sim_openai),
            ("GET", "/v1/models", _models, None, sim_openai),
            ("POST", "/v1/rerank", sim_jina.rerank, "json", sim_jina),
            ("POST", "/v1/messages", sim_anthropic.messages, "json", sim_anthropic),
            ("POST", "/api/chat", sim_ollama.chat, "json", sim_ollama),
            ("POST", "/api/embed", sim_ollama.embed, "json", sim_ollama),
            ("GET", "/api/tags", sim_ollama.tags, None, sim_ollama),
        ]

    def _add_routes(self, app: web.Application) -> None:
        r = app.router
        table = self._table()
        for method, path, fn, parse, proto in table:
            r.add_route(method, path, self._wrap(fn, parse, proto))
        r.add_post("/_sim/faults", self._ctl_push)
        r.add_delete("/_sim/faults", self._ctl_clear)
        r.add_get("/_sim/faults", self._ctl_list)
        r.add_get("/_sim/stats", self._ctl_stats)
        r.add_post("/_sim/reset", self._ctl_reset)
        # /p/<profile>/<any base path>/<endpoint>: the handler whose endpoint the path ends with
        from .profiles import get_profile

        generic = sorted(
            ((m, p.removeprefix("/v1") if p.startswith("/v1/") else p, self._wrap(fn, parse, proto, path=p))
             for m, p, fn, parse, proto in table),
            key=lambda item: -len(item[1]),  # /chat/completions before /completions
        )  # fmt: skip
        #: profile name -> its own endpoints, then the generic ones (built on the profile's first request)
        routes_of: dict[str, list[tuple[str, str, Any]]] = {}

        async def dispatch(request: web.Request) -> web.StreamResponse:
            name = request.match_info["profile"]
            profile = get_profile(name)
            if profile is None:
                return web.json_response({"error": {"message": f"unknown simulator profile {name!r}"}}, status=404)
            tail = "/" + request.match_info["tail"]
            routes = routes_of.get(name)
            if routes is None:
                own = [(m, suffix, self._wrap(fn, parse, sim_openai, path=canonical)) for m, suffix, fn, parse, canonical in profile.routes]
                routes = routes_of[name] = own + generic
            for method, suffix, handler in routes:
                if request.method == method and tail.endswith(suffix):
                    answer: web.StreamResponse = await handler(request, profile)
                    return answer
            return web.json_response({"error": {"message": f"no endpoint for {tail}"}}, status=404)

        r.add_route("*", "/p/{profile}/{tail:.*}", dispatch)

    def _wrap(self, fn: Handler, parse: str | None, proto: Any, *, path: str | None = None) -> Any:
        async def handler(request: web.Request, profile: Any = None) -> web.StreamResponse:
            canonical = path or request.path
            if proto is sim_openai and canonical == "/v1/models" and (
                "anthropic-version" in request.headers or "x-api-key" in request.headers
            ):
                ctx = Ctx(request, self, sim_anthropic, canonical, profile)
                real_fn: Handler = sim_anthropic.models
            else:
                ctx = Ctx(request, self, proto, canonical, profile)
                real_fn = fn
            key = ctx.key = extract_key(request)
            bad_body: str | None = None
            form: dict[str, Any] | None = None
            if parse == "json":
                raw = await request.read()
                try:
                    ctx.body = _decode(raw) if raw else None
                except msgspec.DecodeError as exc:
                    bad_body = f"We could not parse the JSON body of your request. ({exc})"
                else:
                    if not isinstance(ctx.body, dict):
                        bad_body = "The request body must be a JSON object."
            elif parse == "multipart":
                try:
                    form = await _read_form(request)
                    ctx.body = form
                except Exception as exc:  # noqa: BLE001 - a malformed multipart body is a 400, whatever failed
                    bad_body = f"Could not parse multipart form: {exc}"
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=ctx.path,
                    key=key,
                    headers=dict(request.headers),
                    json=ctx.body if parse == "json" else None,
                    form=_public_form(form) if form is not None else None,
                    query=dict(request.query),
                    profile=profile.name if profile is not None else None,
                    raw_path=request.path,
                )
            )
            self.stats.count(ctx.path, key)
            fault = ctx.fault = self.faults.take(ctx.path, key)
            if fault is not None:
                if fault.first_byte_delay:
                    await self._stall(fault.first_byte_delay)
                if fault.body is not None:
                    return web.Response(
                        body=fault.body,
                        status=fault.status or 200,
                        headers=ctx.headers("application/json"),
                    )
                if fault.status is not None:
                    return ctx.error(fault.status, fault.error_type, fault.message)
            if bad_body is not None:
                return ctx.error(400, None, bad_body)
            if ctx.proto.AUTH and key_is_invalid(key):
                return ctx.error(401)
            body = ctx.body
            if isinstance(body, dict) and body.get("model") == "missing-model":
                return ctx.error(404)
            return await real_fn(ctx)

        return handler

    # -- control endpoints -----------------------------------------------------------------
    async def _ctl_push(self, request: web.Request) -> web.Response:
        try:
            data = _decode(await request.read())
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            path = data.pop("path", None)
            key = data.pop("key", None)
            times = data.pop("times", 1)
            fault = Fault.from_dict(data)
            self.faults.push(fault, path=path, key=key, times=times)
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "pending": len(self.faults)})

    async def _ctl_clear(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"ok": True})

    async def _ctl_list(self, request: web.Request) -> web.Response:
        rules = [
            {"path": r.path, "key": r.key, "times": r.remaining, "fault": r.fault.to_dict()}
            for r in self.faults.pending
        ]
        return web.json_response({"faults": rules})

    async def _ctl_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.to_dict())

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def _models(ctx: Ctx) -> web.StreamResponse:
    return await sim_openai.models(ctx)


async def _read_form(request: web.Request) -> dict[str, Any]:
    """Read a multipart body into {name: str | {"filename","content_type","data"}}; repeated names → list."""
    out: dict[str, Any] = {}
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):  # nested multipart: not used by any provider
            continue
        name = part.name or ""
        if part.filename is not None:
            value: Any = {
                "filename": part.filename,
                "content_type": part.headers.get("Content-Type", "application/octet-stream"),
                "data": await part.read(decode=False),
            }
        else:
            value = await part.text()
        if name in out:
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    return out


def _public_form(form: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, dict) and "data" in v:
            return {"filename": v["filename"], "content_type": v["content_type"], "size": len(v["data"])}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return {k: conv(v) for k, v in form.items()}
