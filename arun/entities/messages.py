"""Prompt messages, content parts and tools (Dify's message entities as msgspec Structs).

Messages are a tagged union on ``role`` and content parts on ``type``, so a
JSON or dict payload decodes straight into the right class.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar, Literal, Union

import msgspec

__all__ = [
    "PromptMessageRole",
    "PromptMessageContentType",
    "TextPromptMessageContent",
    "ImagePromptMessageContent",
    "AudioPromptMessageContent",
    "VideoPromptMessageContent",
    "DocumentPromptMessageContent",
    "PromptMessageContent",
    "PromptMessage",
    "SystemPromptMessage",
    "UserPromptMessage",
    "AssistantPromptMessage",
    "ToolPromptMessage",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFunction",
    "PromptMessageTool",
    "PromptMessageFunction",
    "AnyPromptMessage",
    "messages_from_dicts",
]


class PromptMessageRole(str, Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"

    @classmethod
    def value_of(cls, value: str) -> PromptMessageRole:
        for member in cls:
            if member.value == value:
                return member
        raise ValueError(f"invalid prompt message type value {value}")


class PromptMessageContentType(str, Enum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"


class TextPromptMessageContent(msgspec.Struct, tag_field="type", tag="text", omit_defaults=True):
    data: str

    @property
    def type(self) -> PromptMessageContentType:
        return PromptMessageContentType.TEXT


class _MultiModalContent(msgspec.Struct, tag_field="type", omit_defaults=True):
    format: str = ""
    mime_type: str = ""
    base64_data: str = ""
    url: str = ""

    content_type: ClassVar[PromptMessageContentType]

    @property
    def type(self) -> PromptMessageContentType:
        return self.content_type

    @property
    def data(self) -> str:
        """The URL if set, else a ``data:`` URL built from the base64 payload."""
        return self.url or f"data:{self.mime_type};base64,{self.base64_data}"


class ImagePromptMessageContent(_MultiModalContent, tag="image"):
    detail: Literal["low", "high"] = "low"
    content_type: ClassVar[PromptMessageContentType] = PromptMessageContentType.IMAGE


class AudioPromptMessageContent(_MultiModalContent, tag="audio"):
    content_type: ClassVar[PromptMessageContentType] = PromptMessageContentType.AUDIO


class VideoPromptMessageContent(_MultiModalContent, tag="video"):
    content_type: ClassVar[PromptMessageContentType] = PromptMessageContentType.VIDEO


class DocumentPromptMessageContent(_MultiModalContent, tag="document"):
    content_type: ClassVar[PromptMessageContentType] = PromptMessageContentType.DOCUMENT


PromptMessageContent = Union[
    TextPromptMessageContent,
    ImagePromptMessageContent,
    AudioPromptMessageContent,
    VideoPromptMessageContent,
    DocumentPromptMessageContent,
]


class ToolCallFunction(msgspec.Struct):
    name: str
    arguments: str  # a JSON string, possibly invalid JSON: exactly what the model sent


class ToolCall(msgspec.Struct):
    id: str
    function: ToolCallFunction
    type: str = "function"


class ToolCallDelta(ToolCall):
    """A fragment of a streamed tool call (the opt-in ``incremental_tool_calls`` mode): ``index`` is
    the call's position among the answer's tool calls; its first fragment carries ``id`` and
    ``function.name``, later ones only a piece of ``function.arguments`` (empty strings otherwise)."""

    index: int = 0


class PromptMessage(msgspec.Struct, tag_field="role", omit_defaults=True):
    content: str | list[PromptMessageContent] | None = None
    name: str | None = None

    role: ClassVar[PromptMessageRole]

    def is_empty(self) -> bool:
        return not self.content

    def text(self) -> str:
        """The text of the message (text parts joined), for counting and display."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "".join(part.data for part in content if isinstance(part, TextPromptMessageContent))


class SystemPromptMessage(PromptMessage, tag="system"):
    role: ClassVar[PromptMessageRole] = PromptMessageRole.SYSTEM


class UserPromptMessage(PromptMessage, tag="user"):
    role: ClassVar[PromptMessageRole] = PromptMessageRole.USER


class AssistantPromptMessage(PromptMessage, tag="assistant", gc=False):  # one per streamed chunk; never cyclic
    tool_calls: list[ToolCall] = []
    role: ClassVar[PromptMessageRole] = PromptMessageRole.ASSISTANT

    def is_empty(self) -> bool:
        return not self.content and not self.tool_calls


class ToolPromptMessage(PromptMessage, tag="tool"):
    tool_call_id: str = ""
    role: ClassVar[PromptMessageRole] = PromptMessageRole.TOOL

    def is_empty(self) -> bool:
        # Dify's quirk kept on purpose: "empty" unless content is set and tool_call_id is falsy.
        return not (self.content and not self.tool_call_id)


AnyPromptMessage = Union[SystemPromptMessage, UserPromptMessage, AssistantPromptMessage, ToolPromptMessage]


class PromptMessageTool(msgspec.Struct):
    name: str
    description: str = ""
    parameters: dict[str, Any] = {}


class PromptMessageFunction(msgspec.Struct):
    function: PromptMessageTool
    type: str = "function"


_messages_converter = msgspec.json.Decoder(list[AnyPromptMessage])


def messages_from_dicts(items: list[dict[str, Any]]) -> list[PromptMessage]:
    """Build messages from plain dicts (``{"role": "user", "content": "hi"}``)."""
    return list(msgspec.convert(items, list[AnyPromptMessage]))
