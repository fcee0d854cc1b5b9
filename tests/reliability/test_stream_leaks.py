"""10,000 streams abandoned after their first chunk (break, cancel, exception) leave no connection acquired."""

from __future__ import annotations

import asyncio
import gc

import pytest

from arun import ModelRuntime, UserPromptMessage
from arun.testing import SimulatorConfig, UpstreamSimulator

N = 10_000
CONCURRENCY = 64


class Boom(Exception):
    pass


async def settle(rt: ModelRuntime) -> int:
    for _ in range(50):
        gc.collect()
        await asyncio.sleep(0.02)
        if rt.http.acquired_connections() == 0:
            break
    return rt.http.acquired_connections()


@pytest.mark.slow
async def test_abandoned_streams_release_their_connections():
    async with UpstreamSimulator(SimulatorConfig(reply_words=40)) as sim, ModelRuntime() as rt:
        llm = rt.get_model_instance("openai", "llm")
        creds = {"openai_api_key": "sk-leak", "openai_api_base": sim.url}
        messages = [UserPromptMessage(content="tell me a long story")]
        counts = {"break": 0, "cancel": 0, "exception": 0}

        async def by_break() -> None:
            stream = await llm.invoke("gpt-4o-mini", creds, messages, stream=True)
            async for _chunk in stream:
                break  # no aclose, no context manager: the runtime must still free the socket
            counts["break"] += 1

        async def by_exception() -> None:
            try:
                stream = await llm.invoke("gpt-4o-mini", creds, messages, stream=True)
                async for _chunk in stream:
                    raise Boom
            except Boom:
                counts["exception"] += 1

        async def by_cancel() -> None:
            first = asyncio.Event()

            async def consume() -> None:
                stream = await llm.invoke("gpt-4o-mini", creds, messages, stream=True)
                async for _chunk in stream:
                    first.set()
                    await asyncio.sleep(10)

            task = asyncio.ensure_future(consume())
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            counts["cancel"] += 1

        kinds = [by_break, by_exception, by_cancel]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> None:
            async with gate:
                await kinds[i % 3]()

        await asyncio.gather(*(one(i) for i in range(N)))
        assert sum(counts.values()) == N
        assert await settle(rt) == 0
        # the pool still works afterwards
        result = await llm.invoke("gpt-4o-mini", creds, messages, stream=False)
        assert result.message.content
