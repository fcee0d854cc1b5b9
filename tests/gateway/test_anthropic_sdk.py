"""The official ``anthropic`` SDK against the gateway's ``/v1/messages``, on any backend.

The same request is served by the Anthropic backend and by an OpenAI backend (the gateway
translates); bodies and stream events are validated with the SDK's pydantic models.
"""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from arun.testing import Fault

TOOLS = [
    {"name": "get_weather", "description": "Current weather",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_time", "description": "Local time",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
]  # fmt: skip
EVENT = TypeAdapter(RawMessageStreamEvent)


@pytest.mark.parametrize("model", ["claude-sonnet-4", "openai/gpt-4o"])
async def test_messages_non_stream(gateway, model):
    client = gateway.anthropic()
    raw = await client.messages.with_raw_response.create(
        model=model, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Hello there friend"}]
    )
    msg = Message.model_validate(json.loads(await raw.text()))
    assert msg.type == "message" and msg.role == "assistant" and msg.stop_reason == "end_turn" and msg.model == model
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    sent = gateway.sim.last_request
    assert sent.path == ("/v1/messages" if model.startswith("claude") else "/v1/chat/completions")


@pytest.mark.parametrize("model", ["claude-sonnet-4", "openai/gpt-4o"])
async def test_messages_stream_text(gateway, model):
    client = gateway.anthropic()
    events = []
    async with client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "Hello there friend"}]) as stream:
        async for event in stream:
            events.append(event)
        final = await stream.get_final_message()
    raw_types = [e.type for e in events if e.type in ("message_start", "content_block_start", "content_block_delta",
                                                       "content_block_stop", "message_delta", "message_stop")]  # fmt: skip
    assert raw_types[0] == "message_start" and raw_types[-1] == "message_stop" and "message_delta" in raw_types
    for e in events:
        if e.type in ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"):
            EVENT.validate_python(e.model_dump())
    assert final.stop_reason == "end_turn" and final.content[0].text
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert len([e for e in events if e.type == "content_block_delta"]) > 1


@pytest.mark.parametrize("model", ["claude-sonnet-4", "openai/gpt-4o"])
async def test_messages_stream_parallel_tools(gateway, model):
    client = gateway.anthropic()
    async with client.messages.stream(model=model, max_tokens=128, tools=TOOLS, messages=[{"role": "user", "content": "Paris"}]) as stream:
        deltas = [e async for e in stream if e.type == "content_block_delta"]
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"})]
    assert len({u.id for u in uses}) == 2
    json_deltas = [d for d in deltas if d.delta.type == "input_json_delta"]
    assert len(json_deltas) > 2  # streamed by index, not one burst


async def test_tool_result_turn_and_non_stream_tools(gateway):
    client = gateway.anthropic()
    msg = await client.messages.create(model="claude-sonnet-4", max_tokens=128, tools=TOOLS[:1],
                                       messages=[{"role": "user", "content": "Paris"}])  # fmt: skip
    use = next(b for b in msg.content if b.type == "tool_use")
    follow = await client.messages.create(model="openai/gpt-4o", max_tokens=128, tools=TOOLS[:1], messages=[
        {"role": "user", "content": "Paris"},
        {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21C"}]},
    ])  # fmt: skip
    assert "sunny, 21C" in follow.content[0].text
    sent = gateway.sim.last_request.json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == use.id and sent[2] == {"role": "tool", "tool_call_id": use.id, "content": "sunny, 21C"}


async def test_anthropic_errors(gateway):
    client = gateway.anthropic()
    with pytest.raises(anthropic.NotFoundError) as nf:
        await client.messages.create(model="nope/nothing", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert nf.value.body["type"] == "error" and nf.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.AuthenticationError):
        await gateway.anthropic(key="sk-arun-not-a-real-key-0000000000").messages.create(
            model="claude-sonnet-4", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    gateway.sim.faults.push(Fault(status=529), path="/v1/messages")
    with pytest.raises(anthropic.APIStatusError) as over:
        await client.messages.create(model="claude-sonnet-4", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert over.value.status_code == 529 and over.value.body["error"]["type"] == "overloaded_error"


async def test_anthropic_stream_cut_raises(gateway):
    gateway.sim.faults.push(Fault(disconnect_after=4), path="/v1/messages")
    client = gateway.anthropic()
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model="claude-sonnet-4", max_tokens=64,
                                          messages=[{"role": "user", "content": "Hello there friend"}]) as stream:  # fmt: skip
            async for _ in stream:
                pass
    assert info.value.body["type"] == "error"
