"""Streams through the gateway: a cut or an error event after the first delta reaches the SDK as an
error (never as a finished answer, never a ``[DONE]``); a client that goes away cancels the
upstream at once (the simulator sees the connection close, the pool has 0 connections checked
out, no task is left); graceful shutdown lets a stream finish, or cuts it with an error event
once the grace period is over.
"""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest
from gateway_harness import spend_rows, wait_for

from arun.testing import Fault, SimulatorConfig, UpstreamSimulator

HELLO = [{"role": "user", "content": "Hello there friend"}]


@pytest.mark.parametrize("fault", [Fault(disconnect_after=3), Fault(error_event_after=3)], ids=["cut", "error-event"])
async def test_failure_after_the_first_delta_reaches_the_sdk_as_an_error(gateway, fault):
    gateway.sim.faults.push(fault, path="/v1/chat/completions")
    stream = await gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    got = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            got.append(chunk)
    assert got and any(c.choices and c.choices[0].delta.content for c in got)  # it had started
    assert not any(c.choices and c.choices[0].finish_reason for c in got)  # and never looked finished
    assert info.value.body["type"] in ("upstream_connection_error", "server_error")
    rows = await spend_rows(gateway)
    assert rows[0].outcome == "error" and rows[0].stream and rows[0].completion_tokens > 0  # charged what it used
    assert gateway.gw.manager.runtime.http.acquired_connections() == 0


async def test_cut_stream_on_the_wire_has_no_done(gateway):
    gateway.sim.faults.push(Fault(disconnect_after=3), path="/v1/chat/completions")
    body = b""
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientPayloadError):  # the connection closes without the body's end
            async with http.post(gateway.base + "/chat/completions", headers={"Authorization": f"Bearer {gateway.key}"},
                                 json={"model": "gpt-4o", "messages": HELLO, "stream": True}) as resp:  # fmt: skip
                assert resp.status == 200
                async for part in resp.content.iter_any():
                    body += part
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1].startswith(b'data: {"error":') and b"[DONE]" not in body


async def test_failure_before_the_first_delta_is_an_http_status(gateway):
    gateway.sim.faults.push(Fault(disconnect_after=0), path="/v1/chat/completions")
    with pytest.raises(openai.APIStatusError) as info:
        stream = await gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
        async for _ in stream:
            pass
    assert info.value.status_code == 502


async def test_client_disconnect_cancels_the_upstream_at_once(make_gateway, tmp_path):
    # a slow upstream (50 ms between events): the client leaves after the first delta
    async with UpstreamSimulator(SimulatorConfig(chunk_delay=0.05, reply_words=400)) as slow:
        from gateway_harness import start_gateway

        gateway = await start_gateway(slow, tmp_path)
        try:
            rt = gateway.gw.manager.runtime
            async with aiohttp.ClientSession() as http:
                async with http.post(gateway.base + "/chat/completions", headers={"Authorization": f"Bearer {gateway.key}"},
                                     json={"model": "gpt-4o", "messages": HELLO, "stream": True}) as resp:  # fmt: skip
                    async for part in resp.content.iter_any():
                        if b'"content"' in part:
                            break
                    assert rt.http.acquired_connections() == 1  # the upstream stream is open
            # the client closed its connection: the handler is cancelled, the upstream stream closed
            await wait_for(lambda: rt.http.acquired_connections() == 0, "the upstream connection to return to the pool")
            await wait_for(lambda: gateway.gw.m_streams.values.get((), 0) == 0, "no stream in flight")
            rows = await spend_rows(gateway)
            assert rows[0].outcome == "cancelled" and rows[0].status == 499 and 0 < rows[0].completion_tokens < 400
            assert slow.stats.total == 1
            # no request handler left, the gateway's nor the upstream's (which saw its connection close)
            await wait_for(lambda: not [t for t in asyncio.all_tasks() if "_handle_request" in repr(t.get_coro())],
                           "every request handler to end")  # fmt: skip
        finally:
            await gateway.close()


async def test_graceful_shutdown_lets_a_stream_finish(tmp_path):
    async with UpstreamSimulator(SimulatorConfig(chunk_delay=0.01, reply_words=40)) as slow:
        from gateway_harness import start_gateway

        gateway = await start_gateway(slow, tmp_path, shutdown_grace=30.0)
        client = gateway.openai()
        stream = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
        first = await stream.__anext__()
        closing = asyncio.ensure_future(gateway.close())  # SIGTERM: stop accepting, drain
        await wait_for(lambda: gateway.gw.draining, "the gateway to start draining")
        rest = [c async for c in stream]
        assert [c.choices[0].finish_reason for c in rest if c.choices and c.choices[0].finish_reason] == ["stop"]
        assert len([first, *rest]) > 40
        await closing


async def test_shutdown_deadline_cuts_a_stream_with_an_error_event(tmp_path):
    async with UpstreamSimulator(SimulatorConfig(chunk_delay=0.05, reply_words=400)) as slow:
        from gateway_harness import start_gateway

        gateway = await start_gateway(slow, tmp_path, shutdown_grace=0.3)
        rt = gateway.gw.manager.runtime
        stream = await gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
        await stream.__anext__()
        closing = asyncio.ensure_future(gateway.close())
        with pytest.raises(openai.APIError) as info:
            async for _ in stream:
                pass
        assert info.value.code == "server_shutdown"
        await closing
        assert rt.http.acquired_connections() == 0
