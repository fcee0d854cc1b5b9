"""``PolicyRouter``: retries, rotation, limits, fallbacks and commit-point streaming over a route.

::

    async with ModelRuntime() as rt:
        router = PolicyRouter(rt)
        result = await router.invoke(route, messages, stream=False)
        stream = await router.invoke(route, messages, stream=True)   # committed: first delta in hand
        async with stream:
            async for chunk in stream: ...
        vectors = await router.embed(route, texts)
        docs = await router.call(route, "rerank", lambda m, model, creds: m.invoke(model, creds, query, docs))

The one balancer of arun: Dify's round robin (its Redis keys, its 60 s / 10 s cooldowns) is
:class:`~arun.policy.strategies.RoundRobin`, one strategy next to weighted, least-in-flight and
latency-aware; :meth:`PolicyRouter.dify` builds the router with Dify's rules (no retries,
rotate only on rate limits, auth and connection errors, never cool a lone credential) that the
manager uses when the policy layer is off.  Every model type goes through the same loop.

Per request, for each target of the chain (the route's target, then the fallbacks whose
triggers match the last error, at most ``max_fallbacks``), one flat loop: pick a config with
the target's strategy (configs cooling are skipped), acquire its limiter permit (estimated
tokens), call, settle the permit with the real usage, feed ``observe(headers)`` from failed
responses, cool the config, then rotate / retry / give up by the rules of :mod:`arun.policy.retry`.

**Commit point.**  ``await router.invoke(..., stream=True)`` returns only once a content or
tool-call delta arrived (or the stream completed without one).  Any failure before that —
error status, error event, disconnect, first-chunk timeout — is retried, rotated or failed
over without the caller seeing anything.  After it the :class:`~arun.model_types.llm_stream.LLMStream`
ends with exactly one outcome: it completes, or it raises the failure's own typed error
(``InvokeTimeoutError`` for a stall, ``InvokeStreamInterruptedError`` for a cut, the provider's
error for an error event) with ``after_commit = True``, ``partial_usage``, ``delivered_chunks``
and ``trace`` set.  Nothing is ever retried after output reached the caller.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from arun.entities.llm import LLMResult
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.errors import ArunUsageError, InvokeError, InvokeTimeoutError
from arun.policy.retry import RetryPolicy, describe
from arun.policy.routes import (
    ConfigsCoolingError,
    ConfigsRateLimitedError,
    Cooldowns,
    CredentialConfig,
    Fallback,
    Route,
    Target,
)
from arun.policy.strategies import ConfigStats, PickContext, make_strategy
from arun.policy.trace import ConfigStatus, Trace, finish_span, start_span
from arun.redact import redact
from arun.state.base import StateStore, lb_scope
from arun.state.memory import MemoryStateStore

if TYPE_CHECKING:
    from arun.entities.embedding import EmbeddingInputType, TextEmbeddingResult
    from arun.model_types.llm import LargeLanguageModel
    from arun.model_types.llm_stream import LLMStream, StreamOutcome, StreamView
    from arun.model_types.text_embedding import TextEmbeddingModel
    from arun.runtime.model_runtime import ModelRuntime

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
    "ConfigsCoolingError",
    "ConfigsRateLimitedError",
    "estimate_prompt_tokens",
    "estimate_text_tokens",
]

logger = logging.getLogger("arun.policy")

T = TypeVar("T")
#: ``call(model_object, model, credentials) -> awaitable result``: one attempt on one config
Op = Callable[[Any, str, Mapping[str, Any]], Awaitable[T]]


def _limit_error_types() -> tuple[type[BaseException], ...]:
    from arun.policy.limits import LimitExceededError

    return (LimitExceededError,)


class _TargetState:
    """What the router keeps per (target, model type): built once, read by every request."""

    __slots__ = ("target", "model_type", "scope", "ids", "by_id", "stats", "strategy", "ctx", "limit_keys", "_model")

    def __init__(self, router: PolicyRouter, target: Target, model_type: str) -> None:
        self.target = target
        self.model_type = model_type
        self.scope = lb_scope(router.tenant_id, target.provider, model_type, target.model)
        self.ids = [c.id for c in target.configs]
        if len(set(self.ids)) != len(self.ids):
            raise ArunUsageError(f"duplicate credential config ids in {target.name}")
        if not self.ids:
            raise ArunUsageError(f"target {target.name} has no credential configs")
        self.by_id = {c.id: c for c in target.configs}
        self.stats = {cid: ConfigStats() for cid in self.ids}
        self.strategy = make_strategy(target.strategy)
        self.ctx = PickContext(
            router.state, self.scope, self.stats, {c.id: c.weight for c in target.configs}, router._clock
        )
        self.limit_keys = {c.id: f"{target.provider}:{target.model}:{c.id}" for c in target.configs}
        self._model: Any = None

    def model_object(self, runtime: ModelRuntime) -> Any:
        """The runtime's model object of the target's provider and type (looked up on first use)."""
        model = self._model
        if model is None:
            model = self._model = runtime.get_model_instance(self.target.provider, self.model_type)
        return model


def estimate_prompt_tokens(messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool] | None) -> int:
    """A cheap upper-ish estimate (4 characters a token, 4 tokens a message); the limiter reconciles later.

    Inputs the model would reject (not a list of messages) count as nothing: the model's own
    validation raises their typed error."""
    if not isinstance(messages, Sequence):
        return 3
    chars = 0
    for m in messages:
        content = getattr(m, "content", None)
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, Sequence):
            for part in content:
                data = getattr(part, "data", None)
                if isinstance(data, str):
                    chars += min(len(data), 4000)
    if tools and isinstance(tools, Sequence):
        for t in tools:
            chars += len(getattr(t, "name", "") or "") + len(getattr(t, "description", "") or "") + 200
    return chars // 4 + 4 * len(messages) + 3


def estimate_text_tokens(texts: Sequence[str]) -> int:
    """The same cheap estimate for texts to embed (4 characters a token, 1 more a text)."""
    return sum(len(t) for t in texts) // 4 + len(texts)


async def _call_hook(hook: Callable[..., Any], trace: Trace) -> None:
    try:
        result = hook(trace)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # noqa: BLE001 - a broken observer must not break the call
        logger.warning("on_trace hook failed: %s", redact(repr(exc)))


class PolicyRouter:
    """Serve every model type's calls for routes, with the policy stack."""

    def __init__(
        self,
        runtime: ModelRuntime,
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
        self._targets: dict[tuple[str, int], _TargetState] = {}
        self._limit_errors = _limit_error_types()

    @classmethod
    def dify(cls, runtime: ModelRuntime, *, state: StateStore | None = None, tenant_id: str = "default",
             wait_deadline: float | None = None, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> PolicyRouter:  # fmt: skip
        """Dify's load balancer, as the router: round robin over the configs (the route's strategy),
        no retries, rotate only on rate limits (60 s cooldown), auth and connection errors (10 s),
        raise anything else at once, never cool a lone credential; a stream rotates until its
        first chunk."""
        return cls(
            runtime, state=state, retry=RetryPolicy.dify(), cooldowns=Cooldowns(single_config=False),
            tenant_id=tenant_id, wait_deadline=wait_deadline or 0.0, clock=clock, sleep=sleep,
        )  # fmt: skip

    # -- public API ---------------------------------------------------------------------------

    @overload
    async def invoke(
        self, route: Route | Target, prompt_messages: Sequence[PromptMessage], model_parameters: Mapping[str, Any] | None = ...,
        tools: Sequence[PromptMessageTool] | None = ..., stop: Sequence[str] | None = ..., stream: Literal[True] = ...,
        user: str | None = ..., callbacks: Sequence[Any] | None = ..., *, extra_headers: Mapping[str, str] | None = ...,
        extra_body: Mapping[str, Any] | None = ..., on_trace: Callable[[Trace], Any] | None = ...,
        incremental_tool_calls: bool = ...,
    ) -> LLMStream: ...

    @overload
    async def invoke(
        self, route: Route | Target, prompt_messages: Sequence[PromptMessage], model_parameters: Mapping[str, Any] | None = ...,
        tools: Sequence[PromptMessageTool] | None = ..., stop: Sequence[str] | None = ..., *, stream: Literal[False],
        user: str | None = ..., callbacks: Sequence[Any] | None = ..., extra_headers: Mapping[str, str] | None = ...,
        extra_body: Mapping[str, Any] | None = ..., on_trace: Callable[[Trace], Any] | None = ...,
        incremental_tool_calls: bool = ...,
    ) -> LLMResult: ...

    @overload
    async def invoke(
        self, route: Route | Target, prompt_messages: Sequence[PromptMessage], model_parameters: Mapping[str, Any] | None = ...,
        tools: Sequence[PromptMessageTool] | None = ..., stop: Sequence[str] | None = ..., stream: bool = ...,
        user: str | None = ..., callbacks: Sequence[Any] | None = ..., *, extra_headers: Mapping[str, str] | None = ...,
        extra_body: Mapping[str, Any] | None = ..., on_trace: Callable[[Trace], Any] | None = ...,
        incremental_tool_calls: bool = ...,
    ) -> LLMResult | LLMStream: ...

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
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        on_trace: Callable[[Trace], Any] | None = None,
        incremental_tool_calls: bool = False,
    ) -> LLMResult | LLMStream:
        """An :class:`LLMResult`, or (``stream=True``) an :class:`LLMStream` past its commit point
        (``incremental_tool_calls``: see :meth:`LargeLanguageModel.invoke`)."""
        route = route if isinstance(route, Route) else Route(route)
        # the inputs go to the model as given: its invoke validates them (typed errors) and copies them
        params = model_parameters if model_parameters is None or isinstance(model_parameters, Mapping) else None
        extras: dict[str, Any] = {}
        if extra_headers is not None:
            extras["extra_headers"] = extra_headers
        if extra_body is not None:
            extras["extra_body"] = extra_body
        if incremental_tool_calls:
            extras["incremental_tool_calls"] = True

        def tokens_for(target: Target) -> int:  # only asked when a limiter holds the config
            mt = params.get("max_tokens") if params else None
            budget = int(mt) if isinstance(mt, int) and not isinstance(mt, bool) else target.default_max_tokens
            return estimate_prompt_tokens(prompt_messages, tools) + budget

        if not stream:

            def op(llm: LargeLanguageModel, model: str, creds: Mapping[str, Any]) -> Awaitable[LLMResult]:
                return llm.invoke(model, creds, prompt_messages, model_parameters, tools, stop, user=user, callbacks=callbacks, stream=False, **extras)

            result: LLMResult = await self._serve(
                route, "llm", "chat", op, tokens_for, _total_tokens, on_trace, callbacks, params,
            )  # fmt: skip
            return result

        trace = Trace("chat")
        hooks = self._hooks(on_trace, callbacks)
        span = start_span("chat", route.target.provider, route.target.model, params)

        def open_stream(llm: LargeLanguageModel, model: str, creds: Mapping[str, Any]) -> Awaitable[LLMStream]:
            return llm.invoke(model, creds, prompt_messages, model_parameters, tools, stop, True, user, callbacks, **extras)

        async def attempt(target: Target, ts: _TargetState, cfg: CredentialConfig) -> LLMStream:
            return await self._open_committed(target, ts, cfg, trace, span, hooks, tokens_for, open_stream)

        try:
            committed: LLMStream = await self._run(route, "llm", attempt, trace)
        except BaseException as exc:
            await self._finish_error(trace, span, hooks, exc)
            raise
        return committed

    async def embed(
        self,
        route: Route | Target,
        texts: Sequence[str],
        user: str | None = None,
        input_type: EmbeddingInputType | None = None,
        *,
        on_trace: Callable[[Trace], Any] | None = None,
        **options: Any,
    ) -> TextEmbeddingResult:
        """A :class:`TextEmbeddingResult` for ``texts`` through the route (``options``: the model's
        ``max_concurrency``, ``on_progress``, ``extra_headers``, ``extra_body``)."""
        texts = list(texts)
        kwargs = dict(options)
        if input_type is not None:
            kwargs["input_type"] = input_type
        tokens = estimate_text_tokens(texts)

        def op(model_object: TextEmbeddingModel, model: str, creds: Mapping[str, Any]) -> Awaitable[TextEmbeddingResult]:
            return model_object.invoke(model, creds, texts, user, **kwargs)

        return await self.call(
            route, "text-embedding", op,
            operation="embeddings", tokens=tokens, used=lambda r: r.usage.total_tokens, on_trace=on_trace,
        )  # fmt: skip

    async def call(
        self,
        route: Route | Target,
        model_type: str,
        op: Op[T],
        *,
        operation: str | None = None,
        tokens: int = 0,
        used: Callable[[T], int | None] | None = None,
        on_trace: Callable[[Trace], Any] | None = None,
    ) -> T:
        """Any model type's call through the route: ``op(model_object, model, credentials)`` is one
        attempt on one config; ``tokens`` is what the limiter reserves, ``used(result)`` what it settles."""
        route = route if isinstance(route, Route) else Route(route)
        return await self._serve(route, model_type, operation or model_type, op, lambda _t: tokens, used, on_trace, None, None)

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
                    except Exception as exc:  # noqa: BLE001 - a status listing shows what failed
                        limit = {"error": type(exc).__name__}
                out.append(
                    ConfigStatus(
                        target=target.name, config_id=cid, healthy=not st.in_cooldown,
                        cooling_until=st.until, cooling_reason=st.reason, cooling_remaining=st.ttl,
                        in_flight=s.in_flight, requests=s.requests, failures=s.failures,
                        ewma_ttft=s.ewma_ttft, last_error=s.last_error, limit=limit,
                    )
                )  # fmt: skip
        return out

    # -- non-streamed calls ------------------------------------------------------------------

    async def _serve(
        self,
        route: Route,
        model_type: str,
        operation: str,
        op: Op[T],
        tokens_for: Callable[[Target], int],
        used: Callable[[T], int | None] | None,
        on_trace: Callable[[Trace], Any] | None,
        callbacks: Sequence[Any] | None,
        params: Mapping[str, Any] | None,
    ) -> T:
        trace = Trace(operation)
        hooks = self._hooks(on_trace, callbacks)
        span = start_span(operation, route.target.provider, route.target.model, params)

        async def attempt(target: Target, ts: _TargetState, cfg: CredentialConfig) -> T:
            return await self._guarded(ts, cfg, trace, tokens_for, op, used)

        try:
            result: T = await self._run(route, model_type, attempt, trace)
        except BaseException as exc:
            await self._finish_error(trace, span, hooks, exc)
            raise
        trace.outcome = "completed"
        if span is not None:
            usage = getattr(result, "usage", None)
            finish_span(
                span, trace, provider=trace.target.split("/", 1)[0] if trace.target else None,
                model=getattr(result, "model", None),
                input_tokens=getattr(usage, "prompt_tokens", getattr(usage, "tokens", None)),
                output_tokens=getattr(usage, "completion_tokens", None),
                finish_reason=getattr(result, "finish_reason", None),
            )  # fmt: skip
        for hook in hooks:
            await _call_hook(hook, trace)
        return result

    # -- the loop ------------------------------------------------------------------------------

    def _hooks(self, on_trace: Callable[[Trace], Any] | None, callbacks: Sequence[Any] | None) -> Sequence[Callable[[Trace], Any]]:
        if self.on_trace is None and on_trace is None and not callbacks:
            return ()
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
        key = (model_type, id(target))  # the identity check below guards a reused id
        ts = self._targets.get(key)
        if ts is None or ts.target is not target:
            if len(self._targets) > 4096:
                self._targets.clear()
            ts = _TargetState(self, target, model_type)
            self._targets[key] = ts
        return ts

    async def _run(self, route: Route, model_type: str, attempt: Callable[..., Awaitable[T]], trace: Trace) -> T:
        """The chain: the route's target, then each fallback whose triggers match the last error."""
        try:
            return await self._run_target(route.target, model_type, attempt, trace)
        except InvokeError as exc:
            last: InvokeError = exc
        chain = route.chain()
        cap = len(chain) if route.max_fallbacks is None else route.max_fallbacks
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

    async def _run_target(self, target: Target, model_type: str, attempt: Callable[..., Awaitable[T]], trace: Trace) -> T:
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
        retry_from: tuple[CredentialConfig, Any] | None = None
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
                        if policy.max_retries:
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
                exc.limit_exceeded = True  # type: ignore[attr-defined]
                last = exc  # type: ignore[assignment]
                trace.add("skip", name, cfg.id, reason="limit", detail=str(exc)[:200])
            except InvokeError as exc:
                last = exc
                await self._on_failure(ts, cfg, exc, trace)

    async def _pick(
        self, ts: _TargetState, exclude: set[str], trace: Trace, started: float, *, wait: bool
    ) -> CredentialConfig | None:
        ids = ts.ids
        if exclude and all(i in exclude for i in ids):
            return None
        while True:
            cid, cooling = await ts.strategy.pick(ts.ctx, ids, exclude)
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
            raise await self._cooling_error(ts, [i for i in ids if i not in exclude], soonest, trace)

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
            except Exception as err:  # noqa: BLE001 - observing is best effort
                logger.debug("limiter.observe failed: %s", err)
        if len(ts.ids) == 1 and not self.cooldowns.single_config:
            return
        seconds = self.cooldowns.for_error(exc)
        if seconds is not None:
            await self.state.lb_cooldown(ts.scope, cfg.id, seconds, f"{type(exc).__name__}: {redact(str(exc))}"[:200])
            trace.add("cooldown", ts.target.name, cfg.id, seconds=seconds, error=type(exc).__name__)

    # -- attempts ------------------------------------------------------------------------------

    async def _acquire(self, ts: _TargetState, cfg: CredentialConfig, tokens_for: Callable[[Target], int], trace: Trace) -> Any:
        """The limiter's permit for one attempt (the caller checked that the config has limits)."""
        tokens = tokens_for(ts.target)
        permit = await self.limiter.acquire(ts.limit_keys[cfg.id], cfg.limits, tokens, deadline=self.limit_wait)
        waited = getattr(permit, "waited", 0.0) or 0.0
        if waited > 0.001:
            trace.add("wait", ts.target.name, cfg.id, reason="limit", seconds=round(waited, 6))
            trace.waited += waited
        return permit

    @staticmethod
    async def _settle(permit: Any, tokens: int | None) -> None:
        try:
            if tokens is not None:
                await permit.settle(tokens)
        finally:
            await permit.release()

    async def _guarded(
        self, ts: _TargetState, cfg: CredentialConfig, trace: Trace, tokens_for: Callable[[Target], int],
        op: Op[T], used: Callable[[T], int | None] | None,
    ) -> T:  # fmt: skip
        """One non-streamed attempt: permit, in-flight count, EWMA latency, settle."""
        permit = await self._acquire(ts, cfg, tokens_for, trace) if cfg.limits is not None and self.limiter is not None else None
        model = ts.model_object(self.runtime)
        st = ts.stats[cfg.id]
        st.in_flight += 1
        st.requests += 1
        trace.attempts += 1
        detail = trace.add("attempt", ts.target.name, cfg.id).detail
        t0 = perf_counter()
        spent: int | None = 0
        try:
            result = await op(model, ts.target.model, cfg.credentials)
            st.sample(perf_counter() - t0, self._clock())
            if permit is not None:
                spent = used(result) if used is not None else None
            detail["outcome"] = "ok"
            return result
        except BaseException as exc:
            detail["outcome"] = type(exc).__name__
            detail.update(describe(exc))
            spent = 0 if isinstance(exc, InvokeError) and exc.status else None
            raise
        finally:
            st.in_flight -= 1
            detail["seconds"] = round(perf_counter() - t0, 6)
            if permit is not None:
                await self._settle(permit, spent)

    async def _open_committed(
        self, target: Target, ts: _TargetState, cfg: CredentialConfig, trace: Trace, span: Any,
        hooks: Sequence[Callable[[Trace], Any]], tokens_for: Callable[[Target], int], op: Op[LLMStream],
    ) -> LLMStream:  # fmt: skip
        """Open a stream and read up to its first content or tool-call delta (the commit point)."""
        permit = await self._acquire(ts, cfg, tokens_for, trace) if cfg.limits is not None and self.limiter is not None else None
        st = ts.stats[cfg.id]
        st.in_flight += 1
        st.requests += 1
        trace.attempts += 1
        detail = trace.add("attempt", target.name, cfg.id, stream=True).detail
        t0 = perf_counter()
        stream: LLMStream | None = None
        timeout = self.first_chunk_timeout
        try:
            llm = ts.model_object(self.runtime)
            if timeout is None:
                stream = await op(llm, target.model, cfg.credentials)
                await stream.commit()
            else:
                try:
                    async with _deadline(timeout):
                        stream = await op(llm, target.model, cfg.credentials)
                        await stream.commit()
                except TimeoutError as exc:
                    if isinstance(exc, InvokeError):
                        raise
                    raise InvokeTimeoutError(
                        f"[{target.provider}] Timeout Error: no output within {timeout} s",
                        provider=target.provider, model=target.model,
                    ) from exc
        except BaseException as exc:
            st.in_flight -= 1
            detail["outcome"] = type(exc).__name__
            detail.update(describe(exc))
            detail["seconds"] = round(perf_counter() - t0, 6)
            if stream is not None:
                try:
                    await stream.aclose()
                except Exception:  # noqa: BLE001 - the failure being handled is the one to raise
                    pass
            if permit is not None:
                await self._settle(permit, 0 if isinstance(exc, InvokeError) else None)
            raise
        ttft = perf_counter() - t0
        st.sample(ttft, self._clock())
        detail["outcome"] = "committed"
        detail["ttft"] = round(ttft, 6)
        trace.add("commit", target.name, cfg.id)
        stream.trace, stream.target, stream.config_id = trace, target.name, cfg.id
        stream.on_error(_after_commit(trace))
        stream.on_finish(self._stream_finalizer(target, st, cfg, permit, trace, span, hooks))
        return stream

    def _stream_finalizer(
        self, target: Target, st: ConfigStats, cfg: CredentialConfig, permit: Any, trace: Trace, span: Any,
        hooks: Sequence[Callable[[Trace], Any]],
    ) -> Callable[[StreamView, StreamOutcome, BaseException | None], Awaitable[None]]:  # fmt: skip
        """What a committed stream runs when it ends: settle the permit, the stats, the trace and span."""

        async def finish(view: StreamView, outcome: StreamOutcome, error: BaseException | None) -> None:
            st.in_flight -= 1
            # the usage (an estimate for a stream that did not complete: a local token count) only
            # when something takes it: the permit's settlement or the span
            usage = None
            if permit is not None or span is not None:
                usage = view.usage if outcome == "completed" and view.usage is not None else view.partial_usage()
            try:
                if permit is not None:
                    assert usage is not None
                    await self._settle(permit, usage.total_tokens)
            finally:
                trace.outcome = "interrupted" if outcome == "error" else outcome
                if error is not None:
                    st.failures += 1
                    st.last_error = type(error).__name__
                    trace.error = type(error).__name__
                    trace.add("error", target.name, cfg.id, delivered=view.delivered, **describe(error))
                else:
                    trace.add(outcome, target.name, cfg.id, delivered=view.delivered)
                if span is not None and usage is not None:
                    finish_span(span, trace, provider=target.provider, model=target.model,
                                input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                                finish_reason=view.finish_reason, error=error)  # fmt: skip
                for hook in hooks:
                    await _call_hook(hook, trace)

        return finish

    async def _finish_error(self, trace: Trace, span: Any, hooks: Sequence[Callable[[Trace], Any]], exc: BaseException) -> None:
        trace.outcome = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
        trace.error = type(exc).__name__
        trace.add("error", trace.target, trace.config, **describe(exc))
        if isinstance(exc, InvokeError):
            exc.trace = trace
        finish_span(span, trace, error=exc)
        for hook in hooks:
            await _call_hook(hook, trace)


def _total_tokens(result: LLMResult) -> int:
    return result.usage.total_tokens


def _after_commit(trace: Trace) -> Callable[[InvokeError, StreamView], None]:
    def decorate(error: InvokeError, view: StreamView) -> None:
        error.after_commit = True
        error.partial_usage = view.partial_usage()
        error.delivered_chunks = view.delivered
        error.trace = trace

    return decorate
