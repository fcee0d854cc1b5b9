"""The runtime's first-byte and idle timeouts over real sockets, on both of their paths:
first-byte equal to idle (aiohttp's read timeout serves as both, no timer of ours per
call) and first-byte different from idle (sent with the first-byte value, switched to the
idle value once the headers are in)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from arun import ModelRuntime, UserPromptMessage
from arun.errors import InvokeTimeoutError
from arun.testing import Fault, UpstreamSimulator
from arun.wire.client import HttpConfig

MESSAGES = [UserPromptMessage(content="hello")]


@asynccontextmanager
async def chat_with(fault: Fault, *, first_byte: float, idle: float) -> AsyncIterator[Any]:
    """``invoke(stream)`` of gpt-4o-mini against a simulator holding ``fault``; 0 connections left after."""
    async with UpstreamSimulator() as sim, ModelRuntime(
        http=HttpConfig(first_byte_timeout=first_byte, idle_timeout=idle)
    ) as rt:
        sim.faults.push(fault, path="/v1/chat/completions")
        llm = rt.get_model_instance("openai", "llm")
        creds = {"openai_api_key": "sk-timeouts-test-key", "openai_api_base": sim.url}

        async def invoke(stream: bool) -> Any:
            return await llm.invoke("gpt-4o-mini", creds, MESSAGES, stream=stream)

        yield invoke
        assert rt.http.acquired_connections() == 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "first_byte, idle",
    [(0.3, 0.3), (0.3, 30.0)],
    ids=["first-byte-equals-idle", "first-byte-shorter-than-idle"],
)
async def test_slow_first_byte_times_out_after_the_first_byte_timeout(first_byte, idle, stream):
    async with chat_with(Fault(first_byte_delay=5.0), first_byte=first_byte, idle=idle) as invoke:
        t0 = time.monotonic()
        with pytest.raises(InvokeTimeoutError):
            result = await invoke(stream)
            if stream:
                await result.collect()
        assert time.monotonic() - t0 < 3.0  # the first-byte limit, not the 5 s delay or the 30 s idle


async def test_longer_first_byte_timeout_lets_a_slow_start_through():
    # the first byte may take longer than the idle limit between reads
    async with chat_with(Fault(first_byte_delay=0.6), first_byte=5.0, idle=0.2) as invoke:
        result = await invoke(False)
        assert result.message.content


async def test_after_the_headers_the_body_is_read_under_the_idle_timeout():
    # headers at once, then a first token slower than the first-byte limit (a thinking model):
    # the first-byte limit no longer applies once the headers are in
    async with chat_with(Fault(stall_after=0, stall_seconds=0.6), first_byte=0.2, idle=5.0) as invoke:
        result = await (await invoke(True)).collect()
        assert result.message.content and result.finish_reason == "stop"


async def test_a_stall_in_the_body_longer_than_idle_times_out():
    async with chat_with(Fault(stall_after=2, stall_seconds=5.0), first_byte=5.0, idle=0.3) as invoke:
        stream = await invoke(True)
        t0 = time.monotonic()
        with pytest.raises(InvokeTimeoutError):
            await stream.collect()
        assert time.monotonic() - t0 < 3.0
