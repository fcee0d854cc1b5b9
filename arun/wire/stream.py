"""The one read loop every streaming LLM family shares.

Bytes from the runtime's :class:`~arun.wire.client.StreamResponse` go through an
incremental decoder (SSE or NDJSON) into the family's assembler; content chunks
come out as they arrive, the terminal chunk (finish reason, tool calls, usage)
last, after the connection went back to the pool.  The assembler's
``final_chunk()`` raises ``InvokeStreamInterruptedError`` when the body ended
before the protocol's terminal event.

:class:`AssembledStream` hands chunks out a network read at a time
(:meth:`~AssembledStream.next_batch`), which is what :class:`~arun.LLMStream`
consumes: one await per read instead of one generator resume per chunk.  It is
also a plain async iterator for any other consumer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from arun.entities.llm import LLMResultChunk
from arun.errors import InvokeError
from arun.wire.client import StreamResponse

__all__ = ["Assembler", "Decoder", "AssembledStream", "assemble_stream"]

#: ``feed_into(items, out)``: the assembler appends the chunks of a network read's decoded items to ``out``
FeedInto = Callable[[list[Any], list[LLMResultChunk]], None]


class Decoder(Protocol):
    def feed(self, chunk: bytes) -> list[Any]: ...

    def close(self) -> list[Any]: ...


class Assembler(Protocol):
    done: bool  # the protocol's terminal event was seen

    def final_chunk(self) -> LLMResultChunk: ...

    # optional: ``partial_usage(text) -> LLMUsage``, the usage of an answer cut or abandoned
    # after ``text`` (what the upstream reported so far, the rest counted locally)


class AssembledStream:
    """Decoded, assembled chunks of one streaming response; closes the response on any exit."""

    __slots__ = ("_resp", "_decoder", "_asm", "_feed", "_feed_tail", "_finished", "_pending", "_error")

    def __init__(self, resp: StreamResponse, decoder: Decoder, asm: Assembler, feed: FeedInto, feed_tail: FeedInto) -> None:
        self._resp = resp
        self._decoder = decoder
        self._asm = asm
        self._feed = feed
        self._feed_tail = feed_tail
        self._finished = False
        self._pending: list[LLMResultChunk] = []
        self._error: BaseException | None = None  # raised on the next read, after the chunks before it

    async def _read_batch(self) -> list[LLMResultChunk]:
        """The chunks of the next network read (possibly empty); ``[]`` forever after the terminal
        chunk or a failure (the stream is then finished)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._finished:
            return []
        resp = self._resp
        out: list[LLMResultChunk] = []
        try:
            try:
                data = await resp.read_chunk()
            except InvokeError:
                if not self._asm.done:
                    raise
                data = b""  # the answer was complete: a broken tail does not matter
            if data:
                self._feed(self._decoder.feed(data), out)
                return out
            self._feed_tail(self._decoder.close(), out)
            final = self._asm.final_chunk()
            self._finished = True
            resp.release()
            out.append(final)
            return out
        except BaseException as exc:
            self._finished = True
            resp.close()
            if out and isinstance(exc, Exception):
                self._error = exc  # hand out what arrived before the failure first
                return out
            raise

    @property
    def assembler(self) -> Assembler:
        return self._asm

    async def next_batch(self) -> list[LLMResultChunk]:
        """The next network reads' chunks (never empty); ``StopAsyncIteration`` after the terminal
        chunk, once a failure held back behind earlier chunks was raised."""
        while not (self._finished and self._error is None):
            batch = await self._read_batch()
            if batch:
                return batch
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._finished:
            self._finished = True
            self._resp.close()

    def __aiter__(self) -> AssembledStream:
        return self

    async def __anext__(self) -> LLMResultChunk:
        pending = self._pending
        if not pending:
            pending.extend(await self.next_batch())
        return pending.pop(0)


def assemble_stream(
    resp: StreamResponse, decoder: Decoder, asm: Assembler, feed_into: FeedInto, feed_tail: FeedInto | None = None
) -> AssembledStream:
    """The chunks ``feed_into(items, out)`` makes of every network read's decoded items, then
    ``asm.final_chunk()``.  ``feed_tail`` handles what the decoder flushes at the end of the body,
    when that differs from ``feed_into``.
    """
    return AssembledStream(resp, decoder, asm, feed_into, feed_tail if feed_tail is not None else feed_into)
