"""``PolicyRouter``: retries, rotation, limits, fallbacks and commit-point streaming over a route.

::

    route = Route(
        Target("openai", "gpt-4o-mini", [CredentialConfig("k1", {...}), CredentialConfig("k2", {...}, weight=3)],
               strategy="latency_aware"),
        fallbacks=[Fallback(Target("anthropic", "claude-3-5-haiku-20241022", [...]),
                            {InvokeRateLimitError, InvokeServerUnavailableError})],
        max_fallbacks=1,
    )
    async with ModelRuntime() as rt:
        router = PolicyRouter(rt)
        result = await router.invoke(route, messages, stream=False)
        stream = await router.invoke(route, messages, stream=True)   # committed: first delta in hand
        async with stream:
            async for chunk in stream: ...

Per request, for each target of the chain (the route's target, then the
fallbacks whose triggers match the last error, at most ``max_fallbacks``), one
flat loop: pick a config with the target's strategy (configs cooling are
skipped), acquire its limiter permit (estimated prompt tokens + ``max_tokens``),
call, settle the permit with the real usage, feed ``observe(headers)`` from
failed responses, cool the config as the balancer does (60 s on rate limits, 10 s
on auth and connection errors, a longer Retry-After extends), then rotate /
retry / give up by the rules of :mod:`arun.policy.retry`.

**Commit point.**  ``await router.invoke(..., stream=True)`` returns only once a
content or tool-call delta arrived (or the stream completed without one).  Any
failure before that — error status, error event, disconnect, first-chunk
timeout — is retried, rotated or failed over without the caller seeing anything.
After it, the :class:`RoutedStream` ends with exactly one outcome: it completes,
or it raises :class:`InvokeStreamInterruptedError` (the original typed error as
``.cause`` and ``__cause__``) carrying ``.partial_usage`` and ``.trace``.
Nothing is ever retried after output reached the caller.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Awaitable, Callable, Iterable

from arun.entities.llm import LLMResult, LLMResultChunk, LLMUsage
from arun.entities.messages import PromptMessage, PromptMessageTool, ToolCall
from arun.errors import (
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
    InvokeTimeoutError,
)
from arun.policy.retry import Decision, RetryPolicy, describe
from arun.policy.strategies import ConfigStats, PickContext, Strategy, make_strategy
from arun.policy.trace import ConfigStatus, Trace, finish_span, start_span
from arun.redact import redact
from arun.state.base import StateStore, lb_scope
from arun.state.memory import MemoryStateStore

if sys.version_info >= (3, 11):
    from asyncio import timeout as _deadline
else:  # pragma: no cover
    from async_timeout import timeout as _deadline

__all__ = [
    "CredentialConfig",
    "Target",
    "Fallback",
    "Route",
    "Cooldowns",
    "PolicyRouter",
    "RoutedStream",
    "ConfigsCoolingError",
    "ConfigsRateLimitedError",
]

logger = logging.getLogger("arun.policy")


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialConfig:
    """One credential config of a target.  Credentials never appear in the repr."""

    id: str
    credentials: Mapping[str, Any] = field(repr=False)
    weight: float = 1.0
    limits: Any = None  # arun.policy.limits.LimitSpec | None


@dataclass(frozen=True)
class Target:
    """A (provider, model) pair served by one or more credential configs."""

    provider: str
    model: str
    configs: Sequence[CredentialConfig]
    strategy: str | Strategy = "round_robin"
    #: Tokens reserved for the answer when the call sets no ``max_tokens``.
    default_max_tokens: int = 256

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class Fallback:
    """Fall to ``target`` when the previous target ended in one of ``triggers`` (isinstance)."""

    target: Target
    triggers: frozenset[type[BaseException]] | set[type[BaseException]] | tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Route:
    """A target plus its fallback chain; a request falls at most ``max_fallbacks`` times (None: the whole chain)."""

    target: Target
    fallbacks: Sequence[Fallback | tuple[Target, Iterable[type[BaseException]]]] = ()
    max_fallbacks: int | None = None

    def chain(self) -> list[Fallback]:
        out = []
        for fb in self.fallbacks:
            out.append(fb if isinstance(fb, Fallback) else Fallback(fb[0], frozenset(fb[1])))
        return out


@dataclass(frozen=True)
class Cooldowns:
    """Seconds a config cools after a failure (the balancer's defaults); a longer Retry-After extends them."""

    rate_limit: float = 60.0
    auth: float = 10.0
    connection: float = 10.0

    def for_error(self, exc: BaseException) -> float | None:
        if getattr(exc, "limit_exceeded", False):
            return None  # our own limiter said no: the credential is fine
        if isinstance(exc, InvokeRateLimitError):
            base = self.rate_limit
        elif isinstance(exc, InvokeAuthorizationError):
            base = self.auth
        elif isinstance(exc, InvokeConnectionError):
            base = self.connection
        else:
            return None
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, (int, float)) and ra > base:
            return float(ra)
        return base


# -- errors of the policy layer -----------------------------------------------------------------


class ConfigsCoolingError(InvokeServerUnavailableError):
    """Every config of a target cools (for other reasons than rate limits) and waiting was not allowed."""

    description = "Every credential config is cooling down"


class ConfigsRateLimitedError(InvokeRateLimitError):
    """Every config of a target cools after rate limits and waiting was not allowed."""

    description = "Every credential config is rate limited"


def _limit_error_types() -> tuple[type[BaseException], ...]:
    try:
        from arun.policy.limits import LimitExceededError
    except ImportError:  # pragma: no cover - the limiter ships with the policy package
        return ()
    return (LimitExceededError,)


# -- per-target runtime state -----------------------------------------------------------------


class _TargetState:
    __slots__ = ("target", "scope", "ids", "by_id", "stats", "strategy", "ctx", "limit_keys")

    def __init__(self, router: PolicyRouter, target: Target, model_type: str) -> None:
        self.target = target
        self.scope = lb_scope(router.tenant_id, target.provider, model_type, target.model)
        self.ids = [c.id for c in target.configs]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"duplicate credential config ids in {target.name}")
        if not self.ids:
            raise ValueError(f"target {target.name} has no credential configs")
        self.by_id = {c.id: c for c in target.configs}
        self.stats = {cid: ConfigStats() for cid in self.ids}
        self.strategy = make_strategy(target.strategy)
        self.ctx = PickContext(
            router.state, self.scope, self.stats, {c.id: c.weight for c in target.configs}, router._clock
        )
        self.limit_keys = {c.id: f"{target.provider}:{target.model}:{c.id}" for c in target.configs}


def _estimate_prompt_tokens(messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool] | None) -> int:
    """A cheap upper-ish estimate (4 characters a token, 4 tokens a message); the limiter reconciles later."""
    chars = 0
    for m in messages:
        content = m.content
        if isinstance(content, str):
            chars += len(content)
        elif content:
            for part in content:
                data = getattr(part, "data", None)
                if isinstance(data, str):
                    chars += min(len(data), 4000)
    if tools:
        for t in tools:
            chars += len(t.name) + len(t.description or "") + 200
    return chars // 4 + 4 * len(messages) + 3


def _has_output(chunk: LLMResultChunk) -> bool:
    message = chunk.delta.message
    content = message.content
    if content:
        return True
    return bool(message.tool_calls)


async def _call_hook(hook: Callable[..., Any], trace: Trace) -> None:
    try:
        result = hook(trace)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # a broken observer must not break the call
        logger.warning("on_trace hook failed: %s", redact(repr(exc)))


class _Committed:
    """A stream attempt that reached the commit point."""

    __slots__ = ("target", "ts", "cfg", "permit", "stream", "buffered", "finished", "started")

    def __init__(self, target: Target, ts: _TargetState, cfg: CredentialConfig, permit: Any, stream: Any,
                 buffered: list[LLMResultChunk], finished: bool, started: float) -> None:
        self.target = target
        self.ts = ts
        self.cfg = cfg
        self.permit = permit
        self.stream = stream
        self.buffered = buffered
        self.finished = finished
        self.started = started


# -- the router -------------------------------------------------------------------------------------


class PolicyRouter:
    """Serve LLM (stream and non-stream) and embedding calls for routes, with the policy stack."""

    def __init__(
        self,
        runtime: Any,
        *,
        state: StateStore | None = None,
        limiter: Any = None,
        retry: RetryPolicy | None = None,
        cooldowns: Cooldowns | None = None,
        tenant_id: str = "default",
        wait_deadline: float = 0.0,
        limit_wait: float | None = 30.0,
        first_chunk_timeout: float | None = None,
        on_trace: Callable[[Trace], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.runtime = runtime
        self.state: StateStore = state if state is not None else MemoryStateStore()
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.cooldowns = cooldowns or Cooldowns()
        self.tenant_id = tenant_id
        #: When every config cools, wait for the earliest recovery if it comes within this many seconds.
        self.wait_deadline = wait_deadline
        #: How long a call may wait for limiter capacity (seconds) before rotating.
        self.limit_wait = limit_wait
        #: Seconds from sending a streamed request to its first content delta (None: only the HTTP timeouts).
        self.first_chunk_timeout = first_chunk_timeout
        self.on_trace = on_trace
        self._clock = clock
        self._sleep = sleep
        self._targets: dict[tuple[Any, ...], _TargetState] = {}
        self._limit_errors = _limit_error_types()

    # -- public API ---------------------------------------------------------------------------

    async def invoke(
        self,
        route: Route | Target,
        prompt_messages: Sequence[PromptMessage],
        model_parameters: Mapping[str, Any] | None = None,
        tools: Sequence[PromptMessageTool] | None = None,
        stop: Sequence[str] | None = None,
        stream: bool = True,
        user: str | None = None,
        callbacks: Sequence[Any] | None = None,
        *,
        on_trace: Callable[[Trace], Any] | None = None,
    ) -> LLMResult | RoutedStream:
        """An :class:`LLMResult`, or (``stream=True``) a committed :class:`RoutedStream`."""
        route = route if isinstance(route, Route) else Route(route)
        trace = Trace("chat")
        hooks = self._hooks(on_trace, callbacks)
        params = dict(model_parameters or {})
        messages = list(prompt_messages)
        prompt_est = _estimate_prompt_tokens(messages, tools)
        span = start_span("chat", route.target.provider, route.target.model, params)

        def tokens_for(target: Target) -> int:
            mt = params.get("max_tokens")
            return prompt_est + (int(mt) if isinstance(mt, int) else target.default_max_tokens)

        if not stream:

            async def attempt(target: Target, ts: _TargetState, cfg: CredentialConfig) -> LLMResult:
                llm = self.runtime.get_model_instance(target.provider, "llm")
                return await self._guarded(
                    ts, cfg, trace, tokens_for(target),
                    llm.invoke(target.model, cfg.credentials, messages, params, tools, stop, False, user, callbacks),
                    lambda r: r.usage.total_tokens,
                )

            try:
                result: LLMResult = await self._run(route, "llm", attempt, trace)
            except BaseException as exc:
                await self._finish_error(trace, span, hooks, exc, prompt_est)
                raise
            trace.outcome = "completed"
            usage = result.usage
            finish_span(span, trace, provider=trace.target.split("/", 1)[0] if trace.target else None,
                        model=result.model, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                        finish_reason=result.finish_reason)
            for hook in hooks:
                await _call_hook(hook, trace)
            return result

        async def open_stream(target: Target, ts: _TargetState, cfg: CredentialConfig) -> _Committed:
            return await self._open_committed(
                target, ts, cfg, trace, tokens_for(target),
                messages, params, tools, stop, user, callbacks,
            )

        try:
            committed: _Committed = await self._run(route, "llm", open_stream, trace)
        except BaseException as exc:
            await self._finish_error(trace, span, hooks, exc, prompt_est)
            raise
        trace.add("commit", committed.target.name, committed.cfg.id)
        return RoutedStream(self, committed, trace, span, hooks, messages, prompt_est)

    async def embed(
        self,
        route: Route | Target,
        texts: Sequence[str],
        user: str | None = None,
        input_type: Any = None,
        *,
        on_trace: Callable[[Trace], Any] | None = None,
    ) -> Any:
        """A :class:`TextEmbeddingResult` for ``texts`` through the route."""
        route = route if isinstance(route, Route) else Route(route)
        trace = Trace("embeddings")
        hooks = self._hooks(on_trace, None)
        texts = list(texts)
        tokens = sum(len(t) for t in texts) // 4 + len(texts)
        span = start_span("embeddings", route.target.provider, route.target.model)

        async def attempt(target: Target, ts: _TargetState, cfg: CredentialConfig) -> Any:
            model = self.runtime.get_model_instance(target.provider, "text-embedding")
            kwargs = {} if input_type is None else {"input_type": input_type}
            return await self._guarded(
                ts, cfg, trace, tokens, model.invoke(target.model, cfg.credentials, texts, user, **kwargs),
                lambda r: r.usage.total_tokens,
            )

        try:
            result = await self._run(route, "text-embedding", attempt, trace)
        except BaseException as exc:
            await self._finish_error(trace, span, hooks, exc, tokens)
            raise
        trace.outcome = "completed"
        finish_span(span, trace, model=result.model, input_tokens=result.usage.tokens)
        for hook in hooks:
            await _call_hook(hook, trace)
        return result

    async def states(self, route: Route | Target, model_type: str = "llm") -> list[ConfigStatus]:
        """Per config of every target of the route: health, cooldown (until when, why), in flight, EWMA, limit."""
        route = route if isinstance(route, Route) else Route(route)
        out: list[ConfigStatus] = []
        for target in [route.target] + [fb.target for fb in route.chain()]:
            ts = self._target(target, model_type)
            raw = await self.state.lb_state(ts.scope, ts.ids)
            for cid, st in zip(ts.ids, raw):
                s = ts.stats[cid]
                cfg = ts.by_id[cid]
                limit = None
                if self.limiter is not None and cfg.limits is not None:
                    try:
                        limit = await self.limiter.snapshot(ts.limit_keys[cid], cfg.limits)
                    except Exception as exc:
                        limit = {"error": type(exc).__name__}
                out.append(
                    ConfigStatus(
                        target=target.name, config_id=cid, healthy=not st.in_cooldown,
                        cooling_until=st.until, cooling_reason=st.reason, cooling_remaining=st.ttl,
                        in_flight=s.in_flight, requests=s.requests, failures=s.failures,
                        ewma_ttft=s.ewma_ttft, last_error=s.last_error, limit=limit,
                    )
                )
        return out

    # -- the loop ------------------------------------------------------------------------------

    def _hooks(self, on_trace: Callable[[Trace], Any] | None, callbacks: Sequence[Any] | None) -> list[Callable[[Trace], Any]]:
        hooks: list[Callable[[Trace], Any]] = []
        if self.on_trace is not None:
            hooks.append(self.on_trace)
        if on_trace is not None:
            hooks.append(on_trace)
        for cb in callbacks or ():
            hook = getattr(cb, "on_trace", None)
            if hook is not None:
                hooks.append(hook)
        return hooks

    def _target(self, target: Target, model_type: str) -> _TargetState:
        key = (model_type, target.provider, target.model, id(target))
        ts = self._targets.get(key)
        if ts is None or ts.target is not target:
            ts = _TargetState(self, target, model_type)
            self._targets[key] = ts
        return ts

    async def _run(self, route: Route, model_type: str, attempt: Callable[..., Awaitable[Any]], trace: Trace) -> Any:
        """The chain: the route's target, then each fallback whose triggers match the last error."""
        chain = route.chain()
        cap = len(chain) if route.max_fallbacks is None else route.max_fallbacks
        try:
            return await self._run_target(route.target, model_type, attempt, trace)
        except InvokeError as exc:
            last: InvokeError = exc
        for fb in chain:
            if not any(isinstance(last, t) for t in fb.triggers):
                trace.add("skip", fb.target.name, reason="fallback trigger does not match", error=type(last).__name__)
                continue
            if trace.fallbacks >= cap:
                trace.add("skip", fb.target.name, reason="fallback cap reached", cap=cap)
                break
            trace.fallbacks += 1
            trace.add("fallback", fb.target.name, error=type(last).__name__)
            try:
                return await self._run_target(fb.target, model_type, attempt, trace)
            except InvokeError as exc:
                last = exc
        raise last

    async def _run_target(
        self, target: Target, model_type: str, attempt: Callable[..., Awaitable[Any]], trace: Trace
    ) -> Any:
        """One flat loop over the configs of one target: attempt, then rotate / retry / give up."""
        ts = self._target(target, model_type)
        policy = self.retry
        name = target.name
        trace.target = name
        excluded: set[str] = set()
        tried: set[str] = set()
        retries = rotations = 0
        last: InvokeError | None = None
        last_cfg: CredentialConfig | None = None
        # the latest failure that may be retried: a dead key tried after it does not cancel its retry
        retry_from: tuple[CredentialConfig, Decision] | None = None
        started = self._clock()
        while True:
            cfg: CredentialConfig | None = None
            if last is None or last_cfg is None:
                cfg = await self._pick(ts, excluded, trace, started, wait=True)
            else:
                d = policy.decide(last, retries)
                if d.retry:
                    retry_from = (last_cfg, d)
                if d.exclude:
                    excluded.add(last_cfg.id)
                    trace.add("skip", name, last_cfg.id, reason=d.reason, retry_after=last.retry_after)
                if d.rotate and rotations < policy.max_rotations:
                    cfg = await self._pick(ts, excluded | tried, trace, started, wait=False)
                    if cfg is not None:
                        rotations += 1
                        trace.rotations += 1
                        trace.add("rotate", name, cfg.id, away_from=last_cfg.id, error=type(last).__name__)
                elif d.rotate:
                    trace.add("skip", name, reason="rotation budget spent", max_rotations=policy.max_rotations)
                if cfg is None and retry_from is not None:
                    if retries >= policy.max_retries:
                        trace.add("skip", name, reason="retry budget spent", max_retries=policy.max_retries)
                    else:
                        again, rd = retry_from
                        retry_from = None
                        trace.add("wait", name, again.id, reason=rd.reason, seconds=round(rd.delay, 6))
                        if rd.delay > 0:
                            await self._sleep(rd.delay)
                            trace.waited += rd.delay
                        retries += 1
                        trace.retries += 1
                        tried.clear()
                        # a healthy config after the wait, else the one that asked us to wait
                        cfg = await self._pick(ts, excluded, trace, started, wait=False) or again
                        trace.add("retry", name, cfg.id, error=type(last).__name__)
                if cfg is None:
                    raise last
            assert cfg is not None
            tried.add(cfg.id)
            last_cfg = cfg
            trace.config = cfg.id
            try:
                return await attempt(target, ts, cfg)
            except self._limit_errors as exc:
                # our own limiter said no (nothing was sent): rotate, never cool the credential
                setattr(exc, "limit_exceeded", True)
                last = exc  # type: ignore[assignment,unused-ignore]
                trace.add("skip", name, cfg.id, reason="limit", detail=str(exc)[:200])
            except InvokeError as exc:
                last = exc
                await self._on_failure(ts, cfg, exc, trace)

    async def _pick(
        self, ts: _TargetState, exclude: set[str], trace: Trace, started: float, *, wait: bool
    ) -> CredentialConfig | None:
        ids = [i for i in ts.ids if i not in exclude] if exclude else ts.ids
        if not ids:
            return None
        while True:
            cid, cooling = await ts.strategy.pick(ts.ctx, ids)
            if cid is not None:
                for c, ttl in cooling:
                    trace.add("skip", ts.target.name, c, reason="cooling", remaining=round(ttl, 3))
                return ts.by_id[cid]
            if not wait:
                return None
            soonest = min((ttl for _, ttl in cooling), default=None)
            if soonest is not None and self._clock() + soonest <= started + self.wait_deadline:
                trace.add("wait", ts.target.name, reason="earliest recovery", seconds=round(soonest, 6))
                await self._sleep(soonest + 0.001)
                trace.waited += soonest
                continue
            raise await self._cooling_error(ts, ids, soonest, trace)

    async def _cooling_error(self, ts: _TargetState, ids: list[str], soonest: float | None, trace: Trace) -> InvokeError:
        states = await self.state.lb_state(ts.scope, ids)
        reasons = [s.reason or "" for s in states if s.in_cooldown]
        for s in states:
            trace.add("skip", ts.target.name, s.config_id, reason="cooling", why=s.reason or "", remaining=round(s.ttl, 3))
        cls: type[InvokeError] = (
            ConfigsRateLimitedError if any("RateLimit" in r or "Quota" in r for r in reasons) else ConfigsCoolingError
        )
        return cls(
            f"[{ts.target.provider}] {cls.description} for {ts.target.model}",
            provider=ts.target.provider, model=ts.target.model, retry_after=soonest,
        )

    async def _on_failure(self, ts: _TargetState, cfg: CredentialConfig, exc: InvokeError, trace: Trace) -> None:
        st = ts.stats[cfg.id]
        st.failures += 1
        st.last_error = type(exc).__name__
        headers = exc.headers
        if headers and self.limiter is not None:
            try:
                self.limiter.observe(ts.limit_keys[cfg.id], headers)
            except Exception as err:  # observing is best effort
                logger.debug("limiter.observe failed: %s", err)
        seconds = self.cooldowns.for_error(exc)
        if seconds is not None:
            await self.state.lb_cooldown(ts.scope, cfg.id, seconds, f"{type(exc).__name__}: {redact(str(exc))}"[:200])
            trace.add("cooldown", ts.target.name, cfg.id, seconds=seconds, error=type(exc).__name__)

    # -- attempts ------------------------------------------------------------------------------

    async def _acquire(self, ts: _TargetState, cfg: CredentialConfig, tokens: int, trace: Trace) -> Any:
        if self.limiter is None or cfg.limits is None:
            return None
        t0 = perf_counter()
        permit = await self.limiter.acquire(ts.limit_keys[cfg.id], cfg.limits, tokens, deadline=self.limit_wait)
        waited = perf_counter() - t0
        if waited > 0.001:
            trace.add("wait", ts.target.name, cfg.id, reason="limit", seconds=round(waited, 6))
            trace.waited += waited
        return permit

    async def _settle(self, permit: Any, tokens: int | None) -> None:
        if permit is None:
            return
        try:
            if tokens is not None:
                await permit.settle(tokens)
        finally:
            await permit.release()

    async def _guarded(
        self, ts: _TargetState, cfg: CredentialConfig, trace: Trace, tokens: int,
        call: Awaitable[Any], used: Callable[[Any], int],
    ) -> Any:
        """One non-streamed attempt: permit, in-flight count, EWMA latency, settle."""
        try:
            permit = await self._acquire(ts, cfg, tokens, trace)
        except BaseException:
            if inspect.iscoroutine(call):
                call.close()
            raise
        st = ts.stats[cfg.id]
        st.in_flight += 1
        st.requests += 1
        trace.attempts += 1
        ev = trace.add("attempt", ts.target.name, cfg.id)
        t0 = perf_counter()
        spent: int | None = 0
        try:
            result = await call
            elapsed = perf_counter() - t0
            st.sample(elapsed, self._clock())
            spent = used(result)
            ev.detail["outcome"] = "ok"
            return result
        except BaseException as exc:
            ev.detail["outcome"] = type(exc).__name__
            ev.detail.update(describe(exc))
            spent = 0 if isinstance(exc, InvokeError) and exc.status else None
            raise
        finally:
            st.in_flight -= 1
            ev.detail["seconds"] = round(perf_counter() - t0, 6)
            await self._settle(permit, spent)

    async def _open_committed(
        self, target: Target, ts: _TargetState, cfg: CredentialConfig, trace: Trace, tokens: int,
        messages: list[PromptMessage], params: dict[str, Any], tools: Any, stop: Any, user: Any, callbacks: Any,
    ) -> _Committed:
        """Open a stream and read up to its first content or tool-call delta (the commit point)."""
        permit = await self._acquire(ts, cfg, tokens, trace)
        st = ts.stats[cfg.id]
        st.in_flight += 1
        st.requests += 1
        trace.attempts += 1
        ev = trace.add("attempt", target.name, cfg.id, stream=True)
        t0 = perf_counter()
        stream: Any = None
        buffered: list[LLMResultChunk] = []
        finished = False
        try:
            llm = self.runtime.get_model_instance(target.provider, "llm")
            try:
                async with _deadline(self.first_chunk_timeout):
                    stream = await llm.invoke(target.model, cfg.credentials, messages, params, tools, stop, True, user, callbacks)
                    while True:
                        try:
                            chunk = await stream.__anext__()
                        except StopAsyncIteration:
                            finished = True
                            break
                        buffered.append(chunk)
                        if _has_output(chunk):
                            break
            except TimeoutError as exc:
                if isinstance(exc, InvokeError):
                    raise
                raise InvokeTimeoutError(
                    f"[{target.provider}] Timeout Error: no output within {self.first_chunk_timeout} s",
                    provider=target.provider, model=target.model,
                ) from exc
        except BaseException as exc:
            st.in_flight -= 1
            ev.detail["outcome"] = type(exc).__name__
            ev.detail.update(describe(exc))
            ev.detail["seconds"] = round(perf_counter() - t0, 6)
            if stream is not None:
                try:
                    await stream.aclose()
                except Exception:
                    pass
            await self._settle(permit, 0 if isinstance(exc, InvokeError) else None)
            raise
        ttft = perf_counter() - t0
        st.sample(ttft, self._clock())
        ev.detail["outcome"] = "committed"
        ev.detail["ttft"] = round(ttft, 6)
        return _Committed(target, ts, cfg, permit, stream, buffered, finished, t0)

    async def _finish_error(self, trace: Trace, span: Any, hooks: list[Callable[[Trace], Any]], exc: BaseException, prompt_est: int) -> None:
        trace.outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
        trace.error = type(exc).__name__
        trace.add("error", trace.target, trace.config, **describe(exc))
        if isinstance(exc, InvokeError):
            exc.trace = trace  # type: ignore[attr-defined]
        finish_span(span, trace, error=exc)
        for hook in hooks:
            await _call_hook(hook, trace)


# -- the committed stream --------------------------------------------------------------------------


class RoutedStream:
    """A stream past its commit point: iterate it, or ``collect()``; ends completed or with one typed error.

    ``trace`` is the request's decision trace; ``target`` / ``config_id`` say who answers.
    """

    def __init__(
        self, router: PolicyRouter, committed: _Committed, trace: Trace, span: Any,
        hooks: list[Callable[[Trace], Any]], messages: list[PromptMessage], prompt_est: int,
    ) -> None:
        self._router = router
        self._c = committed
        self.trace = trace
        self._span = span
        self._hooks = hooks
        self.prompt_messages = messages
        self._prompt_est = prompt_est
        self.target = committed.target.name
        self.config_id = committed.cfg.id
        self.model = committed.target.model
        self._parts: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._usage: LLMUsage | None = None
        self._finish_reason: str | None = None
        self._delivered = 0
        self._started = False
        self._cleaned = False
        self.outcome: str | None = None
        self.error: BaseException | None = None
        self._gen = self._run()

    def __aiter__(self) -> RoutedStream:
        return self

    async def __anext__(self) -> LLMResultChunk:
        self._started = True
        return await self._gen.__anext__()

    async def _run(self) -> Any:
        c = self._c
        outcome = "cancelled"
        error: BaseException | None = None
        try:
            buffered, c.buffered = c.buffered, []
            for chunk in buffered:
                self._note(chunk)
                yield chunk
            if not c.finished:
                stream = c.stream
                while True:
                    try:
                        chunk = await stream.__anext__()
                    except StopAsyncIteration:
                        break
                    except Exception as exc:
                        error = self._terminal(exc)
                        outcome = "interrupted"
                        raise error from exc
                    self._note(chunk)
                    yield chunk
            outcome = "completed"
        finally:
            await self._cleanup(outcome, error)

    def _note(self, chunk: LLMResultChunk) -> None:
        self._delivered += 1
        delta = chunk.delta
        message = delta.message
        content = message.content
        if content.__class__ is str:
            self._parts.append(content)  # type: ignore[arg-type,unused-ignore]
        if message.tool_calls:
            self._tool_calls.extend(message.tool_calls)
        if delta.finish_reason is not None:
            self._finish_reason = delta.finish_reason
        if delta.usage is not None:
            self._usage = delta.usage

    def partial_usage(self) -> LLMUsage:
        """The usage the provider reported, or an estimate of what was delivered (1 token a delta)."""
        if self._usage is not None:
            return self._usage
        usage = LLMUsage.empty_usage()
        usage.prompt_tokens = self._prompt_est
        usage.completion_tokens = sum(1 for p in self._parts if p) + len(self._tool_calls)
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        return usage

    def _terminal(self, exc: BaseException) -> InvokeStreamInterruptedError:
        c = self._c
        if isinstance(exc, InvokeStreamInterruptedError):
            err = exc
        else:
            err = InvokeStreamInterruptedError(
                f"[{c.target.provider}] Stream Interrupted after {self._delivered} chunks: "
                f"{type(exc).__name__}: {exc}",
                provider=c.target.provider, model=c.target.model,
                status=getattr(exc, "status", None), request_id=getattr(exc, "request_id", None),
                retry_after=getattr(exc, "retry_after", None),
            )
        err.cause = exc  # type: ignore[attr-defined]
        err.partial_usage = self.partial_usage()  # type: ignore[attr-defined]
        err.delivered_chunks = self._delivered  # type: ignore[attr-defined]
        err.trace = self.trace  # type: ignore[attr-defined]
        return err

    async def _cleanup(self, outcome: str, error: BaseException | None) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        c = self._c
        st = c.ts.stats[c.cfg.id]
        st.in_flight -= 1
        try:
            if c.stream is not None:
                try:
                    await c.stream.aclose()
                except Exception:
                    pass
            usage = self.partial_usage() if outcome != "completed" or self._usage is None else self._usage
            await self._router._settle(c.permit, usage.total_tokens)
        finally:
            trace = self.trace
            self.outcome = trace.outcome = outcome
            self.error = error
            if error is not None:
                st.failures += 1
                st.last_error = type(error.cause if hasattr(error, "cause") else error).__name__
                trace.error = type(error).__name__
                trace.add("error", self.target, self.config_id, delivered=self._delivered,
                          cause=type(getattr(error, "cause", error)).__name__)
            else:
                trace.add(outcome, self.target, self.config_id, delivered=self._delivered)
            usage = self._usage or self.partial_usage()
            finish_span(self._span, trace, provider=c.target.provider, model=c.target.model,
                        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                        finish_reason=self._finish_reason, error=error)
            for hook in self._hooks:
                await _call_hook(hook, trace)

    @property
    def usage(self) -> LLMUsage | None:
        return self._usage

    def result(self) -> LLMResult:
        """What was delivered so far, assembled."""
        from arun.entities.messages import AssistantPromptMessage

        return LLMResult(
            model=self.model,
            prompt_messages=self.prompt_messages,
            message=AssistantPromptMessage(content="".join(self._parts), tool_calls=list(self._tool_calls)),
            usage=self._usage or self.partial_usage(),
            finish_reason=self._finish_reason,
        )

    async def collect(self) -> LLMResult:
        """Consume the rest and return the assembled result (raises the terminal error if it was cut)."""
        async with self:
            async for _ in self:
                pass
        return self.result()

    async def aclose(self) -> None:
        if not self._started:
            # a generator never started does not run its ``finally``: clean up here
            await self._gen.aclose()
            await self._cleanup("cancelled", None)
            return
        await self._gen.aclose()

    async def __aenter__(self) -> RoutedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
