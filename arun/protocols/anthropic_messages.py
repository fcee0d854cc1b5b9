"""Anthropic Messages API wire format (PROTOCOLS.md §2).

Pure functions, no I/O: entities -> request body bytes (:func:`build_messages_body`);
response bytes -> :class:`LLMResult` (:func:`parse_messages_response`); an incremental
:class:`MessagesStreamAssembler` over named SSE events; and :func:`classify_error`
for error statuses and in-stream ``event: error`` payloads.

Wire facts this module relies on:

- ``max_tokens`` is required; system prompts go to the top-level ``system`` field;
  roles must alternate, so consecutive same-role messages are merged; tool results
  are ``tool_result`` blocks inside a *user* message.
- Total input tokens = ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``.
- In a stream, ``message_delta.usage.output_tokens`` is **cumulative** (the last one wins);
  ``message_stop`` is the only terminal event (there is no ``[DONE]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk, LLMResultChunkDelta, LLMUsage
from arun.entities.messages import (
    AssistantPromptMessage,
    DocumentPromptMessageContent,
    ImagePromptMessageContent,
    PromptMessage,
    PromptMessageTool,
    SystemPromptMessage,
    TextPromptMessageContent,
    ToolCall,
    ToolCallDelta,
    ToolCallFunction,
    ToolPromptMessage,
    UserPromptMessage,
)
from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeError,
    InvokeModelNotFoundError,
    InvokeOverloadedError,
    InvokePermissionDeniedError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
)
from arun.protocols.errors import build_error, class_for_status, refine

__all__ = [
    "API_VERSION",
    "DEFAULT_MAX_TOKENS",
    "UsageFn",
    "system_to_wire",
    "messages_to_wire",
    "tools_to_wire",
    "build_messages_body",
    "parse_messages_response",
    "MessagesStreamAssembler",
    "classify_error",
    "error_class_for_type",
]

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # only when neither the caller nor the model schema gives one

UsageFn = Callable[[int | None, int | None, str], LLMUsage]  # (prompt, completion, text) -> usage

_SAMPLING_KEYS = ("temperature", "top_p", "top_k")

# -- request --------------------------------------------------------------------------


def _split_data_url(url: str) -> tuple[str, str] | None:
    """``data:image/png;base64,XXXX`` -> (media_type, data); None for other URLs."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or ";base64" not in head:
        return None
    return head[5:].split(";", 1)[0], data


def _source(part: ImagePromptMessageContent | DocumentPromptMessageContent, default_media: str) -> dict[str, Any]:
    if part.base64_data:
        media = part.mime_type or (f"{default_media.split('/')[0]}/{part.format}" if part.format else default_media)
        return {"type": "base64", "media_type": media, "data": part.base64_data}
    url = part.url
    inline = _split_data_url(url)
    if inline is not None:
        media, data = inline
        return {"type": "base64", "media_type": media or part.mime_type or default_media, "data": data}
    if not url:
        raise InvokeBadRequestError("Bad Request Error, a multimodal content part has neither data nor url")
    return {"type": "url", "url": url}


def _part_to_wire(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPromptMessageContent):
        return {"type": "text", "text": part.data} if part.data else None  # empty text blocks are rejected
    if isinstance(part, ImagePromptMessageContent):
        return {"type": "image", "source": _source(part, "image/png")}
    if isinstance(part, DocumentPromptMessageContent):
        return {"type": "document", "source": _source(part, "application/pdf")}
    raise InvokeBadRequestError(f"Bad Request Error, content type {part.type.value!r} is not supported by Anthropic")


def _content_blocks(content: str | list[Any] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        block = _part_to_wire(part)
        if block is not None:
            blocks.append(block)
    return blocks


def _tool_input(arguments: str) -> dict[str, Any]:
    """The JSON-string arguments of a tool call -> the ``input`` object Anthropic wants."""
    text = (arguments or "").strip()
    if not text:
        return {}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise InvokeBadRequestError(
            f"Bad Request Error, tool call arguments are not valid JSON: {text[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise InvokeBadRequestError("Bad Request Error, tool call arguments must be a JSON object")
    return value


def system_to_wire(messages: list[PromptMessage]) -> str | list[dict[str, Any]] | None:
    """Every system message's text: one string, or text blocks when there are several."""
    texts = [m.text() for m in messages if isinstance(m, SystemPromptMessage)]
    texts = [t for t in texts if t]
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0]
    return [{"type": "text", "text": t} for t in texts]


def _message_blocks(message: PromptMessage) -> tuple[str, list[dict[str, Any]]] | None:
    if isinstance(message, SystemPromptMessage):
        return None
    if isinstance(message, ToolPromptMessage):
        content = message.content
        if isinstance(content, list):
            inner: str | list[dict[str, Any]] = _content_blocks(content)
        else:
            inner = content or ""
        return "user", [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": inner}]
    if isinstance(message, AssistantPromptMessage):
        blocks = _content_blocks(message.content)
        for call in message.tool_calls:
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.function.name, "input": _tool_input(call.function.arguments)}
            )
        return "assistant", blocks
    if isinstance(message, UserPromptMessage):
        return "user", _content_blocks(message.content)
    raise InvokeBadRequestError(f"Bad Request Error, unknown message {type(message).__name__}")  # pragma: no cover


def messages_to_wire(messages: list[PromptMessage]) -> list[dict[str, Any]]:
    """Non-system messages as alternating user/assistant turns (same-role neighbours merged).

    Empty messages are dropped; in a merged user turn the ``tool_result`` blocks come first,
    as the API requires them right after the assistant's ``tool_use``.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        converted = _message_blocks(message)
        if converted is None:
            continue
        role, blocks = converted
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        content = turn["content"]
        if turn["role"] == "user" and len(content) > 1:
            results = [b for b in content if b["type"] == "tool_result"]
            if results and len(results) < len(content):
                turn["content"] = results + [b for b in content if b["type"] != "tool_result"]
    return out


def tools_to_wire(tools: list[PromptMessageTool]) -> list[dict[str, Any]]:
    return [
        {
            "name": t.name,
            "description": t.description,
            "input_schema": t.parameters or {"type": "object", "properties": {}},
        }
        for t in tools
    ]


def build_messages_body(
    model: str,
    messages: list[PromptMessage],
    parameters: Mapping[str, Any],
    tools: list[PromptMessageTool] | None,
    stop: list[str] | None,
    stream: bool,
    user: str | None,
    *,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The request body. ``parameters`` are the validated model parameters (keyed by rule name);
    ``extra`` (the caller's per-call body fields) is merged last."""
    max_tokens = parameters.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        max_tokens = default_max_tokens
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    system = system_to_wire(messages)
    if system is not None:
        body["system"] = system
    body["messages"] = messages_to_wire(messages)
    for key in _SAMPLING_KEYS:
        value = parameters.get(key)
        if value is not None:
            body[key] = value
    if parameters.get("thinking"):
        budget = parameters.get("thinking_budget")
        budget = budget if isinstance(budget, int) and budget >= 1024 else 1024
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        # extended thinking accepts neither temperature nor top_k (and top_p only in [0.95, 1])
        body.pop("temperature", None)
        body.pop("top_k", None)
        body.pop("top_p", None)
    if tools:
        body["tools"] = tools_to_wire(tools)
    if stop:
        body["stop_sequences"] = stop
    if user:
        body["metadata"] = {"user_id": user}
    if stream:
        body["stream"] = True
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


# -- wire structs (only the fields we read; unknown keys are ignored) ------------------


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    thinking: str | None = None


class _ErrorObject(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class _Message(msgspec.Struct):
    type: str | None = None
    id: str | None = None
    model: str | None = None
    content: list[_Block] = []
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: _Usage | None = None
    error: _ErrorObject | None = None  # a 200 body that is really an error envelope


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    index: int = 0
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorObject | None = None


class _ErrorEnvelope(msgspec.Struct):
    type: str | None = None
    error: _ErrorObject | str | None = None
    request_id: str | None = None
    message: str | None = None


_message_decoder = msgspec.json.Decoder(_Message)
_event_decoder = msgspec.json.Decoder(_Event)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)


def _input_tokens(usage: _Usage) -> int | None:
    if usage.input_tokens is None and usage.cache_creation_input_tokens is None and usage.cache_read_input_tokens is None:
        return None
    return (usage.input_tokens or 0) + (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)


def _compact_arguments(raw: str) -> str:
    """Re-encode tool input JSON compactly so stream and non-stream agree; invalid JSON is kept as sent."""
    if not raw.strip():
        return "{}"
    try:
        return msgspec.json.encode(msgspec.json.decode(raw)).decode()
    except msgspec.DecodeError:
        return raw


# -- errors -----------------------------------------------------------------------------

_TYPE_CLASSES: dict[str, type[InvokeError]] = {
    "invalid_request_error": InvokeBadRequestError,
    "authentication_error": InvokeAuthorizationError,
    "permission_error": InvokePermissionDeniedError,
    "not_found_error": InvokeModelNotFoundError,
    "request_too_large": InvokeBadRequestError,
    "rate_limit_error": InvokeRateLimitError,
    "billing_error": InvokeQuotaExhaustedError,
    "api_error": InvokeServerUnavailableError,
    "timeout_error": InvokeServerUnavailableError,
    "overloaded_error": InvokeOverloadedError,
}


def error_class_for_type(error_type: str | None, status: int | None) -> type[InvokeError]:
    """Anthropic ``error.type`` first, then the HTTP status; in a stream (no status) default to 5xx.

    A 408 stays a timeout whatever its type says (``timeout_error`` is a 5xx only at 504).
    """
    if status == 408:
        return class_for_status(status)
    cls = _TYPE_CLASSES.get(error_type or "")
    if cls is not None:
        return cls
    if status is None:
        return InvokeServerUnavailableError
    return class_for_status(status)


def _error(
    provider: str,
    err: _ErrorObject | None,
    text: str | None,
    status: int | None,
    headers: Mapping[str, str],
    body: bytes | None,
    request_id: str | None,
) -> InvokeError:
    error_type = err.type if err else None
    message = (err.message if err else None) or text
    cls = refine(error_class_for_type(error_type, status), error_type, message)
    where = "error event in stream" if status is None else f"HTTP {status}"
    if error_type:
        detail = f"{error_type}: {message}" if message else error_type
    else:
        detail = message or where
    exc = build_error(cls, provider, status, detail, headers, body, request_id_header="request-id", code=error_type)
    if exc.request_id is None and request_id:
        exc.request_id = request_id
    return exc


def classify_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> InvokeError:
    """An error status and body (``{"type":"error","error":{"type","message"},"request_id"}``) -> Invoke error."""
    text: str | None = None
    try:
        envelope = _error_decoder.decode(body.strip() or b"{}")
    except (msgspec.DecodeError, msgspec.ValidationError):
        envelope = _ErrorEnvelope()
        text = body[:500].decode("utf-8", "replace").strip() or None
    err = envelope.error if isinstance(envelope.error, _ErrorObject) else None
    if isinstance(envelope.error, str):
        text = envelope.error
    elif text is None:
        text = envelope.message
    return _error(provider, err, text, status, headers, body, envelope.request_id)


def _stream_error(provider: str, payload: bytes, err: _ErrorObject | None) -> InvokeError:
    return _error(provider, err, None, None, {}, payload, None)


# -- non-stream response ---------------------------------------------------------------


def parse_messages_response(
    provider: str, body: bytes, model: str, messages: list[PromptMessage], usage_fn: UsageFn
) -> LLMResult:
    try:
        response = _message_decoder.decode(body.strip())
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if response.type == "error" or response.error is not None:
        raise _error(provider, response.error, None, None, {}, body, None)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for block in response.content:
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "tool_use":
            arguments = msgspec.json.encode(block.input if block.input is not None else {}).decode()
            calls.append(
                ToolCall(id=block.id or f"toolu_{len(calls)}", function=ToolCallFunction(name=block.name or "", arguments=arguments))
            )
        elif block.type == "thinking" and block.thinking:
            thoughts.append(block.thinking)
    text = "".join(texts)
    usage = response.usage
    result_usage = usage_fn(
        _input_tokens(usage) if usage else None, usage.output_tokens if usage else None, text
    )
    return LLMResult(
        id=response.id,
        model=response.model or model,
        prompt_messages=messages,
        message=AssistantPromptMessage(content=text, tool_calls=calls),
        usage=result_usage,
        reasoning_content="".join(thoughts) or None,
        finish_reason=response.stop_reason,
    )


# -- stream ------------------------------------------------------------------------------


class _PendingCall:
    __slots__ = ("id", "name", "parts")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.parts: list[str] = []


class MessagesStreamAssembler:
    """Named SSE events -> content chunks; tool calls assembled and emitted with the terminal chunk.

    ``feed(event, payload)`` returns a chunk for every non-empty ``text_delta`` and None for
    bookkeeping events; an ``error`` event raises the typed error.  :meth:`final_chunk` raises
    :class:`InvokeStreamInterruptedError` unless ``message_stop`` was seen.
    """

    __slots__ = (
        "provider",
        "model",
        "messages",
        "usage_fn",
        "index",
        "calls",
        "finish_reason",
        "input_tokens",
        "output_tokens",
        "texts",
        "thoughts",
        "message_id",
        "done",
        "incremental",
    )

    def __init__(
        self, provider: str, model: str, messages: list[PromptMessage], usage_fn: UsageFn, *,
        incremental_tool_calls: bool = False,
    ) -> None:  # fmt: skip
        self.provider = provider
        self.model = model
        self.messages = messages
        self.usage_fn = usage_fn
        self.index = 0
        self.calls: dict[int, _PendingCall] = {}
        self.finish_reason: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.texts: list[str] = []
        self.thoughts: list[str] = []
        self.message_id: str | None = None
        self.done = False  # message_stop seen
        #: emit tool-call fragments (ToolCallDelta, index = the call's ordinal) as they arrive
        self.incremental = incremental_tool_calls

    def _usage(self, usage: _Usage | None) -> None:
        if usage is None:
            return
        total_in = _input_tokens(usage)
        if total_in is not None:
            self.input_tokens = total_in
        if usage.output_tokens is not None:
            self.output_tokens = usage.output_tokens  # cumulative: the last one wins

    def feed(self, event: str | None, payload: bytes, *, tail: bool = False) -> LLMResultChunk | None:
        """One SSE event (name, data) -> a content chunk, or None.

        ``tail=True`` marks an event flushed at end of body without its blank line: if it does
        not decode, the body was cut mid-event (:class:`InvokeStreamInterruptedError`).
        """
        out: list[LLMResultChunk] = []
        self.feed_into(((event, payload),), out, tail)
        return out[0] if out else None

    def feed_tail_into(self, events: Iterable[tuple[str | None, bytes]], out: list[LLMResultChunk]) -> None:
        """:meth:`feed_into` for what the decoder flushed at the end of the body (``tail=True``)."""
        self.feed_into(events, out, True)

    def feed_into(
        self, events: Iterable[tuple[str | None, bytes]], out: list[LLMResultChunk], tail: bool = False
    ) -> None:
        """The chunks of a network read's events appended to ``out`` (at most one per event);
        a failure leaves the chunks before it there."""
        decode = _event_decoder.decode
        messages = self.messages
        for event, payload in events:
            if event == "ping":
                continue
            try:
                ev = decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                if event == "error":
                    raise _error(self.provider, None, payload[:500].decode("utf-8", "replace"), None, {}, payload, None) from None
                if tail:
                    raise InvokeStreamInterruptedError(
                        f"[{self.provider}] Stream Interrupted: the upstream ended the stream in the middle of an event",
                        provider=self.provider,
                    ) from None
                raise InvokeServerUnavailableError(
                    f"[{self.provider}] Server Unavailable Error, malformed stream event: {exc}"
                ) from None
            kind = ev.type or event or ""
            if kind == "content_block_delta":
                delta = ev.delta
                if delta is None:
                    continue
                if delta.type == "text_delta":
                    text = delta.text
                    if text:
                        self.texts.append(text)
                        self.index += 1
                        out.append(LLMResultChunk(self.model, LLMResultChunkDelta(self.index, AssistantPromptMessage(text)), messages))
                elif delta.type == "input_json_delta":
                    call = self.calls.get(ev.index)
                    if call is not None and delta.partial_json:
                        call.parts.append(delta.partial_json)
                        if self.incremental:
                            ordinal = list(self.calls).index(ev.index)
                            out.append(self._fragment(ToolCallDelta("", ToolCallFunction("", delta.partial_json), "", ordinal)))
                elif delta.type == "thinking_delta" and delta.thinking:
                    self.thoughts.append(delta.thinking)
            elif kind == "content_block_start":
                block = ev.content_block
                if block is not None and block.type == "tool_use":
                    call = self.calls[ev.index] = _PendingCall(block.id or f"toolu_{ev.index}", block.name or "")
                    if isinstance(block.input, dict) and block.input:
                        call.parts.append(msgspec.json.encode(block.input).decode())
                    if self.incremental:
                        args = call.parts[0] if call.parts else ""
                        out.append(self._fragment(ToolCallDelta(call.id, ToolCallFunction(call.name, args), "function", len(self.calls) - 1)))
            elif kind == "message_start":
                if ev.message is not None:
                    self.message_id = ev.message.id
                    if ev.message.model:
                        self.model = ev.message.model
                    self._usage(ev.message.usage)
            elif kind == "message_delta":
                if ev.delta is not None and ev.delta.stop_reason:
                    self.finish_reason = ev.delta.stop_reason
                self._usage(ev.usage)
            elif kind == "message_stop":
                self.done = True
            elif kind == "error" or event == "error":
                raise _stream_error(self.provider, payload, ev.error)
            # content_block_stop, unknown future events: nothing to do

    def _fragment(self, fragment: ToolCallDelta) -> LLMResultChunk:
        self.index += 1
        return LLMResultChunk(
            model=self.model,
            prompt_messages=self.messages,
            delta=LLMResultChunkDelta(index=self.index, message=AssistantPromptMessage(content="", tool_calls=[fragment])),
        )

    def partial_usage(self, text: str) -> LLMUsage:
        """The usage of an answer that stopped after ``text`` (input tokens from message_start)."""
        return self.usage_fn(self.input_tokens, self.output_tokens, text)

    def final_chunk(self) -> LLMResultChunk:
        """The terminal chunk: assembled tool calls, finish reason and usage."""
        if not self.done:
            raise InvokeStreamInterruptedError(
                f"[{self.provider}] Stream Interrupted: the upstream ended the stream before message_stop",
                provider=self.provider,
            )
        calls = [] if self.incremental else [
            ToolCall(id=c.id, function=ToolCallFunction(name=c.name, arguments=_compact_arguments("".join(c.parts))))
            for _, c in sorted(self.calls.items())
        ]  # fmt: skip
        usage = self.usage_fn(self.input_tokens, self.output_tokens, "".join(self.texts))
        self.index += 1
        return LLMResultChunk(
            model=self.model,
            prompt_messages=self.messages,
            delta=LLMResultChunkDelta(
                index=self.index,
                message=AssistantPromptMessage(content="", tool_calls=calls),
                usage=usage,
                finish_reason=self.finish_reason or "end_turn",
            ),
        )
