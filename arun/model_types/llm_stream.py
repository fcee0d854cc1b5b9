"""``LLMStream``: the async iterator (and async context manager) a streamed invoke returns.

Per chunk it only appends the content piece, remembers usage and tool calls and
fires callbacks when there are any.  An upstream failure during iteration is
raised as an ``Invoke*Error``; leaving the ``async with`` block (or ``aclose()``)
closes the provider's generator, which releases the connection at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from arun.callbacks import Callback, fire
from arun.entities.llm import LLMResult, LLMResultChunk, LLMUsage
from arun.entities.messages import AssistantPromptMessage, PromptMessage, ToolCall

if TYPE_CHECKING:
    from arun.model_types.llm import LargeLanguageModel

__all__ = ["LLMStream"]


class LLMStream:
    __slots__ = (
        "_llm",
        "_agen",
        "_next",
        "_batch",
        "_buffer",
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
        # a source that hands out a network read's worth of chunks at a time (AssembledStream)
        # is drained from a local buffer: one await per read instead of one per chunk
        self._batch = getattr(agen, "read_batch", None)
        self._next = agen.__anext__
        self._buffer: list[LLMResultChunk] = []
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

    def __aiter__(self) -> LLMStream:
        return self

    async def __anext__(self) -> LLMResultChunk:
        buffer = self._buffer
        # the buffer is empty once the stream is done (aclose and failures clear it)
        chunk = buffer.pop() if buffer else await self._refill()
        delta = chunk.delta
        message = delta.message
        content = message.content
        if content.__class__ is str:
            self._parts.append(content)  # type: ignore[arg-type,unused-ignore]
        if message.tool_calls or delta.finish_reason is not None or delta.usage is not None:
            self._terminal(chunk)
        if self._hooks:
            await fire(self._hooks, "on_new_chunk", chunk=chunk, **self._call)  # type: ignore[arg-type]
        return chunk

    async def _refill(self) -> LLMResultChunk:
        """The next chunk when the buffer is empty: one network read's worth, or the end."""
        if self._done:
            raise StopAsyncIteration
        buffer = self._buffer
        try:
            if self._batch is not None:
                while not buffer:
                    batch = await self._batch()
                    if not batch:
                        if self._agen.finished:  # type: ignore[attr-defined]
                            batch = await self._batch()  # raises a held-back failure, if any
                            if not batch:
                                raise StopAsyncIteration
                        continue
                    batch.reverse()
                    buffer.extend(batch)
                chunk = buffer.pop()
            else:
                chunk = await self._next()
        except StopAsyncIteration:
            self._done = True
            if self._hooks:
                await fire(self._hooks, "on_after_invoke", result=self.result(), **self._call)  # type: ignore[arg-type]
            raise
        except Exception as exc:
            self._done = True
            buffer.clear()
            await self._close_quietly()
            error = self._llm._transform_invoke_error(exc, self.model)
            if self._hooks:
                await fire(self._hooks, "on_invoke_error", ex=error, **self._call)  # type: ignore[arg-type]
            if error is exc:
                raise
            raise error from exc
        if self._first is None:
            self._first = perf_counter()
        return chunk

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
        self._done = True
        self._buffer.clear()
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> LLMStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
