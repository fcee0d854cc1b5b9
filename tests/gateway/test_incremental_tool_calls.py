"""The runtime's opt-in incremental tool-call mode (``incremental_tool_calls=True``), per family.

Default (Dify's contract): tool calls are assembled and arrive on the final chunk.  Opted in:
they arrive as :class:`ToolCallDelta` fragments by index as the wire delivers them (the first
fragment of a call carries its id and name, the later ones pieces of the arguments), the final
chunk carries none, and ``LLMStream.result()`` assembles the same calls as the default mode.
Against the upstream simulator over real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from arun.entities.messages import PromptMessageTool, ToolCallDelta, UserPromptMessage
from arun.runtime import ModelRuntime

TOOLS = [
    PromptMessageTool(
        name="get_weather",
        description="Current weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
    ),
    PromptMessageTool(
        name="get_time",
        description="Local time",
        parameters={"type": "object", "properties": {"city": {"type": "string"}, "utc": {"type": "boolean"}}},
    ),
]
MESSAGES = [UserPromptMessage(content="Weather and time in Paris please")]


@pytest_asyncio.fixture
async def rt() -> AsyncIterator[ModelRuntime]:
    async with ModelRuntime() as runtime:
        yield runtime
        assert runtime.http.acquired_connections() == 0


def _cases(sim: Any) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("openai", "gpt-4o", {"openai_api_key": "sk-test", "openai_api_base": sim.url}),
        ("anthropic", "claude-sonnet-4-20250514", {"anthropic_api_key": "sk-ant-test", "anthropic_api_url": sim.url}),
        ("ollama", "llama3.2", {"base_url": sim.url, "mode": "chat", "context_size": "4096", "max_tokens": "512",
                                "function_call_support": "true"}),
    ]  # fmt: skip


@pytest.mark.parametrize("family", ["openai", "anthropic", "ollama"])
async def test_fragments_by_index_then_the_same_assembled_calls(rt, upstream, family):
    provider, model, creds = next(c for c in _cases(upstream) if c[0] == family)
    llm = rt.get_model_instance(provider, "llm")

    default = await llm.invoke(model, creds, MESSAGES, {"max_tokens": 64}, tools=TOOLS, stream=True)
    chunks = [c async for c in default]
    assert all(not c.delta.message.tool_calls for c in chunks[:-1])  # Dify: only the final chunk
    assembled = chunks[-1].delta.message.tool_calls
    assert [c.function.name for c in assembled] == ["get_weather", "get_time"]
    assert not any(isinstance(c, ToolCallDelta) for c in assembled)

    stream = await llm.invoke(model, creds, MESSAGES, {"max_tokens": 64}, tools=TOOLS, stream=True, incremental_tool_calls=True)
    chunks = [c async for c in stream]
    fragments = [f for c in chunks for f in c.delta.message.tool_calls]
    assert fragments and all(isinstance(f, ToolCallDelta) for f in fragments)
    assert chunks[-1].delta.message.tool_calls == []  # nothing assembled twice
    assert chunks[-1].delta.finish_reason is not None
    by_index: dict[int, list[ToolCallDelta]] = {}
    for f in fragments:
        by_index.setdefault(f.index, []).append(f)  # type: ignore[arg-type]
    assert sorted(by_index) == [0, 1]
    for i, call in enumerate(assembled):
        parts = by_index[i]
        assert parts[0].id and parts[0].function.name == call.function.name  # first fragment: id and name
        assert all(not p.id and not p.function.name for p in parts[1:])  # later ones: arguments only
        assert "".join(p.function.arguments for p in parts).replace(" ", "") == call.function.arguments.replace(" ", "")
    if family != "ollama":  # the Ollama wire sends each call whole: one fragment per call
        assert len(fragments) > 2
    result = stream.result().message.tool_calls
    assert [(c.id, c.function.name) for c in result] == [(by_index[i][0].id, c.function.name) for i, c in enumerate(assembled)]
    assert [c.function.arguments.replace(" ", "") for c in result] == [c.function.arguments.replace(" ", "") for c in assembled]
    assert not any(isinstance(c, ToolCallDelta) for c in result)


async def test_manager_instance_passes_the_mode_through_the_router(upstream, tmp_path):
    from arun.manager import ModelManager, PolicyConfig

    async with ModelManager(f"sqlite:///{tmp_path}/m.db", "memory://", policy=PolicyConfig()) as m:
        tenant = await m.create_tenant("t")
        await m.save_provider_credentials(tenant.id, "openai", {"openai_api_key": "sk-test", "openai_api_base": upstream.url}, validate=False)
        inst = await m.get_model_instance(tenant.id, "openai", "llm", "gpt-4o")
        stream = await inst.invoke_llm(MESSAGES, {"max_tokens": 64}, tools=TOOLS, stream=True, incremental_tool_calls=True)
        # committed at the first tool fragment: the router handed the stream out before the call was complete
        chunks = [c async for c in stream]
        assert isinstance(chunks[0].delta.message.tool_calls[0], ToolCallDelta)
        assert [c.function.name for c in stream.result().message.tool_calls] == ["get_weather", "get_time"]
        assert m.runtime.http.acquired_connections() == 0
