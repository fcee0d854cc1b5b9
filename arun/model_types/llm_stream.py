"""``LLMStream``: the one stream type every layer returns for ``invoke(stream=True)``.

The runtime builds it; the policy router commits it (reads ahead to the first content or
tool-call delta, so earlier failures can be retried) and adds its bookkeeping as finalizers
and error decorators; the manager adds its quota settlement the same way.  So the model,
the router and the manager all hand out the same object with the same typed surface:
``async for``, ``async with``, :meth:`collect`, :meth:`result`, :attr:`usage`,
:meth:`partial_usage`, :attr:`trace`.

Per chunk it only appends the content piece, remembers usage and tool calls and fires
callbacks when there are any.  An upstream failure during iteration is raised as its typed
``Invoke*Error``; leaving the ``async with`` block (or ``aclose()``) closes the provider's
stream, which releases the connection at once.  The iterating generator does not refer back
to the stream object, so a stream dropped without closing is finalized (connection released,
finalizers run) as soon as its last reference goes, not when the garbage collector runs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from arun.callbacks import Callback, fire
from arun.entities.llm import LLMResult, LLMResultChunk, LLMUsage
from arun.entities.messages import AssistantPromptMessage, PromptMessage, ToolCall, ToolCallDelta, ToolCallFunction
from arun.errors import InvokeError
from arun.wire.stream import AssembledStream

if TYPE_CHECKING:
    from arun.model_types.llm import LargeLanguageModel

__all__ = ["LLMStream", "StreamOutcome", "StreamView", "Finalizer"]

#: how a stream ended: read to its end, ended by a failure, or left early (break, cancel, aclose, dropped)
StreamOutcome = Literal["completed", "error", "cancelled"]
#: run once when the stream ends: ``(view, outcome, error)``
Finalizer = Callable[["StreamView", StreamOutcome, "BaseException | None"], Awaitable[None]]

_DROPPED: set[asyncio.Task[None]] = set()


class _State:
    """What the iterating generator and the stream share (the generator holds this, not the stream)."""

    __slots__ = (
        "llm", "source", "model", "messages", "started", "first", "hooks", "call", "parts", "tool_calls", "usage",
        "finish_reason", "fingerprint", "done", "delivered", "replay", "finalizers", "decorators", "error",
        "outcome", "finalized", "iterating", "call_credentials",
    )  # fmt: skip

    def __init__(
        self, llm: LargeLanguageModel, source: AsyncIterator[LLMResultChunk], model: str,
        messages: list[PromptMessage], started: float, hooks: list[Callback], call: dict[str, Any] | None,
    ) -> None:  # fmt: skip
        self.llm = llm
        self.source = source
        self.model = model
        self.messages = messages
        self.started = started
        self.first: float | None = None
        self.hooks = hooks
        self.call = call
        self.parts: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.usage: LLMUsage | None = None
        self.finish_reason: str | None = None
        self.fingerprint: str | None = None
        self.done = False
        self.delivered = 0
        self.replay: list[LLMResultChunk] = []
        self.finalizers: list[Finalizer] = []
        self.decorators: list[Callable[[InvokeError, StreamView], None]] = []
        self.error: BaseException | None = None
        self.outcome: StreamOutcome | None = None
        self.finalized = False
        self.iterating = False  # the generator has started (the loop's async-generator hook finalizes it)
        self.call_credentials: Any = None  # the call's credentials: their secret values are masked in errors

    def note(self, chunk: LLMResultChunk) -> None:
        """Bookkeeping for the rare chunks that carry tool calls, a finish reason or usage."""
        delta = chunk.delta
        if delta.message.tool_calls:
            self.tool_calls.extend(delta.message.tool_calls)
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if chunk.system_fingerprint is not None:
            self.fingerprint = chunk.system_fingerprint
        usage = delta.usage
        if usage is not None:
            now = perf_counter()
            first = self.first if self.first is not None else now
            usage.latency = round(now - self.started, 6)
            usage.time_to_first_token = round(first - self.started, 6)
            usage.time_to_generate = round(now - first, 6)
            self.usage = usage

    async def read(self) -> list[LLMResultChunk] | None:
        """The next chunks: a network read's worth from an :class:`AssembledStream` (one await per
        read, not per chunk), one chunk from any other source; None at the end."""
        if self.done:
            return None
        source = self.source
        try:
            if source.__class__ is AssembledStream:
                batch = await source.next_batch()
            else:
                batch = [await source.__anext__()]
        except StopAsyncIteration:
            self.done = True
            self.outcome = "completed"
            if self.hooks:
                await fire(self.hooks, "on_after_invoke", result=self.result(), **self.call)  # type: ignore[arg-type]
            return None
        except Exception as exc:
            self.done = True
            await self.close_source()
            error = self.llm._transform_invoke_error(exc, self.model, self.call_credentials)
            if self.decorators:
                view = StreamView(self)
                for decorate in self.decorators:
                    decorate(error, view)
            self.error, self.outcome = error, "error"
            if self.hooks:
                await fire(self.hooks, "on_invoke_error", ex=error, **self.call)  # type: ignore[arg-type]
            if error is exc:
                raise
            raise error from exc
        if self.first is None:
            self.first = perf_counter()
        return batch

    async def close_source(self) -> None:
        aclose = getattr(self.source, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - the original failure is what the caller must see
                pass

    async def finalize(self) -> None:
        if self.finalized:
            return
        self.finalized = True
        if self.outcome is None:
            self.outcome = "cancelled"
        outcome: StreamOutcome = self.outcome
        view = StreamView(self)
        for finalizer in self.finalizers:
            try:
                await finalizer(view, outcome, self.error)
            except Exception:  # a finalizer's failure must not hide the stream's outcome
                logging.getLogger("arun.model").warning("stream finalizer failed", exc_info=True)

    async def drop(self) -> None:
        """The stream object went away unclosed: release the connection, run the finalizers."""
        if not self.done:
            self.done = True
            await self.close_source()
        await self.finalize()

    def result(self) -> LLMResult:
        return LLMResult(
            model=self.model,
            prompt_messages=self.messages,
            message=AssistantPromptMessage(content="".join(self.parts), tool_calls=_assembled(self.tool_calls)),
            usage=self.usage or LLMUsage.empty_usage(),
            system_fingerprint=self.fingerprint,
            finish_reason=self.finish_reason,
        )


def _assembled(calls: list[ToolCall]) -> list[ToolCall]:
    """The tool calls received: incremental fragments (:class:`ToolCallDelta`) merged by index."""
    if not any(c.__class__ is ToolCallDelta for c in calls):
        return list(calls)
    merged: dict[int, list[str]] = {}  # index -> [id, type, name, arguments...]
    for c in calls:
        i = c.index if isinstance(c, ToolCallDelta) else len(merged)
        parts = merged.get(i)
        if parts is None:
            parts = merged[i] = [c.id, c.type or "function", c.function.name]
        else:
            parts[0] = parts[0] or c.id
            parts[2] += c.function.name
        parts.append(c.function.arguments)
    return [ToolCall(p[0] or f"call_{i}", ToolCallFunction(p[2], "".join(p[3:])), p[1]) for i, p in sorted(merged.items())]


async def _chunks(st: _State) -> AsyncGenerator[LLMResultChunk, None]:
    """The iteration: replayed chunks (read ahead by :meth:`LLMStream.commit`), then the source's."""
    parts = st.parts
    hooks = st.hooks
    st.iterating = True
    # chunks handed out, counted in a local and published before each read and at the end
    # (everything that reads ``delivered`` runs there: error decorators, finalizers)
    delivered = st.delivered
    try:
        while True:
            if st.replay:
                batch, st.replay = st.replay, []
                for chunk in batch:  # noted when they were read ahead
                    delivered += 1
                    if hooks:
                        await fire(hooks, "on_new_chunk", chunk=chunk, **st.call)  # type: ignore[arg-type]
                    yield chunk
                continue
            st.delivered = delivered
            batch = await st.read()  # type: ignore[assignment]
            if batch is None:
                return
            for chunk in batch:
                delta = chunk.delta
                message = delta.message
                content = message.content
                if content.__class__ is str:
                    parts.append(content)  # type: ignore[arg-type,unused-ignore]
                if message.tool_calls or delta.finish_reason is not None or delta.usage is not None:
                    st.note(chunk)
                delivered += 1
                if hooks:
                    await fire(hooks, "on_new_chunk", chunk=chunk, **st.call)  # type: ignore[arg-type]
                yield chunk
    finally:
        st.delivered = delivered
        if not st.done:  # left early: the consumer stopped, was cancelled or dropped the stream
            st.done = True
            await st.close_source()
        await st.finalize()


class StreamView:
    """What a finalizer sees of the stream that ended (the stream object itself may be gone)."""

    __slots__ = ("_s",)

    def __init__(self, st: _State) -> None:
        self._s = st

    @property
    def delivered(self) -> int:
        return self._s.delivered

    @property
    def finish_reason(self) -> str | None:
        return self._s.finish_reason

    @property
    def usage(self) -> LLMUsage | None:
        return self._s.usage

    def partial_usage(self) -> LLMUsage:
        return _partial_usage(self._s)

    def result(self) -> LLMResult:
        return self._s.result()


def _partial_usage(st: _State) -> LLMUsage:
    if st.usage is not None:
        return st.usage
    source = st.source
    assembler = source.assembler if isinstance(source, AssembledStream) else None
    estimate = getattr(assembler, "partial_usage", None)
    if estimate is not None:
        try:
            usage: LLMUsage = estimate("".join(st.parts))
            return usage
        except Exception:  # noqa: BLE001 - an estimate is best effort: fall back to counting chunks
            pass
    usage = LLMUsage.empty_usage()
    usage.completion_tokens = sum(1 for p in st.parts if p) + len(st.tool_calls)
    usage.total_tokens = usage.completion_tokens
    return usage


class LLMStream:
    """An async iterator of :class:`LLMResultChunk` and an async context manager; ends once:
    completed, or with one typed error."""

    __slots__ = ("_s", "_gen", "model", "prompt_messages", "trace", "target", "config_id")

    def __init__(
        self,
        llm: LargeLanguageModel,
        agen: AsyncIterator[LLMResultChunk],
        model: str,
        prompt_messages: list[PromptMessage],
        started: float,
        hooks: list[Callback],
        call: dict[str, Any] | None,
        credentials: Any = None,
    ) -> None:
        self._s = _State(llm, agen, model, prompt_messages, started, hooks, call)
        self._s.call_credentials = credentials
        self.model = model
        self.prompt_messages = prompt_messages
        #: the policy layer's decision trace (:class:`arun.policy.trace.Trace`), when it routed the call
        self.trace: Any = None
        #: who answers, when the policy layer routed the call: ``provider/model`` and the config id
        self.target: str | None = None
        self.config_id: str | None = None
        # `async for` steps through this generator directly: one frame resumed per chunk, no
        # coroutine per chunk; it holds the shared state, never this object (no reference cycle)
        self._gen = _chunks(self._s)

    def __aiter__(self) -> AsyncIterator[LLMResultChunk]:
        return self._gen

    def __anext__(self) -> Awaitable[LLMResultChunk]:
        return self._gen.__anext__()

    # -- what the layers above add -------------------------------------------------------------

    def on_finish(self, finalizer: Finalizer) -> None:
        """Run ``finalizer(stream, outcome, error)`` once, when the stream ends (any way)."""
        self._s.finalizers.append(finalizer)

    def on_error(self, decorate: Callable[[InvokeError, StreamView], None]) -> None:
        """Let ``decorate(error, view)`` add context to a failure during iteration before it is raised."""
        self._s.decorators.append(decorate)

    async def commit(self) -> bool:
        """Read ahead to the first content or tool-call delta (the commit point); the chunks read
        are handed out first.  False when the stream completed without any output."""
        st = self._s
        while True:
            batch = await st.read()
            if batch is None:
                return False
            has_output = False
            for chunk in batch:
                message = chunk.delta.message
                content = message.content
                if content.__class__ is str:
                    st.parts.append(content)  # type: ignore[arg-type,unused-ignore]
                st.note(chunk)
                if content or message.tool_calls:
                    has_output = True
            st.replay.extend(batch)
            if has_output:
                return True

    # -- what was received ---------------------------------------------------------------------

    @property
    def usage(self) -> LLMUsage | None:
        """The usage the provider reported (normally on the final chunk)."""
        return self._s.usage

    @property
    def done(self) -> bool:
        return self._s.done

    @property
    def delivered(self) -> int:
        """Chunks handed to the consumer (brought up to date at each network read and when the
        stream ends, which is where finalizers and error decorators read it)."""
        return self._s.delivered

    @property
    def outcome(self) -> StreamOutcome | None:
        """``completed`` | ``error`` | ``cancelled`` once the stream ended, else None."""
        return self._s.outcome

    def partial_usage(self) -> LLMUsage:
        """The usage reported, else an estimate of what was delivered: the prompt and the delivered
        text counted locally (the family's counter), so an abandoned stream is charged what it used."""
        return _partial_usage(self._s)

    def result(self) -> LLMResult:
        """What was received so far, assembled: content, tool calls, usage, finish reason."""
        return self._s.result()

    async def collect(self) -> LLMResult:
        """Consume the rest of the stream and return the assembled result."""
        async with self:
            async for _ in self:
                pass
        return self.result()

    async def aclose(self) -> None:
        st = self._s
        await self._gen.aclose()  # runs its cleanup when it was left in the middle
        if not st.done:
            st.done = True
            await st.close_source()
        await st.finalize()  # a generator never started runs no finally

    async def __aenter__(self) -> LLMStream:
        return self

    def __del__(self) -> None:
        # Dropped without closing.  A started generator is finalized by the event loop's
        # async-generator hook (its ``finally`` closes the source and runs the finalizers);
        # one never started (read ahead by commit(), or not at all) is finalized here, at once.
        st = self._s
        if st.finalized or st.iterating or (st.done and not st.finalizers):
            return
        if sys.getrefcount(self._gen) > 2:
            # someone iterates the generator (``async for`` over a temporary stream): it is theirs now;
            # once it starts, the loop's async-generator hook finalizes it when it is dropped
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (interpreter shutdown): the connection goes with the objects
            return
        task = loop.create_task(st.drop())
        _DROPPED.add(task)
        task.add_done_callback(_DROPPED.discard)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
