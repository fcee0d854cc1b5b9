"""Code-block mode (response_format JSON/XML on models without a native JSON mode)."""

import pytest

from arun import ModelRuntime, SystemPromptMessage, UserPromptMessage
from arun.entities.llm import LLMResultChunk, LLMResultChunkDelta
from arun.entities.messages import AssistantPromptMessage, TextPromptMessageContent
from arun.model_types.code_block import code_block_request, strip_fences, strip_fences_stream
from arun.testing import UpstreamSimulator


def test_request_rewrites_copies_and_keeps_the_callers_list():
    messages = [SystemPromptMessage(content="Give the city."), UserPromptMessage(content="Capital of France?")]
    before = list(messages)
    out, params, stop = code_block_request(messages, {"response_format": "JSON", "temperature": 0.1}, ["END"])
    assert messages == before  # untouched
    assert params == {"temperature": 0.1}
    assert stop == ["END", "\n```", "```\n"]
    assert "JSON" in out[0].text() and "<instructions>\nGive the city.\n</instructions>" in out[0].text()
    assert out[-1].content == "Capital of France?\n```json\n"


def test_request_without_system_or_trailing_user_message():
    out, _, _ = code_block_request([AssistantPromptMessage(content="hi")], {"response_format": "XML"}, None)
    assert isinstance(out[0], SystemPromptMessage) and "XML" in out[0].text()
    assert out[-1].content == "```xml\n"
    parts = [UserPromptMessage(content=[TextPromptMessageContent(data="q")])]
    out, _, _ = code_block_request(parts, {"response_format": "JSON"}, None)
    assert out[-1].content[-1].data == "q\n```json\n"


@pytest.mark.parametrize(
    "text, expected",
    [('```json\n{"a": 1}\n```', '{"a": 1}'), ('{"a": 1}\n```', '{"a": 1}'), ('{"a": 1}', '{"a": 1}'), ("```\n<x/>\n```\ntrailing", "<x/>")],
)
def test_strip_fences(text, expected):
    assert strip_fences(text) == expected


async def test_streamed_fences_are_removed_and_usage_survives():
    pieces = ["``", "`json\n{", '"a": ', "1}\n``", "`\nignored", ""]

    async def gen():
        for i, p in enumerate(pieces):
            last = i == len(pieces) - 1
            yield LLMResultChunk(
                model="m",
                delta=LLMResultChunkDelta(index=i, message=AssistantPromptMessage(content=p), finish_reason="stop" if last else None),
            )

    out = [c async for c in strip_fences_stream(gen())]
    assert "".join(c.delta.message.content for c in out) == '{"a": 1}\n'
    assert out[-1].delta.finish_reason == "stop" and len(out) == len(pieces)


async def test_anthropic_gets_the_code_block_request_on_the_wire():
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        llm = rt.get_model_instance("anthropic", "llm")
        creds = {"anthropic_api_key": "sk-ant-codeblock", "anthropic_api_url": sim.url}
        result = await llm.invoke(
            "claude-3-5-haiku-20241022", creds, [UserPromptMessage(content="city")], {"response_format": "JSON"}, stream=False
        )
        body = sim.requests[-1].json
        assert "JSON" in body["system"] if isinstance(body["system"], str) else "JSON" in body["system"][0]["text"]
        assert body["stop_sequences"][-2:] == ["\n```", "```\n"]
        assert "response_format" not in body
        assert "```" not in result.message.content
