"""The one read loop every streaming LLM family shares.

Bytes from the runtime's :class:`~arun.wire.client.StreamResponse` go through an
incremental decoder (SSE or NDJSON) into the family's assembler; content chunks
are yielded as they come, the terminal chunk (finish reason, tool calls, usage)
last, after the connection went back to the pool.  The assembler's
``final_chunk()`` raises ``InvokeStreamInterruptedError`` when the body ended
before the protocol's terminal event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from arun.entities.llm import LLMResultChunk
from arun.errors import InvokeError
from arun.wire.client import StreamResponse

__all__ = ["Assembler", "Decoder", "assemble_stream"]


class Decoder(Protocol):
    def feed(self, chunk: bytes) -> list[Any]: ...

    def close(self) -> list[Any]: ...


class Assembler(Protocol):
    done: bool  # the protocol's terminal event was seen

    def final_chunk(self) -> LLMResultChunk: ...


async def assemble_stream(
    resp: StreamResponse,
    decoder: Decoder,
    asm: Assembler,
    feed: Callable[[Any], LLMResultChunk | None],
    feed_tail: Callable[[Any], LLMResultChunk | None] | None = None,
) -> AsyncIterator[LLMResultChunk]:
    """Yield ``feed(item)`` for every decoded item, then ``asm.final_chunk()``."""
    async with resp:
        while True:
            try:
                data = await resp.read_chunk()
            except InvokeError:
                if asm.done:  # the answer was complete: a broken tail does not matter
                    break
                raise
            if not data:
                break
            for item in decoder.feed(data):
                chunk = feed(item)
                if chunk is not None:
                    yield chunk
        tail_feed = feed_tail or feed
        for item in decoder.close():
            chunk = tail_feed(item)
            if chunk is not None:
                yield chunk
        final = asm.final_chunk()
    yield final
