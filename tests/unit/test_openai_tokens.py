"""OpenAI's prompt-token recipe over arun's messages (DIFY_RUNTIME.md §11: system + user + one weather tool on gpt-3.5-turbo -> 72)."""

from __future__ import annotations

from arun import (
    AssistantPromptMessage,
    ImagePromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolCall,
    ToolCallFunction,
    UserPromptMessage,
    tokenizers as tk,
)
from arun.protocols.openai_tokens import num_tokens_for_tools, num_tokens_from_messages

WEATHER_TOOL = PromptMessageTool(
    name="get_weather",
    description="Determine weather in my location",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["location"],
    },
)

DIFY_MESSAGES = [SystemPromptMessage(content="You are a helpful AI assistant."), UserPromptMessage(content="Hello World!")]


def test_dify_messages_with_tool_is_72():
    assert num_tokens_from_messages("gpt-3.5-turbo", DIFY_MESSAGES, [WEATHER_TOOL]) == 72


def test_tool_wire_form_counts_the_same():
    wire = {"type": "function", "function": {"name": WEATHER_TOOL.name, "description": WEATHER_TOOL.description, "parameters": WEATHER_TOOL.parameters}}
    assert num_tokens_from_messages("gpt-3.5-turbo", DIFY_MESSAGES, [wire]) == 72


def test_messages_without_tools():
    # system: 3 + "system"(1) + 7; user: 3 + "user"(1) + 3; priming 3
    assert num_tokens_from_messages("gpt-3.5-turbo", DIFY_MESSAGES) == 21
    assert num_tokens_for_tools([{"name": WEATHER_TOOL.name, "description": WEATHER_TOOL.description, "parameters": WEATHER_TOOL.parameters}]) == 51
    assert num_tokens_from_messages("ft:gpt-3.5-turbo-0613:acme::x", DIFY_MESSAGES) == 21


def test_name_and_0301_constants():
    msg = [UserPromptMessage(content="Hello World!", name="bob")]
    base = 3 + 1 + 3 + 1 + 3  # framing + role + content + name + priming
    assert num_tokens_from_messages("gpt-4", msg) == base + 1
    assert num_tokens_from_messages("gpt-3.5-turbo-0301", msg) == base + 1 - 1  # 4 per message, -1 per name


def test_list_content_counts_text_parts_only():
    plain = [UserPromptMessage(content="Hello World!")]
    parts = [
        UserPromptMessage(
            content=[
                TextPromptMessageContent(data="Hello"),
                ImagePromptMessageContent(format="png", base64_data="AAAA", mime_type="image/png"),
                TextPromptMessageContent(data=" World!"),
            ]
        )
    ]
    assert num_tokens_from_messages("gpt-4o", parts) == num_tokens_from_messages("gpt-4o", plain)


def test_tool_calls_counted_key_by_key():
    call = ToolCall(id="call_1", type="function", function=ToolCallFunction(name="get_weather", arguments='{"location":"Paris"}'))
    msgs = [AssistantPromptMessage(content=None, tool_calls=[call])]
    enc = tk.get_encoding("cl100k_base")

    def n(s: str) -> int:
        return len(enc.encode_ordinary(s))

    expected_calls = (
        n("id") * 2 + n("call_1")
        + n("type") * 2 + n("function")
        + n("function") + n("name") + n("get_weather") + n("arguments") + n('{"location":"Paris"}')
    )
    assert num_tokens_from_messages("gpt-4", msgs) == 3 + n("assistant") + expected_calls + 3
