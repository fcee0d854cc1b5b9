"""``LLMStream``: the async iterator (and async context manager) a streamed invoke returns.

Per chunk it only appends the content piece, remembers usage and tool calls and
fires callbacks when there are any.  An upstream failure during iteration is
raised as an ``Invoke*Error``; leaving the ``async with`` block (or ``aclose()``)
closes the provider's generator, which releases the connection at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from arun.callbacks import Callback, fire
from arun.entities.llm import LLMResult, LLMResultChunk, LLMUsage
from arun.entities.messages import AssistantPromptMessage, PromptMessage, ToolCall
from arun.wire.stream import AssembledStream

if TYPE_CHECKING:
    from arun.model_types.llm import LargeLanguageModel

__all__ = ["LLMStream"]


class LLMStream:
    __slots__ = (
        "_llm",
        "_agen",
        "_gen",
        "model",
        "prompt_messages",
        "_started",
        "_first",
        "_hooks",
        "_call",
        "_parts",
        "_tool_calls",
        "_usage",
        "_finish_reason",
        "_fingerprint",
        "_done",
    )

    def __init__(
        self,
        llm: LargeLanguageModel,
        agen: AsyncIterator[LLMResultChunk],
        model: str,
        prompt_messages: list[PromptMessage],
        started: float,
        hooks: list[Callback],
        call: dict[str, Any] | None,
    ) -> None:
        self._llm = llm
        self._agen = agen
        self.model = model
        self.prompt_messages = prompt_messages
        self._started = started
        self._first: float | None = None
        self._hooks = hooks
        self._call = call
        self._parts: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._usage: LLMUsage | None = None
        self._finish_reason: str | None = None
        self._fingerprint: str | None = None
        self._done = False
        # `async for` steps through this generator directly: one frame resumed per chunk,
        # no coroutine created per chunk
        self._gen = self._chunks()

    def __aiter__(self) -> AsyncIterator[LLMResultChunk]:
        return self._gen

    def __anext__(self) -> Awaitable[LLMResultChunk]:
        return self._gen.__anext__()

    async def _chunks(self) -> AsyncGenerator[LLMResultChunk, None]:
        parts = self._parts
        hooks = self._hooks
        try:
            while True:
                batch = await self._read()
                if batch is None:
                    return
                for chunk in batch:
                    delta = chunk.delta
                    message = delta.message
                    content = message.content
                    if content.__class__ is str:
                        parts.append(content)  # type: ignore[arg-type,unused-ignore]
                    if message.tool_calls or delta.finish_reason is not None or delta.usage is not None:
                        self._terminal(chunk)
                    if hooks:
                        await fire(hooks, "on_new_chunk", chunk=chunk, **self._call)  # type: ignore[arg-type]
                    yield chunk
        finally:
            if not self._done:  # left early: the consumer stopped, was cancelled or closed the stream
                self._done = True
                await self._close_quietly()

    async def _read(self) -> list[LLMResultChunk] | None:
        """The next chunks: a network read's worth from an :class:`AssembledStream` (one await per
        read, not per chunk), one chunk from any other source; None at the end."""
        if self._done:
            return None
        source = self._agen
        try:
            if source.__class__ is AssembledStream:
                batch = await source.next_batch()
            else:
                batch = [await source.__anext__()]
        except StopAsyncIteration:
            self._done = True
            if self._hooks:
                await fire(self._hooks, "on_after_invoke", result=self.result(), **self._call)  # type: ignore[arg-type]
            return None
        except Exception as exc:
            self._done = True
            await self._close_quietly()
            error = self._llm._transform_invoke_error(exc, self.model)
            if self._hooks:
                await fire(self._hooks, "on_invoke_error", ex=error, **self._call)  # type: ignore[arg-type]
            if error is exc:
                raise
            raise error from exc
        if self._first is None:
            self._first = perf_counter()
        return batch

    def _terminal(self, chunk: LLMResultChunk) -> None:
        """Bookkeeping for the rare chunks that carry tool calls, a finish reason or usage."""
        delta = chunk.delta
        if delta.message.tool_calls:
            self._tool_calls.extend(delta.message.tool_calls)
        if delta.finish_reason is not None:
            self._finish_reason = delta.finish_reason
        if chunk.system_fingerprint is not None:
            self._fingerprint = chunk.system_fingerprint
        usage = delta.usage
        if usage is not None:
            now = perf_counter()
            first = self._first if self._first is not None else now
            usage.latency = round(now - self._started, 6)
            usage.time_to_first_token = round(first - self._started, 6)
            usage.time_to_generate = round(now - first, 6)
            self._usage = usage

    @property
    def usage(self) -> LLMUsage | None:
        """The last usage seen (normally on the final chunk)."""
        return self._usage

    @property
    def done(self) -> bool:
        return self._done

    def result(self) -> LLMResult:
        """What was received so far, assembled: content, tool calls, usage, finish reason."""
        return LLMResult(
            model=self.model,
            prompt_messages=self.prompt_messages,
            message=AssistantPromptMessage(content="".join(self._parts), tool_calls=list(self._tool_calls)),
            usage=self._usage or LLMUsage.empty_usage(),
            system_fingerprint=self._fingerprint,
            finish_reason=self._finish_reason,
        )

    async def collect(self) -> LLMResult:
        """Consume the rest of the stream and return the assembled result."""
        async with self:
            async for _ in self:
                pass
        return self.result()

    async def _close_quietly(self) -> None:
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # the original failure is what the caller must see
                pass

    async def aclose(self) -> None:
        await self._gen.aclose()  # runs its cleanup when it was left in the middle
        self._done = True
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> LLMStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
