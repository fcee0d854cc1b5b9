"""Serving a committed :class:`~arun.model_types.llm_stream.LLMStream` as server-sent events.

The HTTP status is sent only once the policy router committed the stream (its first content
or tool delta is in hand), so every failure before that is still a real HTTP error status.
After it:

* each chunk is encoded and written as it arrives;
* the stream completes -> the closing events (finish reason, usage when asked, ``[DONE]``);
* the upstream fails (cut, stall, error event) -> one error event in the API's shape, then the
  connection is closed without the closing events (a client can never take a cut answer for
  a finished one);
* the client goes away -> aiohttp cancels the handler, leaving ``async with stream`` closes
  the upstream response at once (its connection goes back to the pool), and the request is
  logged ``cancelled`` with the usage it had;
* shutdown's deadline passes -> the same cancellation, after an error event saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter
from typing import Any

from aiohttp import web

from arun.entities.llm import LLMResultChunk, LLMUsage
from arun.errors import InvokeError
from arun.gateway.errors import ErrorInfo, GatewayError, classify

__all__ = ["serve_stream", "SSE_HEADERS"]

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_SHUTDOWN = GatewayError(503, "The gateway is shutting down; the stream was cut before it finished.",
                         type="server_error", code="server_shutdown")  # fmt: skip


async def serve_stream(
    request: web.Request,
    gw: Any,
    call: Any,
    stream: Any,
    encode: Callable[[LLMResultChunk], bytes],
    finish: Callable[[str | None, LLMUsage | None], bytes],
    error_event: Callable[[ErrorInfo], bytes],
    start: bytes = b"",
) -> web.StreamResponse:
    call.stream = True
    call.ttft = perf_counter() - call.started
    resp = web.StreamResponse(status=200, headers={**SSE_HEADERS, "x-request-id": call.rid})
    gw.m_streams.add(1)
    try:
        async with stream:
            await resp.prepare(request)
            if start:
                await resp.write(start)
            async for chunk in stream:
                data = encode(chunk)
                if data:
                    await resp.write(data)
            result = stream.result()
            call.use(result.usage if stream.usage is not None else stream.partial_usage())
            await resp.write(finish(result.finish_reason, stream.usage))
            await resp.write_eof()
        return resp
    except InvokeError as exc:  # after the commit point: the upstream failed mid-stream
        info = classify(exc)
        call.fail(info)
        call.use(exc.partial_usage if exc.partial_usage is not None else stream.partial_usage())
        await _cut(request, resp, error_event(info))
        return resp
    except asyncio.CancelledError:
        call.use(stream.partial_usage())
        call.outcome, call.error = "cancelled", ("Shutdown" if gw.draining else "ClientDisconnected")
        call.status = 499
        if gw.draining:
            await _cut(request, resp, error_event(classify(_SHUTDOWN)))
        raise
    except (ConnectionError, OSError):  # the client went away between two writes
        call.use(stream.partial_usage())
        call.outcome, call.error, call.status = "cancelled", "ClientDisconnected", 499
        return resp
    finally:
        gw.m_streams.add(-1)


async def _cut(request: web.Request, resp: web.StreamResponse, event: bytes) -> None:
    """Send the error event, then close the connection without the body's end (no [DONE])."""
    try:
        if resp.prepared:
            await resp.write(event)
    except (ConnectionError, OSError, RuntimeError):
        pass
    resp.force_close()
    transport = request.transport
    if transport is not None:
        transport.close()  # flushes what was written, then closes: no terminating chunk follows
