"""Ollama native wire format (``/api/chat`` NDJSON, ``/api/embed``), as pure functions.

Differences from the OpenAI family that this module absorbs:

* images travel as a list of bare base64 strings on the message (no data-URL prefix);
* tool-call ``arguments`` are JSON *objects* on the wire, strings in our entities;
* sampling parameters live in ``options`` (``num_predict`` is max tokens), while
  ``format`` and ``keep_alive`` are top-level;
* a stream is NDJSON: one object per line, tool calls arrive whole, the last line
  carries ``done: true``, ``done_reason`` and the token counts (omitted when zero);
* errors are ``{"error": "text"}``, with a real status or as the last line of a
  200 stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk, LLMResultChunkDelta, LLMUsage
from arun.entities.messages import (
    AssistantPromptMessage,
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
    InvokeBadRequestError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeModelNotFoundError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
)
from arun.protocols.errors import build_error, class_for_status, refine

__all__ = [
    "OPTION_KEYS",
    "message_to_wire",
    "messages_to_wire",
    "build_chat_body",
    "parse_chat_response",
    "OllamaStreamAssembler",
    "build_embed_body",
    "parse_embed_response",
    "classify_error",
    "stream_error",
    "UsageFn",
]

UsageFn = Callable[[int | None, int | None, str], LLMUsage]  # (prompt, completion, text) -> usage

#: model parameters that go into ``options`` (everything Ollama's runner understands that we expose)
OPTION_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "typical_p",
        "num_predict",
        "num_ctx",
        "num_keep",
        "num_batch",
        "num_gpu",
        "num_thread",
        "repeat_penalty",
        "repeat_last_n",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "mirostat",
        "mirostat_eta",
        "mirostat_tau",
        "tfs_z",
        "stop",
    }
)

_DATA_URL = re.compile(r"^data:[^;,]*(;[^,]*)?;base64,", re.IGNORECASE)

# -- request ------------------------------------------------------------------------------


def _image_to_wire(part: ImagePromptMessageContent) -> str:
    if part.base64_data:
        return part.base64_data
    url = part.url
    match = _DATA_URL.match(url)
    if match:
        return url[match.end() :]
    raise InvokeBadRequestError(
        "Bad Request Error, Ollama accepts images only as base64 data, not remote URLs"
    )


def _arguments_to_wire(arguments: str) -> dict[str, Any]:
    """Our JSON-string arguments -> the object Ollama expects (unparsable text becomes ``{}``)."""
    if not arguments:
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def message_to_wire(message: PromptMessage, tool_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    if isinstance(message, UserPromptMessage):
        content = message.content
        if content is None or isinstance(content, str):
            return {"role": "user", "content": content or ""}
        texts: list[str] = []
        images: list[str] = []
        for part in content:
            if isinstance(part, TextPromptMessageContent):
                texts.append(part.data)
            elif isinstance(part, ImagePromptMessageContent):
                images.append(_image_to_wire(part))
            else:
                raise InvokeBadRequestError(
                    f"Bad Request Error, content type {part.type.value!r} is not supported by Ollama"
                )
        out: dict[str, Any] = {"role": "user", "content": "\n".join(texts)}
        if images:
            out["images"] = images
        return out
    if isinstance(message, AssistantPromptMessage):
        out = {"role": "assistant", "content": message.text()}
        if message.tool_calls:
            out["tool_calls"] = [
                {"function": {"name": c.function.name, "arguments": _arguments_to_wire(c.function.arguments)}}
                for c in message.tool_calls
            ]
        return out
    if isinstance(message, SystemPromptMessage):
        return {"role": "system", "content": message.text()}
    if isinstance(message, ToolPromptMessage):
        out = {"role": "tool", "content": message.text()}
        name = message.name or (tool_names or {}).get(message.tool_call_id)
        if name:
            out["tool_name"] = name
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
        return out
    raise InvokeBadRequestError(f"Bad Request Error, unknown message {type(message).__name__}")  # pragma: no cover


def messages_to_wire(messages: list[PromptMessage]) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}
    out = []
    for m in messages:
        if isinstance(m, AssistantPromptMessage):
            for c in m.tool_calls:
                tool_names[c.id] = c.function.name
        out.append(message_to_wire(m, tool_names))
    return out


def _format_value(value: Any) -> Any:
    """``format`` parameter: ``"json"``, a JSON-schema text, or a schema object; empty/"text" -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text == "text":
            return None
        if text.startswith("{"):
            try:
                return msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise InvokeBadRequestError("Bad Request Error, format is not valid JSON") from None
        return text
    return value


def build_chat_body(
    model: str,
    messages: list[PromptMessage],
    parameters: Mapping[str, Any],
    tools: list[PromptMessageTool] | None,
    stop: list[str] | None,
    stream: bool,
    *,
    completion_mode: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """An ``/api/chat`` body. ``completion_mode`` sends the whole prompt as one user message;
    ``extra`` (the caller's per-call body fields) is merged last."""
    params = dict(parameters)
    options: dict[str, Any] = {}
    if "max_tokens" in params:
        options["num_predict"] = params.pop("max_tokens")
    fmt = _format_value(params.pop("format", None))
    keep_alive = params.pop("keep_alive", None)
    for key, value in params.items():
        if key in OPTION_KEYS and value is not None:
            options[key] = value
    if stop:
        options["stop"] = list(stop)
    if completion_mode:
        wire_messages = [{"role": "user", "content": "\n".join(m.text() for m in messages)}]
    else:
        wire_messages = messages_to_wire(messages)
    body: dict[str, Any] = {"model": model, "messages": wire_messages, "stream": stream}
    if tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in tools
        ]
    if options:
        body["options"] = options
    if fmt is not None:
        body["format"] = fmt
    if keep_alive not in (None, ""):
        body["keep_alive"] = keep_alive
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


# -- wire structs ---------------------------------------------------------------------------


class _Function(msgspec.Struct):
    name: str = ""
    arguments: dict[str, Any] | str | None = None
    index: int | None = None


class _ToolCall(msgspec.Struct):
    function: _Function | None = None
    id: str | None = None


class _Message(msgspec.Struct):
    role: str | None = None
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChatLine(msgspec.Struct):
    model: str | None = None
    message: _Message | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: str | None = None


class _EmbedResponse(msgspec.Struct):
    model: str | None = None
    embeddings: list[list[float]] | None = None
    prompt_eval_count: int | None = None
    error: str | None = None


class _ErrorBody(msgspec.Struct):
    error: Any = None


_line_decoder = msgspec.json.Decoder(_ChatLine)
_embed_decoder = msgspec.json.Decoder(_EmbedResponse)
_error_decoder = msgspec.json.Decoder(_ErrorBody)


def _encode_arguments(value: dict[str, Any] | str | None) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _to_tool_calls(items: list[_ToolCall] | None, start: int = 0) -> list[ToolCall]:
    if not items:
        return []
    out = []
    for i, c in enumerate(items, start):
        fn = c.function or _Function()
        out.append(
            ToolCall(id=c.id or f"call_{i}", function=ToolCallFunction(name=fn.name, arguments=_encode_arguments(fn.arguments)))
        )
    return out


# -- errors -----------------------------------------------------------------------------------

_NOT_FOUND = re.compile(r"model ['\"]?[^'\"]*['\"]? not found|not found, try pulling", re.IGNORECASE)


def _message_of(body: bytes) -> str | None:
    text = body.strip()
    if not text:
        return None
    try:
        err = _error_decoder.decode(text).error
    except msgspec.DecodeError:
        return text[:500].decode("utf-8", "replace")
    if isinstance(err, str):
        return err
    if isinstance(err, dict):
        msg = err.get("message")
        return str(msg) if msg else msgspec.json.encode(err).decode()
    return None if err is None else str(err)


def classify_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> InvokeError:
    """An error status and ``{"error": "..."}`` body -> the Invoke error class.

    404 ``model "x" not found`` is a model-not-found bad request; 400 bad request (refined for
    context length); 401/403 authorization (ollama.com cloud); 429 rate limit; 5xx unavailable.
    """
    message = _message_of(body)
    cls = class_for_status(status)
    if status == 404 and message and not _NOT_FOUND.search(message):
        # a 404 without the model message is a wrong base URL / path, not a missing model
        cls = InvokeBadRequestError
    if cls is InvokeBadRequestError and message and "context length" in message.lower():
        cls = InvokeContextLengthExceededError
    cls = refine(cls, message)
    return build_error(cls, provider, status, message or f"HTTP {status}", headers, body)


def stream_error(provider: str, message: str | None, raw: bytes | None = None) -> InvokeError:
    """An ``{"error": ...}`` line inside a 200 stream (or body) -> an Invoke error."""
    text = message or "error in stream"
    lowered = text.lower()
    if _NOT_FOUND.search(text):
        cls: type[InvokeError] = InvokeModelNotFoundError
    elif "context length" in lowered or "context window" in lowered:
        cls = InvokeContextLengthExceededError
    elif "invalid" in lowered or "bad request" in lowered:
        cls = InvokeBadRequestError
    else:
        cls = InvokeServerUnavailableError
    cls = refine(cls, text)
    return build_error(cls, provider, None, text, None, raw)


# -- non-stream ----------------------------------------------------------------------------------


def _decode_line(provider: str, raw: bytes) -> _ChatLine:
    try:
        return _line_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None


def parse_chat_response(
    provider: str, body: bytes, model: str, messages: list[PromptMessage], usage_fn: UsageFn
) -> LLMResult:
    line = _decode_line(provider, body.strip())
    if line.error is not None:
        raise stream_error(provider, line.error, body)
    if not line.done or line.message is None:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the response is incomplete")
    message = line.message
    text = message.content or ""
    return LLMResult(
        model=line.model or model,
        prompt_messages=messages,
        message=AssistantPromptMessage(content=text, tool_calls=_to_tool_calls(message.tool_calls)),
        usage=usage_fn(line.prompt_eval_count, line.eval_count, text),
        reasoning_content=message.thinking or None,
        finish_reason=line.done_reason or "stop",
    )


# -- stream -----------------------------------------------------------------------------------------


class OllamaStreamAssembler:
    """Feed NDJSON lines; content becomes chunks, tool calls and usage go on the terminal chunk."""

    __slots__ = ("provider", "model", "messages", "usage_fn", "index", "calls", "texts", "done", "done_reason",
                 "prompt_tokens", "completion_tokens", "incremental")

    def __init__(
        self, provider: str, model: str, messages: list[PromptMessage], usage_fn: UsageFn, *,
        incremental_tool_calls: bool = False,
    ) -> None:  # fmt: skip
        self.provider = provider
        self.model = model
        self.messages = messages
        self.usage_fn = usage_fn
        self.index = 0
        self.calls: list[ToolCall] = []
        self.texts: list[str] = []
        self.done = False
        self.done_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        #: tool calls arrive whole on this wire: emit each as one ToolCallDelta as soon as it arrives
        self.incremental = incremental_tool_calls

    def feed(self, raw: bytes) -> LLMResultChunk | None:
        """One NDJSON line -> a content chunk, or None."""
        out: list[LLMResultChunk] = []
        self.feed_into((raw,), out)
        return out[0] if out else None

    def feed_into(self, lines: Iterable[bytes], out: list[LLMResultChunk]) -> None:
        """The chunks of a network read's lines appended to ``out`` (at most one per line); a failure
        leaves the chunks before it there."""
        decode = _line_decoder.decode
        model = self.model
        messages = self.messages
        for raw in lines:
            if self.done:
                return  # nothing is meaningful after the final line
            try:
                line = decode(raw)
            except msgspec.DecodeError as exc:
                raise InvokeServerUnavailableError(f"[{self.provider}] Server Unavailable Error, malformed response: {exc}") from None
            if line.error is not None:
                raise stream_error(self.provider, line.error, raw)
            message = line.message
            if line.done:
                self.done = True
                self.done_reason = line.done_reason
                self.prompt_tokens = line.prompt_eval_count
                self.completion_tokens = line.eval_count
            if message is None:
                continue
            text = message.content
            if message.tool_calls:
                start = len(self.calls)
                new = _to_tool_calls(message.tool_calls, start)
                self.calls.extend(new)
                if self.incremental:
                    if text:
                        self.texts.append(text)
                    self.index += 1
                    fragments: list[ToolCall] = [ToolCallDelta(c.id, c.function, c.type, start + i) for i, c in enumerate(new)]
                    out.append(LLMResultChunk(model, LLMResultChunkDelta(self.index, AssistantPromptMessage(text or "", tool_calls=fragments)), messages))  # fmt: skip
                    continue
            if not text:
                continue
            self.texts.append(text)
            self.index += 1
            out.append(LLMResultChunk(model, LLMResultChunkDelta(self.index, AssistantPromptMessage(text)), messages))

    def partial_usage(self, text: str) -> LLMUsage:
        """The usage of an answer that stopped after ``text`` (Ollama reports counts only at the end)."""
        return self.usage_fn(self.prompt_tokens, self.completion_tokens, text)

    def final_chunk(self) -> LLMResultChunk:
        if not self.done:
            raise InvokeStreamInterruptedError(
                f"[{self.provider}] Stream Interrupted: the upstream ended the stream before its final line"
            )
        self.index += 1
        usage = self.usage_fn(self.prompt_tokens, self.completion_tokens, "".join(self.texts))
        return LLMResultChunk(
            model=self.model,
            prompt_messages=self.messages,
            delta=LLMResultChunkDelta(
                index=self.index,
                message=AssistantPromptMessage(content="", tool_calls=[] if self.incremental else list(self.calls)),
                usage=usage,
                finish_reason=self.done_reason or "stop",
            ),
        )


# -- embeddings ------------------------------------------------------------------------------------


def build_embed_body(
    model: str,
    texts: list[str],
    *,
    truncate: bool = True,
    dimensions: int | None = None,
    keep_alive: str | None = None,
    options: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {"model": model, "input": texts, "truncate": truncate}
    if dimensions:
        body["dimensions"] = dimensions
    if keep_alive:
        body["keep_alive"] = keep_alive
    if options:
        body["options"] = dict(options)
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


def parse_embed_response(provider: str, body: bytes, expected: int) -> tuple[list[list[float]], int | None]:
    """``/api/embed`` body -> (vectors in input order, prompt_eval_count or None)."""
    try:
        resp = _embed_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if resp.error is not None:
        raise stream_error(provider, resp.error, body)
    vectors = resp.embeddings or []
    if len(vectors) != expected:
        raise InvokeServerUnavailableError(
            f"[{provider}] Server Unavailable Error, expected {expected} embeddings, got {len(vectors)}"
        )
    return vectors, resp.prompt_eval_count
