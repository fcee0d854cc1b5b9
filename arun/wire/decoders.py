"""Incremental stream decoders over bytes: Server-Sent Events and NDJSON.

They import nothing from aiohttp: feed them the byte chunks as they arrive and
they return the complete events/lines found so far.  Line endings may be
``\\n``, ``\\r\\n`` or ``\\r``; comments are dropped; multi-line ``data`` fields
are joined with ``\\n``; trailing whitespace of a payload is left for the JSON
decoder, which ignores it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SSEDecoder", "NDJSONDecoder", "SSEEvent"]

SSEEvent = tuple[str | None, bytes]  # (event name or None, data bytes)


class SSEDecoder:
    """``feed(chunk) -> [(event, data), ...]``; ``close()`` flushes an unterminated event.

    ``SSEDecoder(data_only=True)`` returns the data payloads alone (``[data, ...]``), for
    protocols that do not name their events (the OpenAI family).
    """

    __slots__ = ("_tail", "_cr", "_data_only")

    def __init__(self, *, data_only: bool = False) -> None:
        self._tail = b""
        self._cr = False
        self._data_only = data_only

    def feed(self, chunk: bytes) -> list[Any]:
        if self._cr:
            # a "\r" ended the previous chunk: a "\n" starting this one belongs to it
            self._cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            if chunk[-1:] == b"\r":
                self._cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._tail:
            chunk = self._tail + chunk
        # Every complete event ends with a blank line: split on it once, then take the
        # common shape (a single "data: ..." line) without walking lines one by one.
        blocks = chunk.split(b"\n\n")
        self._tail = blocks.pop()
        out: list[Any] = []
        if self._data_only:
            for block in blocks:
                if block[:6] == b"data: " and b"\n" not in block:
                    out.append(block[6:])
                elif block:
                    self._block(block, out)
            return out
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                out.append((None, block[6:]))
            elif block[:7] == b"event: ":
                # the named event's common shape (Anthropic): "event: name\ndata: ..." and nothing else
                nl = block.find(b"\n")
                if nl > 0 and block[nl + 1 : nl + 7] == b"data: " and block.find(b"\n", nl + 1) < 0:
                    out.append((block[7:nl].strip().decode("utf-8", "replace"), block[nl + 7 :]))
                else:
                    self._block(block, out)
            elif block:
                self._block(block, out)
        return out

    def _block(self, block: bytes, out: list[Any]) -> None:
        """The general case: comments, named events, multi-line data, other fields."""
        data: list[bytes] = []
        event: str | None = None
        for line in block.split(b"\n"):
            if line[:5] == b"data:":
                value = line[5:]
                data.append(value[1:] if value[:1] == b" " else value)
            elif line[:6] == b"event:":
                event = line[6:].strip().decode("utf-8", "replace")
            # comments (":...") and other fields (id, retry) are ignored
        if data:
            payload = data[0] if len(data) == 1 else b"\n".join(data)
            out.append(payload if self._data_only else (event, payload))

    def close(self) -> list[Any]:
        """Flush what is pending at end of stream (a final event without a blank line)."""
        out = self.feed(b"\n\n") if self._tail.strip() else []
        self._tail = b""
        return out


class NDJSONDecoder:
    """``feed(chunk) -> [line, ...]`` of non-blank lines."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        return [line for line in lines if line.strip()]

    def close(self) -> list[bytes]:
        tail, self._tail = self._tail, b""
        return [tail] if tail.strip() else []
