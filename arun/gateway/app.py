"""The gateway: one aiohttp web application over the manager and policy layers.

:class:`Gateway` owns what every request shares -- the :class:`~arun.manager.ModelManager`
(store, state, runtime, one :class:`~arun.policy.router.PolicyRouter` per tenant), the key
ring, the per-key limiter (the policy layer's limiter: memory, or Redis shared by every
process), the budgets, the response cache, the spend log and the metrics -- and the per-request
bookkeeping (:class:`Call`): admit (rpm/tpm permit, budget reservation) before the upstream
call, settle (real tokens, real price), a spend row, metrics and one access-log line after it,
however the request ended.

Lifecycle (:func:`serve`): the store, state and runtime open, the configuration is applied
(tenant, encrypted provider credentials, fallback chains, declared keys), the site listens;
on SIGTERM / SIGINT it stops accepting, in-flight requests (streams included) may finish for
``shutdown_grace`` seconds (:func:`_drain`), the rest are cancelled while their connections are
still open (their upstream streams closed, their clients sent an error event), the spend log is
written, everything closes.  A client that
goes away cancels its handler (aiohttp's ``handler_cancellation``), which closes the upstream
stream at once and returns its connection to the pool.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from time import perf_counter
from typing import Any

import msgspec
from aiohttp import web

from arun.entities.llm import LLMUsage
from arun.entities.model import ModelType
from arun.gateway.auth import KeyRing, VirtualKey, bearer, from_e7, to_e7
from arun.gateway.config import GatewayConfig, parse_model_name
from arun.gateway.errors import ErrorInfo, GatewayError, anthropic_body, classify, openai_body, retry_headers
from arun.gateway.metrics import Registry
from arun.manager.store import SpendRecord
from arun.policy.limits import LimitExceededError
from arun.pricing import Rate, rates
from arun.redact import redact
from arun.state import StateUnavailableError

__all__ = ["Gateway", "Call", "ModelInfo", "create_app", "serve", "GATEWAY", "CALL"]

log = logging.getLogger("arun.gateway")
access_log = logging.getLogger("arun.gateway.access")
#: the access log line's encoder (a tenth of ``json.dumps``' time; one line per request)
_json = msgspec.json.encode

GATEWAY: web.AppKey[Gateway] = web.AppKey("arun_gateway")
CALL: web.RequestKey[Call] = web.RequestKey("arun_call")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the gateway reads from a model's schema, once per model instance."""

    rule_names: frozenset[str]
    openai_family: bool
    rate_in: Rate
    rate_out: Rate
    default_max_tokens: int

    def price_e7(self, prompt_tokens: int, completion_tokens: int) -> int:
        return to_e7(self.rate_in.total(prompt_tokens) + self.rate_out.total(completion_tokens))


class Call:
    """One request's bookkeeping, finished exactly once by :meth:`Gateway.finish`."""

    __slots__ = (
        "rid", "route", "started", "key", "name", "provider", "model", "stream", "permit", "reserved", "prompt_tokens",
        "completion_tokens", "price", "currency", "status", "outcome", "error", "cache", "ttft", "done",
    )  # fmt: skip

    def __init__(self, rid: str, route: str) -> None:
        self.rid = rid
        self.route = route
        self.started = perf_counter()
        self.key: VirtualKey | None = None
        self.name: str | None = None  # the model name the client asked for
        self.provider: str | None = None
        self.model: str | None = None
        self.stream = False
        self.permit: Any = None
        self.reserved = False
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.price: Decimal | None = None
        self.currency: str | None = None
        self.status = 200
        self.outcome = "ok"
        self.error: str | None = None
        self.cache: str | None = None  # hit | miss | None
        self.ttft: float | None = None
        self.done = False

    def use(self, usage: LLMUsage | None) -> None:
        if usage is None:
            return
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.price = usage.total_price
        self.currency = usage.currency

    def fail(self, info: ErrorInfo, outcome: str = "error") -> None:
        self.status = info.status
        self.outcome = outcome
        self.error = info.kind


_RID_PREFIX = os.urandom(6).hex()
_rid_counter = itertools.count(1)


def _rid() -> str:
    """A request id unique across processes: this process's random prefix and a counter."""
    return f"{_RID_PREFIX}{next(_rid_counter):012x}"


class Gateway:
    """Everything the routes share; :meth:`start` before serving, :meth:`aclose` after."""

    def __init__(self, config: GatewayConfig, *, master_key: bytes | None = None, runtime: Any = None) -> None:
        self.config = config
        self._master_key = master_key
        self._runtime = runtime
        self.manager: Any = None
        self.keys: KeyRing | None = None
        self.limiter: Any = None
        self.budgets: Any = None
        self.cache: Any = None
        self.spend: Any = None
        self.aliases = dict(config.aliases)
        self.tenant_id = config.tenant.id
        self.draining = False
        #: handler tasks of the requests in flight (cancelled when the shutdown grace period is over)
        self.tasks: set[asyncio.Task[Any]] = set()
        self._infos: dict[tuple[str, str, str, str], tuple[Any, ModelInfo]] = {}
        self._bare: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._listing: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._owns: list[Any] = []
        self._build_metrics()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> Gateway:
        from arun.manager import ModelManager, PolicyConfig

        cfg = self.config
        p = cfg.policy
        from arun.policy.retry import RetryPolicy
        from arun.policy.routes import Cooldowns

        policy = PolicyConfig(
            enabled=p.enabled, strategy=p.strategy, first_chunk_timeout=p.first_chunk_timeout, wait_deadline=p.wait_deadline,
            retry=RetryPolicy(max_retries=p.max_retries), cooldowns=Cooldowns(single_config=p.cool_lone_credential),
        ) if p.enabled else None  # fmt: skip
        self.manager = ModelManager(cfg.store, cfg.state, self._runtime, master_key=self._master_key, policy=policy)
        await self.manager.start()
        state = self.manager.state
        client = getattr(state, "client", None)
        prefix = getattr(state, "prefix", "")
        shared = client is not None and hasattr(client, "connection_pool")
        from arun.gateway.budgets import MemoryBudgets, RedisBudgets
        from arun.gateway.cache import MemoryCache, RedisCache
        from arun.gateway.spend import SpendLog
        from arun.policy.limits import limiter_for_state

        self.limiter = limiter_for_state(state, "gw:limits:")
        self.budgets = RedisBudgets(client, prefix, lease=cfg.budget_lease) if shared else MemoryBudgets(lease=cfg.budget_lease)
        self._owns += [self.limiter, self.budgets]
        if cfg.cache.enabled:
            if cfg.cache.backend == "redis":
                self.cache = RedisCache(client, prefix, cfg.cache.ttl)
            else:
                self.cache = MemoryCache(cfg.cache.ttl, cfg.cache.max_entries)
            self._owns.append(self.cache)
        self.keys = KeyRing(self.manager.store, ttl=cfg.key_cache_ttl)
        await self._apply_config()
        self.spend = SpendLog(self.manager.store, interval=cfg.spend_flush_interval, batch=cfg.spend_batch)
        self.spend.start()
        return self

    async def _apply_config(self) -> None:
        """The configured tenant, provider credentials (encrypted in the store), fallbacks and keys."""
        from arun.manager.store import StoreConflictError

        m = self.manager
        cfg = self.config
        tid = cfg.tenant.id
        if await m.store.get_tenant(tid) is None:
            try:
                await m.create_tenant(cfg.tenant.name, tenant_id=tid)
            except StoreConflictError:
                pass  # another gateway process created it first
        for provider, ps in cfg.providers.items():
            if ps.credentials is not None:
                await m.save_provider_credentials(tid, provider, dict(ps.credentials), validate=ps.validate_on_start)
            for mc in ps.models:
                await m.save_model_credentials(tid, provider, mc.model_type, mc.model, dict(mc.credentials), validate=ps.validate_on_start)
        for alias in cfg.aliases.values():
            if alias.fallbacks:
                provider, model = parse_model_name(alias.target)
                chain = [parse_model_name(f) for f in alias.fallbacks]
                await m.set_fallbacks(tid, provider, "llm", model, chain)
        assert self.keys is not None
        from arun.gateway.auth import hash_key

        for ks in cfg.keys:
            rec = await m.store.get_virtual_key_by_hash(hash_key(ks.key))
            if rec is None:
                try:
                    await self.keys.create(tid, name=ks.name, models=ks.models, rpm=ks.rpm, tpm=ks.tpm, budget=ks.budget,
                                           currency=ks.currency, key=ks.key)  # fmt: skip
                except StoreConflictError:
                    pass  # another gateway process stored it first

    async def aclose(self) -> None:
        if self.spend is not None:
            await self.spend.aclose()
        for obj in reversed(self._owns):
            try:
                await obj.aclose()
            except Exception:
                log.warning("error while closing %s", type(obj).__name__, exc_info=True)
        self._owns.clear()
        if self.manager is not None:
            await self.manager.aclose()

    # -- metrics -----------------------------------------------------------------------------------

    def _build_metrics(self) -> None:
        r = self.registry = Registry()
        self.m_requests = r.counter("arun_gateway_requests_total", "Requests by route and status.", ("route", "status"))
        self.m_errors = r.counter("arun_gateway_errors_total", "Failed requests by route and error class.", ("route", "error"))
        self.m_tokens = r.counter("arun_gateway_tokens_total", "Tokens by provider, model and kind (prompt, completion).",
                                  ("provider", "model", "kind"))  # fmt: skip
        self.m_spend = r.counter("arun_gateway_spend_total", "Spend by currency (the models' prices).", ("currency",))
        self.m_latency = r.histogram("arun_gateway_request_duration_seconds", "Request latency, to the last byte.", ("route",))
        self.m_ttft = r.histogram("arun_gateway_time_to_first_token_seconds", "Streams: request to first delta.", ("route",))
        self.m_streams = r.gauge("arun_gateway_streams_in_flight", "Streams being served.")
        self.m_inflight = r.gauge("arun_gateway_requests_in_flight", "Requests being served.")
        self.m_cache = r.counter("arun_gateway_cache_total", "Response cache lookups.", ("route", "result"))
        r.gauge("arun_gateway_upstream_connections_acquired", "Pooled upstream connections checked out.",
                read=lambda: float(self.manager.runtime.http.acquired_connections()) if self.manager is not None else 0.0)  # fmt: skip
        r.gauge("arun_gateway_spend_log_pending", "Spend rows waiting to be written.",
                read=lambda: float(self.spend.pending) if self.spend is not None else 0.0)  # fmt: skip

    # -- per request -------------------------------------------------------------------------------

    async def authenticate(self, request: web.Request, call: Call) -> VirtualKey:
        assert self.keys is not None
        vk = await self.keys.resolve(bearer(request.headers))
        call.key = vk
        return vk

    def resolve_name(self, name: str) -> tuple[str, str]:
        alias = self.aliases.get(name)
        if alias is not None:
            return parse_model_name(alias.target)
        return parse_model_name(name)

    async def _bare_name(self, tenant_id: str, kind: ModelType, name: str) -> tuple[str, str] | None:
        """A bare model name (``gpt-4o``) that exactly one active provider of the tenant serves."""
        now = time.monotonic()
        got = self._bare.get((tenant_id, kind))
        if got is None or got[0] < now:
            index: dict[str, str] = {}
            ambiguous: set[str] = set()
            for st in await self.manager.list_models(tenant_id, model_type=kind):
                if st.status != "active":
                    continue
                if st.model in index and index[st.model] != st.provider:
                    ambiguous.add(st.model)
                index.setdefault(st.model, st.provider)
            for a in ambiguous:
                index.pop(a, None)
            got = self._bare[(tenant_id, kind)] = (now + 30.0, index)
        provider = got[1].get(name)
        return (provider, name) if provider is not None else None

    async def instance(self, call: Call, vk: VirtualKey, name: Any, kind: ModelType) -> tuple[Any, ModelInfo]:
        """The key's model: an alias, ``provider/model`` or a bare name one provider serves."""
        if not isinstance(name, str) or not name:
            raise GatewayError(400, "you must provide a model parameter", param="model", code="missing_model")
        call.name = name
        try:
            provider, model = self.resolve_name(name)
        except ValueError:
            found = await self._bare_name(vk.tenant_id, kind, name)
            if found is None:
                raise GatewayError(404, f"The model `{name}` does not exist or you do not have access to it.",
                                   code="model_not_found", param="model") from None  # fmt: skip
            provider, model = found
        if not self.allows(vk, name, f"{provider}/{model}"):
            raise GatewayError(403, f"This key may not use the model `{name}`.", type="permission_error",
                               code="model_not_allowed", param="model")  # fmt: skip
        call.provider, call.model = provider, model
        inst = await self.manager.get_model_instance(vk.tenant_id, provider, kind, model)
        ikey = (vk.tenant_id, provider, kind, model)
        got = self._infos.get(ikey)
        if got is None or got[0] is not inst:
            got = (inst, await self._info(inst))
            self._infos[ikey] = got
        return inst, got[1]

    def allows(self, vk: VirtualKey, name: str, target: str) -> bool:
        """The key's scope: the name called, its ``provider/model``, or an alias in the scope that names it."""
        scope = vk.models
        if scope is None or name in scope or target in scope:
            return True
        return any((a := self.aliases.get(n)) is not None and a.target == target for n in scope)

    async def _info(self, inst: Any) -> ModelInfo:
        mti = inst.model_type_instance
        try:
            schema = await mti.get_model_schema(inst.model, inst.credentials or {})
        except Exception:  # noqa: BLE001 - no schema: no rules, no prices
            schema = None
        rules = getattr(schema, "parameter_rules", None) or []
        default_max = next((r.default for r in rules if r.name == "max_tokens" and isinstance(r.default, int)), None)
        rate_in, rate_out = rates(schema)
        return ModelInfo(
            frozenset(r.name for r in rules), getattr(mti, "family", "") == "openai_chat", rate_in, rate_out,
            default_max or self.config.default_max_tokens,
        )  # fmt: skip

    async def admit(self, call: Call, vk: VirtualKey, tokens: int, price_e7: int) -> None:
        """The key's rpm/tpm permit and budget reservation, before the upstream call."""
        await self.limit(call, vk, tokens)
        await self.reserve(call, vk, price_e7)

    async def limit(self, call: Call, vk: VirtualKey, tokens: int) -> None:
        """The key's rpm/tpm permit (cache hits count as requests too; they settle 0 tokens)."""
        if vk.limits is None or call.permit is not None:
            return
        try:
            call.permit = await self.limiter.acquire(f"key:{vk.id}", vk.limits, tokens, deadline=self.config.limit_wait)
        except LimitExceededError as exc:
            raise GatewayError(429, f"Rate limit reached for this key ({exc.reason}).", type="rate_limit_error",
                               code="rate_limit_exceeded", retry_after=exc.retry_after if exc.retry_after is not None else 1.0) from None  # fmt: skip

    async def reserve(self, call: Call, vk: VirtualKey, price_e7: int) -> None:
        """Reserve the estimated price against the key's budget (atomically, shared through the state)."""
        if vk.budget_e7 is None or call.reserved:
            return
        store = self.manager.store

        async def seed() -> int:
            rec = await store.get_virtual_key(vk.id)
            return int(rec.spent_e7) if rec is not None else 0

        ok, spent, reserved = await self.budgets.reserve(vk.id, call.rid, price_e7, vk.budget_e7, seed)
        if not ok:
            raise GatewayError(
                429, f"Budget exceeded for this key: spent {from_e7(spent)} of {from_e7(vk.budget_e7)} {vk.currency}"
                f" ({from_e7(reserved)} reserved by requests in flight).", type="insufficient_quota",
                code="budget_exceeded", should_retry=False,
            )  # fmt: skip
        call.reserved = True

    async def finish(self, call: Call) -> None:
        """Settle the permit and the budget with the real use, write the spend row, metrics, the access log."""
        if call.done:
            return
        call.done = True
        elapsed = perf_counter() - call.started
        vk = call.key
        price_e7 = to_e7(call.price) if call.price else 0
        if call.cache == "hit":
            price_e7 = 0
        try:
            if call.permit is not None:
                try:
                    await call.permit.settle(0 if call.cache == "hit" else call.prompt_tokens + call.completion_tokens)
                finally:
                    await call.permit.release()
            if call.reserved and vk is not None:
                await self._settle_budget(vk.id, call.rid, price_e7)
        except Exception as exc:  # noqa: BLE001 - the answer is out; the lease and the sweep reconcile
            log.warning("settling request %s failed: %s", call.rid, redact(str(exc)))
        route = call.route
        self.m_requests.inc((route, str(call.status)))
        if call.outcome != "ok":
            self.m_errors.inc((route, call.error or call.outcome))
        self.m_latency.observe(elapsed, (route,))
        if call.ttft is not None:
            self.m_ttft.observe(call.ttft, (route,))
        if call.provider and (call.prompt_tokens or call.completion_tokens) and call.cache != "hit":
            self.m_tokens.inc((call.provider, call.model or "", "prompt"), call.prompt_tokens)
            self.m_tokens.inc((call.provider, call.model or "", "completion"), call.completion_tokens)
        if price_e7:
            self.m_spend.inc((call.currency or "USD",), price_e7 / 1e7)
        if vk is not None and self.spend is not None:
            self.spend.add(SpendRecord(
                call.rid, vk.id, vk.tenant_id, route, call.provider, call.model, call.prompt_tokens,
                call.completion_tokens, call.prompt_tokens + call.completion_tokens, price_e7, call.currency,
                round(elapsed * 1000, 3), round(call.ttft * 1000, 3) if call.ttft is not None else None,
                call.outcome, call.status, call.error, call.cache == "hit", call.stream,
            ))  # fmt: skip
        if self.config.access_log and access_log.isEnabledFor(logging.INFO):
            access_log.info(_json({
                "rid": call.rid, "route": route, "status": call.status, "ms": round(elapsed * 1000, 3),
                "key": vk.id if vk else None, "tenant": vk.tenant_id if vk else None, "model": call.name,
                "provider": call.provider, "upstream_model": call.model, "stream": call.stream, "outcome": call.outcome,
                "error": call.error, "cache": call.cache, "prompt_tokens": call.prompt_tokens,
                "completion_tokens": call.completion_tokens, "price": str(from_e7(price_e7)) if price_e7 else "0",
                "ttft_ms": round(call.ttft * 1000, 3) if call.ttft is not None else None,
            }).decode())  # fmt: skip

    async def _settle_budget(self, key_id: str, rid: str, price_e7: int) -> None:
        for attempt in range(2):  # idempotent by reservation id: a retry after a lost reply never charges twice
            try:
                await self.budgets.settle(key_id, rid, price_e7)
                return
            except StateUnavailableError:
                if attempt:
                    raise
                await asyncio.sleep(0.05)

    async def json_body(self, request: web.Request) -> bytes:
        ctype = request.content_type
        if ctype != "application/json":
            raise GatewayError(415, f"Unsupported content type {ctype or '(none)'!r}: send application/json.",
                               code="unsupported_media_type")  # fmt: skip
        length = request.content_length
        limit = self.config.max_body_bytes
        if length is not None and length > limit:
            raise GatewayError(413, f"Request body too large: {length} bytes (at most {limit}).", code="request_too_large")
        body = await request.read()
        if len(body) > limit:
            raise GatewayError(413, f"Request body too large: {len(body)} bytes (at most {limit}).", code="request_too_large")
        return body

    async def ready(self) -> dict[str, Any]:
        """Store and state reachable (``/health/ready``)."""
        out: dict[str, Any] = {"store": "ok", "state": "ok", "draining": self.draining}
        try:
            await self.manager.store.schema_version()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            out["store"] = f"unavailable: {type(exc).__name__}"
        client = getattr(self.manager.state, "client", None)
        if client is not None and hasattr(client, "ping"):
            try:
                await client.ping()
            except Exception as exc:  # noqa: BLE001
                out["state"] = f"unavailable: {type(exc).__name__}"
        return out


# -- the web application ----------------------------------------------------------------------------


def error_response(info: ErrorInfo, anthropic: bool = False) -> web.Response:
    headers = retry_headers(info)
    body = anthropic_body(info) if anthropic else openai_body(info)
    return web.Response(body=body, status=info.status, content_type="application/json", headers=headers)


def _http_error(exc: web.HTTPException) -> GatewayError:
    status = exc.status
    if status == 413:
        return GatewayError(413, "Request body too large.", code="request_too_large")
    if status == 404:
        return GatewayError(404, f"Unknown route: {exc.reason}.", code="unknown_route")
    if status == 405:
        return GatewayError(405, "Method not allowed.", code="method_not_allowed")
    return GatewayError(status, exc.reason or "HTTP error", code=None)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    path = request.path
    if not path.startswith("/v1/"):  # health, metrics
        return await handler(request)
    call = Call(_rid(), request.match_info.route.resource.canonical if request.match_info.route.resource else path)
    request[CALL] = call
    gw.m_inflight.add(1)
    task = asyncio.current_task()
    if task is not None:
        gw.tasks.add(task)
    try:
        resp = await handler(request)
        call.status = resp.status
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _refuse(call, _http_error(exc), path)
    except asyncio.CancelledError:
        if call.outcome == "ok":
            call.outcome, call.status, call.error = "cancelled", 499, "ClientDisconnected"
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes the route's error answer
        return _refuse(call, exc, path)
    finally:
        gw.m_inflight.add(-1)
        if task is not None:
            gw.tasks.discard(task)
        await gw.finish(call)


def _refuse(call: Call, exc: BaseException, path: str) -> web.Response:
    info = classify(exc)
    if info.status >= 500 and not type(exc).__module__.startswith("arun"):  # not one of ours: a bug, with its traceback
        log.error("request %s failed: %s", call.rid, redact(repr(exc)), exc_info=(type(exc), exc, exc.__traceback__))
    if call.outcome == "ok":
        call.fail(info)
    resp = error_response(info, anthropic=path.startswith("/v1/messages"))
    resp.headers["x-request-id"] = call.rid
    return resp


async def _live(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    state = await gw.ready()
    ok = state["store"] == "ok" and state["state"] == "ok" and not gw.draining
    return web.json_response({"status": "ok" if ok else "unavailable", **state}, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.Response(body=gw.registry.exposition(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


def create_app(gw: Gateway) -> web.Application:
    from arun.gateway import anthropic_routes, openai_routes

    cfg = gw.config
    app = web.Application(middlewares=[_middleware], client_max_size=max(cfg.max_body_bytes, cfg.max_upload_bytes) + 4096)
    app[GATEWAY] = gw
    app.router.add_get("/health/live", _live)
    app.router.add_get("/health/ready", _ready)
    app.router.add_get("/metrics", _metrics)
    openai_routes.register(app)
    anthropic_routes.register(app)
    return app


# -- serving ------------------------------------------------------------------------------------------


async def run_gateway(gw: Gateway, host: str, port: int, *, ready: Callable[[int], None] | None = None,
                      stop: asyncio.Event | None = None, reuse_port: bool = False, signals: bool = True) -> None:  # fmt: skip
    """Start, listen until ``stop`` (or SIGTERM / SIGINT when ``signals``), then shut down gracefully."""
    await gw.start()
    runner = web.AppRunner(create_app(gw), access_log=None, handle_signals=False, handler_cancellation=True,
                           shutdown_timeout=1.0)  # fmt: skip
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT) if signals else ():
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=1024)
        await site.start()
        server = getattr(site, "_server", None)
        bound = server.sockets[0].getsockname()[1] if server is not None and server.sockets else port
        if ready is not None:
            ready(bound)
        await stop.wait()
        gw.draining = True
        log.info("shutting down: in-flight requests have %.1f s to finish", gw.config.shutdown_grace)
        await site.stop()  # stop accepting
        await _drain(gw, gw.config.shutdown_grace)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()  # close idle connections, cancel what is left
        await gw.aclose()


async def _drain(gw: Gateway, grace: float) -> None:
    """Let the requests in flight finish for ``grace`` seconds, then cancel them: a stream's handler
    then closes its upstream and sends its client an error event (the connection is still open)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + grace
    while gw.tasks and loop.time() < end:
        await asyncio.wait(set(gw.tasks), timeout=max(0.0, end - loop.time()))
    left = [t for t in gw.tasks if not t.done()]
    if left:
        log.warning("shutdown: cancelling %d request(s) still in flight after %.1f s", len(left), grace)
        for t in left:
            t.cancel()
        await asyncio.wait(left, timeout=2.0)


def serve(config: GatewayConfig, *, master_key: bytes | None = None, announce: Callable[[int], None] | None = None) -> int:
    """Run the gateway in the foreground (``arun serve``) until SIGTERM / SIGINT."""
    gw = Gateway(config, master_key=master_key)
    try:
        import uvloop

        use_uvloop = os.environ.get("ARUN_GATEWAY_LOOP", "uvloop") == "uvloop"
    except ImportError:
        use_uvloop = False
    coro = run_gateway(gw, config.host, config.port, ready=announce, reuse_port=config.workers > 1)
    if use_uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
    return 0
