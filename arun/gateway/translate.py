"""Pure translation between the OpenAI / Anthropic wire shapes and arun's entities.

Requests decode with typed msgspec decoders (one pass, the error names the field: ``Expected
`str`, got `int` - at `$.messages[0].content```); results and stream chunks encode to bytes.
No I/O here: the routes do the calls.
"""

from __future__ import annotations

import base64
import sys
import time
from array import array
from collections.abc import Iterable, Sequence
from typing import Any, Union

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk, LLMUsage
from arun.entities.messages import (
    AssistantPromptMessage,
    AudioPromptMessageContent,
    DocumentPromptMessageContent,
    ImagePromptMessageContent,
    PromptMessage,
    PromptMessageContent,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolCall,
    ToolCallDelta,
    ToolCallFunction,
    ToolPromptMessage,
    UserPromptMessage,
)
from arun.gateway.errors import GatewayError

__all__ = [
    "ChatRequest", "CompletionRequest", "EmbeddingRequest", "RerankRequest", "SpeechRequest", "ModerationRequest",
    "MessagesRequest", "decode", "chat_messages", "chat_tools", "split_parameters", "chat_parameters", "finish_reason",
    "chat_response", "ChunkEncoder", "embeddings_response", "anthropic_messages", "anthropic_response",
    "AnthropicEventEncoder",
]  # fmt: skip

_encode = msgspec.json.encode


# -- OpenAI chat request ---------------------------------------------------------------------------


class _TextPart(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class _ImageURL(msgspec.Struct):
    url: str
    detail: str | None = None


class _ImagePart(msgspec.Struct, tag_field="type", tag="image_url"):
    image_url: _ImageURL


class _InputAudio(msgspec.Struct):
    data: str
    format: str


class _AudioPart(msgspec.Struct, tag_field="type", tag="input_audio"):
    input_audio: _InputAudio


class _File(msgspec.Struct):
    file_data: str | None = None
    filename: str | None = None
    file_id: str | None = None


class _FilePart(msgspec.Struct, tag_field="type", tag="file"):
    file: _File


_Part = Union[_TextPart, _ImagePart, _AudioPart, _FilePart]


class _FunctionCall(msgspec.Struct):
    name: str
    arguments: str = ""


class _ToolCallIn(msgspec.Struct):
    id: str
    function: _FunctionCall
    type: str = "function"


class _System(msgspec.Struct, tag_field="role", tag="system"):
    content: str | list[_TextPart]
    name: str | None = None


class _Developer(msgspec.Struct, tag_field="role", tag="developer"):
    content: str | list[_TextPart]
    name: str | None = None


class _User(msgspec.Struct, tag_field="role", tag="user"):
    content: str | list[_Part]
    name: str | None = None


class _Assistant(msgspec.Struct, tag_field="role", tag="assistant"):
    content: str | list[_TextPart] | None = None
    tool_calls: list[_ToolCallIn] | None = None
    name: str | None = None
    refusal: str | None = None


class _Tool(msgspec.Struct, tag_field="role", tag="tool"):
    content: str | list[_TextPart]
    tool_call_id: str


_Message = Union[_System, _Developer, _User, _Assistant, _Tool]


class _FunctionDef(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _ToolDef(msgspec.Struct):
    function: _FunctionDef
    type: str = "function"


class _StreamOptions(msgspec.Struct):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class _ResponseFormat(msgspec.Struct):
    type: str
    json_schema: dict[str, Any] | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[_Message]
    stream: bool = False
    stream_options: _StreamOptions | None = None
    tools: list[_ToolDef] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    response_format: _ResponseFormat | None = None
    user: str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, Any] | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    prediction: Any = None
    modalities: Any = None
    verbosity: str | None = None


#: request fields an OpenAI-compatible upstream understands that have no arun parameter rule:
#: passed through (``extra_body``) to the OpenAI family only
PASS_THROUGH = ("tool_choice", "parallel_tool_calls", "logit_bias", "service_tier", "reasoning_effort", "metadata",
                "store", "prediction", "modalities", "verbosity")  # fmt: skip
#: request fields mapped onto the model's parameter rules (when the model has the rule)
_PARAMS = ("temperature", "top_p", "top_k", "presence_penalty", "frequency_penalty", "seed")


_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def decode(kind: type[Any], body: bytes) -> Any:
    """Decode a request body; malformed JSON or a wrong field -> 400 naming it."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return dec.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        param = None
        at = text.rfind("at `$.")
        if at >= 0:
            param = text[at + 6 : text.rfind("`")] or None
        raise GatewayError(400, f"Invalid request: {text}", code="invalid_value", param=param) from None
    except msgspec.DecodeError as exc:
        raise GatewayError(400, f"We could not parse the JSON body of your request: {exc}", code="invalid_json") from None


def _text_of(content: str | list[_TextPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content)


def _image(part: _ImagePart) -> ImagePromptMessageContent:
    detail = part.image_url.detail
    return ImagePromptMessageContent(url=part.image_url.url, detail="low" if detail == "low" else "high")


def _parts(content: list[_Part]) -> list[PromptMessageContent]:
    out: list[PromptMessageContent] = []
    for p in content:
        if isinstance(p, _TextPart):
            out.append(TextPromptMessageContent(data=p.text))
        elif isinstance(p, _ImagePart):
            out.append(_image(p))
        elif isinstance(p, _AudioPart):
            fmt = p.input_audio.format
            out.append(AudioPromptMessageContent(format=fmt, mime_type=f"audio/{fmt}", base64_data=p.input_audio.data))
        else:
            if not p.file.file_data:
                raise GatewayError(400, "file parts need file_data (file ids are not supported)", param="messages")
            name = p.file.filename or "document.pdf"
            out.append(DocumentPromptMessageContent(url=p.file.file_data, format=name.rsplit(".", 1)[-1]))
    return out


def chat_messages(messages: Sequence[_Message]) -> list[PromptMessage]:
    if not messages:
        raise GatewayError(400, "messages must not be empty", param="messages")
    out: list[PromptMessage] = []
    for m in messages:
        if isinstance(m, _User):
            content = m.content if isinstance(m.content, str) else _parts(m.content)
            out.append(UserPromptMessage(content=content, name=m.name))
        elif isinstance(m, _Assistant):
            calls = [ToolCall(c.id, ToolCallFunction(c.function.name, c.function.arguments), c.type) for c in m.tool_calls or ()]
            out.append(AssistantPromptMessage(content=_text_of(m.content), tool_calls=calls, name=m.name))
        elif isinstance(m, _Tool):
            out.append(ToolPromptMessage(content=_text_of(m.content), tool_call_id=m.tool_call_id))
        else:  # system, developer
            out.append(SystemPromptMessage(content=_text_of(m.content), name=m.name))
    return out


def chat_tools(tools: list[_ToolDef] | None, tool_choice: Any) -> list[PromptMessageTool] | None:
    if not tools or tool_choice == "none":
        return None
    return [PromptMessageTool(t.function.name, t.function.description or "", t.function.parameters or {}) for t in tools]


def split_parameters(
    req: Any, names: Iterable[str], rule_names: frozenset[str], openai_family: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request fields ``names`` that are set: (those the model has a parameter rule for, the
    rest for the OpenAI family's body as they are -- other families have nowhere to put them)."""
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name in names:
        value = getattr(req, name)
        if value is None:
            continue
        if name in rule_names:
            params[name] = value
        elif openai_family:
            extra[name] = value
    return params, extra


def chat_parameters(req: ChatRequest, rule_names: frozenset[str], openai_family: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(model parameters for the model's rules, pass-through body fields for the OpenAI family)."""
    if req.n is not None and req.n != 1:
        raise GatewayError(400, "only n=1 is supported", param="n", code="unsupported_value")
    params, extra = split_parameters(req, _PARAMS, rule_names, openai_family)
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if max_tokens is not None:
        if "max_tokens" in rule_names:
            params["max_tokens"] = max_tokens
        elif openai_family:
            extra["max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"] = max_tokens
    rf = req.response_format
    if rf is not None and rf.type != "text":
        if "response_format" in rule_names:
            params["response_format"] = rf.type
            if rf.type == "json_schema":
                if rf.json_schema is None:
                    raise GatewayError(400, "response_format json_schema needs json_schema", param="response_format.json_schema")
                params["json_schema"] = _encode(rf.json_schema).decode()
        elif openai_family:
            extra["response_format"] = msgspec.to_builtins(rf)
    if openai_family:
        for name in PASS_THROUGH:
            value = getattr(req, name)
            if value is not None:
                extra[name] = value
    return params, extra or None


def stop_words(stop: str | list[str] | None) -> list[str] | None:
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


#: finish reasons of every family -> OpenAI's
_FINISH = {"stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "length": "length", "max_tokens": "length",
           "tool_calls": "tool_calls", "tool_use": "tool_calls", "function_call": "function_call",
           "content_filter": "content_filter", "refusal": "content_filter", "pause_turn": "stop"}  # fmt: skip


def finish_reason(reason: str | None, has_tools: bool) -> str:
    out = _FINISH.get(reason or "stop", "stop")
    return "tool_calls" if has_tools and out == "stop" else out


def usage_json(u: LLMUsage | None) -> dict[str, int]:
    if u is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}


def _tool_calls_json(calls: Iterable[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}} for c in calls]


def chat_response(rid: str, model: str, result: LLMResult, created: int | None = None) -> bytes:
    calls = result.message.tool_calls
    text = result.message.content if isinstance(result.message.content, str) else result.message.text()
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = _tool_calls_json(calls)
    body = {
        "id": f"chatcmpl-{rid}", "object": "chat.completion", "created": created or int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(result.finish_reason, bool(calls))}],
        "usage": usage_json(result.usage), "system_fingerprint": result.system_fingerprint,
    }  # fmt: skip
    return _encode(body)


def completion_response(rid: str, model: str, result: LLMResult) -> bytes:
    return _encode({
        "id": f"cmpl-{rid}", "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": [{"text": result.message.text(), "index": 0, "logprobs": None,
                     "finish_reason": finish_reason(result.finish_reason, False)}],
        "usage": usage_json(result.usage),
    })  # fmt: skip


class ChunkEncoder:
    """LLMResultChunks -> ``data: {chat.completion.chunk}\\n\\n`` bytes (or ``text_completion`` ones).

    Everything but the delta is the same in every chunk of a stream: it is built once, here, so a
    text chunk costs one JSON string encoding and two concatenations.
    """

    __slots__ = ("_head", "_tail", "_text", "_first_text", "_text_end", "_first", "_tools", "_completion")

    def __init__(self, rid: str, model: str, *, completion: bool = False) -> None:
        created = int(time.time())
        self._completion = completion
        if completion:
            head = b'data: {"id":"cmpl-' + rid.encode() + b'","object":"text_completion","created":%d,"model":' % created + _encode(model) + b',"choices":[{"index":0,'
        else:
            head = b'data: {"id":"chatcmpl-' + rid.encode() + b'","object":"chat.completion.chunk","created":%d,"model":' % created + _encode(model) + b',"system_fingerprint":null,"choices":[{"index":0,"delta":'
        tail = b',"logprobs":null,"finish_reason":null}]}\n\n'
        self._head = head
        self._tail = tail
        # a text chunk: _text (or, for the first delta of a chat stream, _first_text) + the JSON string + _text_end
        self._text = head + (b'"text":' if completion else b'{"content":')
        self._first_text = self._text if completion else head + b'{"role":"assistant","content":'
        self._text_end = tail if completion else b"}" + tail
        self._first = True
        self._tools = False

    def chunk(self, chunk: LLMResultChunk) -> bytes:
        """The chunk's content and tool-call fragments (the finish reason comes from :meth:`finish`)."""
        message = chunk.delta.message
        content = message.content
        calls = message.tool_calls
        if self._completion:
            if not content:
                return b""
            return self._text + _encode(content) + self._text_end
        if not content and not calls:
            return b""
        if calls:
            self._tools = True
            delta: dict[str, Any] = {"tool_calls": [_fragment(c) for c in calls]}
            if content:
                delta["content"] = content
            if self._first:
                delta["role"] = "assistant"
                self._first = False
            return self._head + _encode(delta) + self._tail
        if self._first:
            self._first = False
            return self._first_text + _encode(content) + self._text_end
        return self._text + _encode(content) + self._text_end

    def finish(self, reason: str | None, usage: LLMUsage | None, include_usage: bool) -> bytes:
        """The finish chunk, the usage chunk when asked for, then ``[DONE]``."""
        fr = _encode(finish_reason(reason, self._tools))
        head = self._head
        if self._completion:
            out = head + b'"text":"","logprobs":null,"finish_reason":' + fr + b"}]}\n\n"
        else:
            delta = b'{"role":"assistant"}' if self._first else b"{}"
            out = head + delta + b',"logprobs":null,"finish_reason":' + fr + b"}]}\n\n"
        if include_usage:
            prefix = head[: head.index(b',"choices":')]
            out += prefix + b',"choices":[],"usage":' + _encode(usage_json(usage)) + b"}\n\n"
        return out + b"data: [DONE]\n\n"


def _fragment(c: ToolCall) -> dict[str, Any]:
    index = c.index if isinstance(c, ToolCallDelta) else 0
    out: dict[str, Any] = {"index": index}
    if c.id:
        out["id"] = c.id
        out["type"] = "function"
    fn: dict[str, str] = {"arguments": c.function.arguments}
    if c.function.name:
        fn["name"] = c.function.name
    out["function"] = fn
    return out


# -- completions, embeddings, rerank, audio, moderation ----------------------------------------------


class CompletionRequest(msgspec.Struct, kw_only=True):
    model: str
    prompt: str | list[str]
    stream: bool = False
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    echo: bool | None = None
    suffix: str | None = None
    user: str | None = None


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    model: str
    input: str | list[Any]
    encoding_format: str | None = None
    dimensions: int | None = None
    user: str | None = None


class RerankRequest(msgspec.Struct, kw_only=True):
    model: str
    query: str
    documents: list[Any]
    top_n: int | None = None
    return_documents: bool | None = None
    score_threshold: float | None = None
    user: str | None = None


class SpeechRequest(msgspec.Struct, kw_only=True):
    model: str
    input: str
    voice: str | None = None
    response_format: str | None = None
    speed: float | None = None
    instructions: str | None = None


class ModerationRequest(msgspec.Struct, kw_only=True):
    input: str | list[str]
    model: str | None = None


def pack_base64(vector: list[float]) -> str:
    arr = array("f", vector)
    if sys.byteorder != "little":
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def embeddings_response(model: str, vectors: list[list[float]], tokens: int, b64: bool) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": pack_base64(v) if b64 else v} for i, v in enumerate(vectors)]
    return _encode({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


#: moderation categories of OpenAI's schema; arun's moderation contract is a verdict (Dify's
#: boolean), so the categories are reported unknown: all false, scores 0
MODERATION_CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
                         "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
                         "violence", "violence/graphic")  # fmt: skip


def moderation_response(rid: str, model: str, flags: list[bool]) -> bytes:
    cats = dict.fromkeys(MODERATION_CATEGORIES, False)
    scores = dict.fromkeys(MODERATION_CATEGORIES, 0.0)
    applied: dict[str, list[str]] = {c: [] for c in MODERATION_CATEGORIES}
    results = [{"flagged": f, "categories": cats, "category_scores": scores, "category_applied_input_types": applied} for f in flags]
    return _encode({"id": f"modr-{rid}", "model": model, "results": results})


# -- Anthropic Messages ------------------------------------------------------------------------------


class _ABlockText(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class _ASource(msgspec.Struct):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class _ABlockImage(msgspec.Struct, tag_field="type", tag="image"):
    source: _ASource


class _ABlockDocument(msgspec.Struct, tag_field="type", tag="document"):
    source: _ASource


class _ABlockToolUse(msgspec.Struct, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: Any = None


class _ABlockToolResult(msgspec.Struct, tag_field="type", tag="tool_result"):
    tool_use_id: str
    content: str | list[_ABlockText | _ABlockImage] | None = None
    is_error: bool | None = None


class _ABlockThinking(msgspec.Struct, tag_field="type", tag="thinking"):
    thinking: str = ""
    signature: str | None = None


_ABlock = Union[_ABlockText, _ABlockImage, _ABlockDocument, _ABlockToolUse, _ABlockToolResult, _ABlockThinking]


class _AMessage(msgspec.Struct):
    role: str
    content: str | list[_ABlock]


class _ATool(msgspec.Struct):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class _AThinking(msgspec.Struct):
    type: str
    budget_tokens: int | None = None


class MessagesRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[_AMessage]
    max_tokens: int
    system: str | list[_ABlockText] | None = None
    tools: list[_ATool] | None = None
    tool_choice: Any = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    thinking: _AThinking | None = None


def _source_url(src: _ASource) -> str:
    if src.type == "base64":
        return f"data:{src.media_type or 'application/octet-stream'};base64,{src.data or ''}"
    return src.url or ""


def anthropic_messages(req: MessagesRequest) -> list[PromptMessage]:
    out: list[PromptMessage] = []
    if req.system:
        out.append(SystemPromptMessage(content=req.system if isinstance(req.system, str) else "".join(b.text for b in req.system)))
    for i, m in enumerate(req.messages):
        if m.role not in ("user", "assistant"):
            raise GatewayError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'", param=f"messages.{i}.role")
        if isinstance(m.content, str):
            out.append(UserPromptMessage(content=m.content) if m.role == "user" else AssistantPromptMessage(content=m.content))
            continue
        if m.role == "assistant":
            text = "".join(b.text for b in m.content if isinstance(b, _ABlockText))
            calls = [ToolCall(b.id, ToolCallFunction(b.name, _encode(b.input if b.input is not None else {}).decode()))
                     for b in m.content if isinstance(b, _ABlockToolUse)]  # fmt: skip
            out.append(AssistantPromptMessage(content=text, tool_calls=calls))
            continue
        parts: list[PromptMessageContent] = []
        for b in m.content:
            if isinstance(b, _ABlockToolResult):
                content = b.content
                text = content if isinstance(content, str) else "".join(x.text for x in content or () if isinstance(x, _ABlockText))
                out.append(ToolPromptMessage(content=text, tool_call_id=b.tool_use_id))
            elif isinstance(b, _ABlockText):
                parts.append(TextPromptMessageContent(data=b.text))
            elif isinstance(b, _ABlockImage):
                parts.append(ImagePromptMessageContent(url=_source_url(b.source), detail="high"))
            elif isinstance(b, _ABlockDocument):
                parts.append(DocumentPromptMessageContent(url=_source_url(b.source), format="pdf"))
        if parts:
            only_text = all(isinstance(p, TextPromptMessageContent) for p in parts)
            out.append(UserPromptMessage(content="".join(p.data for p in parts) if only_text else parts))
    return out


def anthropic_tools(req: MessagesRequest) -> list[PromptMessageTool] | None:
    if not req.tools:
        return None
    choice = req.tool_choice
    if isinstance(choice, dict) and choice.get("type") == "none":
        return None
    return [PromptMessageTool(t.name, t.description or "", t.input_schema or {"type": "object"}) for t in req.tools]


#: finish reasons of every family -> Anthropic's stop_reason
_STOP = {"stop": "end_turn", "end_turn": "end_turn", "length": "max_tokens", "max_tokens": "max_tokens",
         "tool_calls": "tool_use", "tool_use": "tool_use", "stop_sequence": "stop_sequence",
         "content_filter": "refusal", "refusal": "refusal", "pause_turn": "pause_turn"}  # fmt: skip


def stop_reason(reason: str | None, has_tools: bool) -> str:
    out = _STOP.get(reason or "end_turn", "end_turn")
    return "tool_use" if has_tools and out == "end_turn" else out


def _tool_input(arguments: str) -> Any:
    try:
        value = msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def anthropic_response(rid: str, model: str, result: LLMResult) -> bytes:
    content: list[dict[str, Any]] = []
    text = result.message.text()
    if text:
        content.append({"type": "text", "text": text})
    for c in result.message.tool_calls:
        content.append({"type": "tool_use", "id": c.id, "name": c.function.name, "input": _tool_input(c.function.arguments)})
    u = result.usage
    return _encode({
        "id": f"msg_{rid}", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason(result.finish_reason, bool(result.message.tool_calls)), "stop_sequence": None,
        "usage": {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens},
    })  # fmt: skip


def _event(name: bytes, obj: Any) -> bytes:
    return b"event: " + name + b"\ndata: " + _encode(obj) + b"\n\n"


class AnthropicEventEncoder:
    """LLMResultChunks -> Anthropic's named SSE events (text and tool_use blocks, by index)."""

    __slots__ = ("rid", "model", "_block", "_open", "_tools", "_call_blocks", "_text_delta", "started")

    def __init__(self, rid: str, model: str) -> None:
        self.rid = rid
        self.model = model
        self._block = -1  # index of the current content block
        self._open: str | None = None  # "text" | "tool_use" | None
        self._tools = False
        self._call_blocks: dict[int, int] = {}  # tool-call index -> block index
        #: the open text block's content_block_delta event up to its text (built once per block)
        self._text_delta = b""
        self.started = False

    def start(self) -> bytes:
        self.started = True
        return _event(b"message_start", {"type": "message_start", "message": {
            "id": f"msg_{self.rid}", "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}})  # fmt: skip

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event(b"content_block_stop", {"type": "content_block_stop", "index": self._block})

    def chunk(self, chunk: LLMResultChunk) -> bytes:
        message = chunk.delta.message
        content = message.content
        text = content if content and isinstance(content, str) else None
        if text is not None and self._open == "text" and not message.tool_calls:  # the common chunk: more text
            return self._text_delta + _encode(text) + b"}}\n\n"
        out = b""
        if text is not None:
            if self._open != "text":
                out += self._close()
                self._block += 1
                self._open = "text"
                self._text_delta = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                                    b'"delta":{"type":"text_delta","text":' % self._block)  # fmt: skip
                out += _event(b"content_block_start", {"type": "content_block_start", "index": self._block,
                                                       "content_block": {"type": "text", "text": ""}})  # fmt: skip
            out += self._text_delta + _encode(text) + b"}}\n\n"
        for c in message.tool_calls:
            self._tools = True
            ordinal = c.index if isinstance(c, ToolCallDelta) else len(self._call_blocks)
            block = self._call_blocks.get(ordinal)
            if block is None:
                out += self._close()
                self._block += 1
                block = self._call_blocks[ordinal] = self._block
                self._open = "tool_use"
                out += _event(b"content_block_start", {"type": "content_block_start", "index": block, "content_block": {
                    "type": "tool_use", "id": c.id or f"toolu_{ordinal}", "name": c.function.name, "input": {}}})  # fmt: skip
            if c.function.arguments:
                out += _event(b"content_block_delta", {"type": "content_block_delta", "index": block,
                                                       "delta": {"type": "input_json_delta", "partial_json": c.function.arguments}})  # fmt: skip
        return out

    def finish(self, reason: str | None, usage: LLMUsage | None) -> bytes:
        out = self._close()
        u = usage or LLMUsage.empty_usage()
        out += _event(b"message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop_reason(reason, self._tools), "stop_sequence": None},
                                         "usage": {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}})  # fmt: skip
        return out + _event(b"message_stop", {"type": "message_stop"})
