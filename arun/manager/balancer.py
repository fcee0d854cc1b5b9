"""Round-robin load balancing over credential configs, with cooldowns.

Dify's ``LBModelManager`` semantics (DIFY_RUNTIME.md §7) for the same inputs:

* active only with **more than one** enabled config;
* ``fetch_next``: one atomic :meth:`StateStore.lb_pick` (shared counter, wrap
  at 1e7, TTL 3600, configs in cooldown skipped, None after N cooldown hits);
* ``invoke``: :class:`InvokeRateLimitError` cools the config 60 s,
  :class:`InvokeAuthorizationError` / :class:`InvokeConnectionError` 10 s, and
  the next config is tried; any other error is raised at once, uncooled;
  when every config cools the last error is raised, or
  :class:`NoAvailableCredentialsError` if there was none.

Beyond Dify:

* an error's ``retry_after`` longer than the default cooldown extends it, and
  a running cooldown is never shortened;
* ``wait_deadline``: when every config cools, wait for the earliest recovery
  if it comes within that many seconds of the call's start, instead of failing;
* :meth:`LoadBalancer.states` tells operators who cools, until when and why;
* :meth:`LoadBalancer.invoke_stream` rotates on errors raised while opening a
  stream or before its first item; after the first item errors propagate
  (as Dify: no mid-stream failover, no cooldown).

``__inherit__`` (the provider's own credentials) is resolved by the caller,
which passes the final list of :class:`LBConfig`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence, TypeVar

from arun.errors import (
    InvokeAuthorizationError,
    InvokeConnectionError,
    InvokeError,
    InvokeRateLimitError,
)
from arun.redact import redact
from arun.state.base import ConfigState, StateStore, lb_scope

__all__ = ["LBConfig", "LoadBalancer", "NoAvailableCredentialsError"]

T = TypeVar("T")

RATE_LIMIT_COOLDOWN = 60.0
AUTH_COOLDOWN = 10.0
CONNECTION_COOLDOWN = 10.0


class NoAvailableCredentialsError(ValueError):
    """Every config cools and no invocation error was seen (Dify's ProviderTokenNotInitError)."""

    def __init__(self, message: str = "Model credentials is not initialized.") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class LBConfig:
    """One credential config.  Credentials never appear in the repr."""

    id: str
    name: str
    credentials: Mapping[str, Any] = field(repr=False)
    enabled: bool = True


class LoadBalancer:
    """Balance one (tenant, provider, model_type, model) over its configs."""

    def __init__(
        self,
        store: StateStore,
        configs: Sequence[LBConfig],
        *,
        tenant_id: str,
        provider: str,
        model_type: Any,
        model: str,
        wait_deadline: float | None = None,
        rate_limit_cooldown: float = RATE_LIMIT_COOLDOWN,
        auth_cooldown: float = AUTH_COOLDOWN,
        connection_cooldown: float = CONNECTION_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._store = store
        enabled = [c for c in configs if c.enabled]
        #: The balanced configs; empty when balancing is off (0 or 1 enabled).
        self.configs: list[LBConfig] = enabled if len(enabled) > 1 else []
        self._single = enabled[0] if len(enabled) == 1 else None
        self._by_id = {c.id: c for c in self.configs}
        self._ids = [c.id for c in self.configs]
        self.scope = lb_scope(tenant_id, provider, model_type, model)
        self.wait_deadline = wait_deadline
        self.rate_limit_cooldown = rate_limit_cooldown
        self.auth_cooldown = auth_cooldown
        self.connection_cooldown = connection_cooldown
        self._clock = clock
        self._sleep = sleep

    @property
    def active(self) -> bool:
        return bool(self.configs)

    async def fetch_next(self) -> LBConfig | None:
        """The next config by round robin, or None when all cool (Dify's ``fetch_next``)."""
        cid, _ = await self._store.lb_pick(self.scope, self._ids)
        return None if cid is None else self._by_id[cid]

    async def cooldown(self, config: LBConfig, seconds: float, reason: str = "") -> None:
        await self._store.lb_cooldown(self.scope, config.id, seconds, reason)

    async def states(self) -> list[ConfigState]:
        """Per config: in cooldown?, remaining seconds, until (wall clock), why."""
        raw = await self._store.lb_state(self.scope, self._ids)
        return [replace(s, name=self._by_id[s.config_id].name) for s in raw]

    def _cooldown_for(self, exc: BaseException) -> float | None:
        if isinstance(exc, InvokeRateLimitError):
            base = self.rate_limit_cooldown
        elif isinstance(exc, InvokeAuthorizationError):
            base = self.auth_cooldown
        elif isinstance(exc, InvokeConnectionError):
            base = self.connection_cooldown
        else:
            return None
        ra = getattr(exc, "retry_after", None)
        if ra is not None and ra > base:
            return float(ra)
        return base

    async def _next_or_wait(self, started: float, last: BaseException | None) -> LBConfig:
        """Pick a config; when all cool, wait within the deadline or raise."""
        while True:
            cid, hits = await self._store.lb_pick(self.scope, self._ids)
            if cid is not None:
                return self._by_id[cid]
            if self.wait_deadline is not None and hits:
                wait = min(ttl for _, ttl in hits)
                if self._clock() + wait <= started + self.wait_deadline:
                    await self._sleep(wait + 0.001)
                    continue
            if last is not None:
                raise last
            raise NoAvailableCredentialsError()

    async def _on_error(self, cfg: LBConfig, exc: BaseException) -> bool:
        """Cool the config if the error calls for it; False means re-raise."""
        seconds = self._cooldown_for(exc)
        if seconds is None:
            return False
        await self.cooldown(cfg, seconds, _reason(exc))
        return True

    async def invoke(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, credentials=<config credentials>, **kwargs)`` with failover.

        When balancing is off, ``fn`` is called once; the single enabled
        config's credentials are supplied unless ``credentials`` was passed.
        """
        if not self.configs:
            if self._single is not None:
                kwargs.setdefault("credentials", self._single.credentials)
            return await fn(*args, **kwargs)
        started = self._clock()
        last: BaseException | None = None
        while True:
            cfg = await self._next_or_wait(started, last)
            kwargs["credentials"] = cfg.credentials
            try:
                return await fn(*args, **kwargs)
            except InvokeError as exc:
                if not await self._on_error(cfg, exc):
                    raise
                last = exc

    async def invoke_stream(
        self,
        open_stream: Callable[[Mapping[str, Any]], Awaitable[AsyncIterator[T]]],
        credentials: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[T]:
        """Yield the items of ``await open_stream(credentials)``, failing over before the first.

        Errors while opening the stream or before its first item rotate like
        :meth:`invoke`; after the first item they propagate unchanged.  The
        underlying iterator is closed when this generator is closed.
        """
        if not self.configs:
            creds = credentials if credentials is not None else (self._single.credentials if self._single else {})
            only = await open_stream(creds)
            try:
                async for item in only:
                    yield item
            finally:
                await _aclose(only)
            return
        started = self._clock()
        last: BaseException | None = None
        while True:
            cfg = await self._next_or_wait(started, last)
            stream: Any = None
            it: Any = None
            try:
                stream = await open_stream(cfg.credentials)
                it = stream.__aiter__()
                first = await it.__anext__()
            except StopAsyncIteration:
                await _aclose(stream, it)
                return
            except InvokeError as exc:
                await _aclose(stream, it)
                if not await self._on_error(cfg, exc):
                    raise
                last = exc
                continue
            except BaseException:
                await _aclose(stream, it)
                raise
            break
        try:
            yield first
            async for item in it:
                yield item
        finally:
            await _aclose(stream, it)

    def __repr__(self) -> str:
        return f"LoadBalancer(scope={self.scope!r}, configs={[c.name for c in self.configs]!r})"


async def _aclose(stream: Any, it: Any = None) -> None:
    for obj in (it, stream) if it is not stream else (stream,):
        close = getattr(obj, "aclose", None)
        if close is not None:
            await close()


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {redact(str(exc))}"
    return text[:200]
