"""OpenAI Chat Completions wire format (also every OpenAI-compatible server).

Pure functions: entities -> request body bytes; response bytes -> entities;
an incremental :class:`ChatStreamAssembler` for ``data:`` events; and
:func:`classify_error` for error statuses and in-stream error objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from arun.entities.llm import LLMResult, LLMResultChunk, LLMResultChunkDelta, LLMUsage
from arun.entities.messages import (
    AssistantPromptMessage,
    AudioPromptMessageContent,
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
    InvokeContentFilteredError,
    InvokeError,
    InvokeQuotaExhaustedError,
    InvokeServerUnavailableError,
    InvokeStreamInterruptedError,
)
from arun.protocols.errors import build_error, class_for_status, refine

__all__ = [
    "build_completion_body",
    "parse_completion_response",
    "message_to_wire",
    "tools_to_wire",
    "build_chat_body",
    "parse_chat_response",
    "ChatStreamAssembler",
    "classify_error",
    "base_resp_error",
    "UsageFn",
]

UsageFn = Callable[[int | None, int | None, str], LLMUsage]  # (prompt, completion, text) -> usage

# -- request --------------------------------------------------------------------------


def _part_to_wire(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPromptMessageContent):
        return {"type": "text", "text": part.data}
    if isinstance(part, ImagePromptMessageContent):
        return {"type": "image_url", "image_url": {"url": part.data, "detail": part.detail}}
    if isinstance(part, AudioPromptMessageContent):
        return {"type": "input_audio", "input_audio": {"data": part.base64_data, "format": part.format}}
    if isinstance(part, DocumentPromptMessageContent):
        return {"type": "file", "file": {"file_data": part.data, "filename": f"document.{part.format or 'pdf'}"}}
    raise InvokeBadRequestError(f"Bad Request Error, content type {part.type.value!r} is not supported")


def message_to_wire(message: PromptMessage) -> dict[str, Any]:
    content = message.content
    if isinstance(message, ToolPromptMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text()}
    if isinstance(message, AssistantPromptMessage):
        out: dict[str, Any] = {"role": "assistant", "content": message.text() or None}
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in message.tool_calls
            ]
    elif isinstance(message, SystemPromptMessage):
        out = {"role": "system", "content": message.text()}
    elif isinstance(message, UserPromptMessage):
        wire = content if isinstance(content, str) or content is None else [_part_to_wire(p) for p in content]
        out = {"role": "user", "content": wire if wire is not None else ""}
    else:  # pragma: no cover - the union is closed
        raise InvokeBadRequestError(f"Bad Request Error, unknown message {type(message).__name__}")
    if message.name:
        out["name"] = message.name
    return out


def tools_to_wire(tools: list[PromptMessageTool]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
        for t in tools
    ]


def build_chat_body(
    model: str,
    messages: list[PromptMessage],
    parameters: Mapping[str, Any],
    tools: list[PromptMessageTool] | None,
    stop: list[str] | None,
    stream: bool,
    user: str | None,
    *,
    include_usage: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """``extra`` (the caller's per-call body fields) is merged last, so it may refine anything."""
    body: dict[str, Any] = {"model": model, "messages": [message_to_wire(m) for m in messages]}
    body.update(parameters)
    if tools:
        body["tools"] = tools_to_wire(tools)
    return _encode_request(body, stop, stream, user, include_usage, extra)


def _encode_request(
    body: dict[str, Any], stop: list[str] | None, stream: bool, user: str | None, include_usage: bool,
    extra: Mapping[str, Any] | None,
) -> bytes:
    """The fields chat and completion requests share, then the caller's ``extra`` (merged last)."""
    if stop:
        body["stop"] = stop
    if user:
        body["user"] = user
    body["stream"] = stream
    if stream and include_usage:
        body["stream_options"] = {"include_usage": True}
    if extra:
        body.update(extra)
    return msgspec.json.encode(body)


# -- wire structs (only the fields we read; unknown keys are ignored) ------------------
#
# gc=False: decoded wire values never take part in reference cycles, so the garbage
# collector need not track the half-dozen objects every stream event allocates.


class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _ToolCallDelta(msgspec.Struct, gc=False):
    index: int = 0
    id: str | None = None
    type: str | None = None
    function: _Function | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None
    function_call: _Function | None = None  # OpenAI's deprecated single call (ChatGLM3's API server)


class _StreamChoice(msgspec.Struct, gc=False):
    delta: _Delta | None = None
    text: str | None = None  # the legacy /completions API streams text, not a delta
    finish_reason: str | None = None
    usage: _Usage | None = None  # Moonshot puts usage inside the choice


class _ErrorObject(msgspec.Struct, gc=False):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None
    innererror: Any = None  # Azure: {"code": "ResponsibleAIPolicyViolation", ...} when content is filtered


class _BaseResp(msgspec.Struct, gc=False):
    """MiniMax's status envelope: ``status_code != 0`` is an error, even in a 200 body."""

    status_code: int = 0
    status_msg: str | None = None


class _XGroq(msgspec.Struct, gc=False):
    """Groq puts the stream's usage under ``x_groq`` on its last chunk."""

    usage: _Usage | None = None


class _Chunk(msgspec.Struct, gc=False):
    system_fingerprint: str | None = None
    choices: list[_StreamChoice] | None = []  # null in MiniMax's error answers
    usage: _Usage | None = None
    error: _ErrorObject | str | None = None  # a bare string: Xinference's in-stream error event
    base_resp: _BaseResp | None = None
    x_groq: _XGroq | None = None
    code: int | str | None = None  # iFlytek Spark: 0 on every answer, an error code otherwise
    message: str | None = None
    sid: str | None = None


class _Message(msgspec.Struct, gc=False):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None
    function_call: _Function | None = None  # OpenAI's deprecated single call (ChatGLM3's API server)
    refusal: str | None = None


class _Choice(msgspec.Struct, gc=False):
    index: int = 0
    message: _Message | None = None
    finish_reason: str | None = None


class _Response(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[_Choice] | None = []  # null in MiniMax's error answers
    usage: _Usage | None = None
    error: _ErrorObject | str | None = None
    base_resp: _BaseResp | None = None
    code: int | str | None = None  # iFlytek Spark: 0 on every answer, an error code otherwise
    message: str | None = None
    sid: str | None = None


class _ErrorEnvelope(msgspec.Struct, gc=False):
    error: _ErrorObject | str | None = None
    detail: Any = None
    message: str | None = None
    title: str | None = None  # RFC 7807 problem details (NVIDIA's API catalog): detail, else title
    base_resp: _BaseResp | None = None


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_response_decoder = msgspec.json.Decoder(_Response)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)


def _arguments(value: str | dict[str, Any] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


# -- errors -----------------------------------------------------------------------------


def _error_from_object(provider: str, err: _ErrorObject, status: int | None, headers: Mapping[str, str], body: bytes | None) -> InvokeError:
    code = str(err.code) if err.code is not None else None
    inner_code = err.innererror.get("code") if isinstance(err.innererror, dict) else None
    inner = str(inner_code) if inner_code is not None else None  # Azure: ResponsibleAIPolicyViolation
    if status is None:
        # an error object inside a 200 stream: classify by its type/code
        hint = f"{err.type or ''} {code or ''}".lower()
        if code is not None and code.isdigit() and 400 <= int(code) <= 599:
            status = int(code)  # an HTTP status as the code (OpenRouter {"code": 502}, vLLM, LocalAI)
        elif "rate_limit" in hint or "insufficient_quota" in hint:
            status = 429
        elif "auth" in hint or "invalid_api_key" in hint or "permission" in hint:
            status = 401
        elif "server_error" in hint or "overloaded" in hint or "unavailable" in hint or not hint.strip():
            status = 503
        else:
            status = 400
        cls = refine(class_for_status(status), err.type, code, inner, err.message, codes=(err.type, code, inner))
        return build_error(cls, provider, None, err.message or "error event in stream", headers, body, code=code or err.type)
    cls = refine(class_for_status(status), err.type, code, inner, err.message, codes=(err.type, code, inner))
    return build_error(cls, provider, status, err.message or f"HTTP {status}", headers, body, code=code or err.type)


def _error_object(err: _ErrorObject | str) -> _ErrorObject:
    return err if isinstance(err, _ErrorObject) else _ErrorObject(message=err)


def classify_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> InvokeError:
    """An error status and body (``{"error": {...}}``, ``{"detail": ...}``, text) -> Invoke error."""
    try:
        envelope = _error_decoder.decode(body.strip() or b"{}")
    except msgspec.DecodeError:
        envelope = _ErrorEnvelope(message=body[:500].decode("utf-8", "replace").strip() or None)
    err = envelope.error
    if isinstance(err, _ErrorObject):
        return _error_from_object(provider, err, status, headers, body)
    if envelope.base_resp is not None and envelope.base_resp.status_code != 0:
        return _base_resp_error(provider, envelope.base_resp, body, status, headers)
    text = err if isinstance(err, str) else envelope.message or (str(envelope.detail) if envelope.detail else None)
    text = text or envelope.title
    cls = refine(class_for_status(status), text)
    return build_error(cls, provider, status, text or f"HTTP {status}", headers, body)



# -- provider variations read generically ------------------------------------------------------

#: finish reasons some providers send instead of OpenAI's (Dify reports OpenAI's values):
#: Zhipu ``sensitive`` (docs.bigmodel.cn, chat completion ``finish_reason``).
FINISH_ALIASES = {"sensitive": "content_filter", "content_filtered": "content_filter", "eos": "stop"}

#: finish reasons that mean the generation failed: the answer is not complete, so it ends in a
#: typed error, never in a short "success" (Zhipu ``network_error``: model inference failed;
#: DeepSeek ``insufficient_system_resource``: generation cut for lack of capacity).
ERROR_FINISH = frozenset({"network_error", "insufficient_system_resource", "error"})

#: MiniMax ``base_resp.status_code`` -> the HTTP status it means (platform.minimax.io/docs/api-reference/errorcode:
#: 1000 unknown, 1001 timeout, 1002 rate limit, 1004 not authorized, 1008 insufficient balance,
#: 1024 internal, 1026 / 1027 input / output sensitive, 1033 system error, 1039 token (rate) limit,
#: 1041 connection limit, 1042 invisible characters, 2013 invalid parameters, 2045 rate growth
#: limit, 2049 invalid API key, 2056 usage limit of the plan's window).
BASE_RESP_STATUS = {
    1000: 500, 1001: 504, 1002: 429, 1004: 401, 1008: 429, 1013: 500, 1024: 500, 1026: 400, 1027: 400,
    1033: 500, 1039: 429, 1041: 429, 1042: 400, 2013: 400, 2045: 429, 2049: 401, 2056: 429,
}  # fmt: skip
_BASE_RESP_HINT = {1008: "insufficient_quota", 2056: "insufficient_quota", 1026: "content_filter", 1027: "content_filter"}
#: the codes that decide the class whatever HTTP status carries them
_BASE_RESP_FIXED: dict[int, type[InvokeError]] = {
    1004: InvokeAuthorizationError, 2049: InvokeAuthorizationError,
    1008: InvokeQuotaExhaustedError, 2056: InvokeQuotaExhaustedError,
    1026: InvokeContentFilteredError, 1027: InvokeContentFilteredError,
}  # fmt: skip


def _base_resp_error(
    provider: str, resp: _BaseResp, body: bytes | None, http_status: int | None = None, headers: Mapping[str, str] | None = None
) -> InvokeError:
    """A nonzero ``base_resp``: in a 200 body its code alone says what failed; with an error status
    the status does, refined by the codes whose meaning is fixed (auth, balance, sensitive content)."""
    message = f"{resp.status_msg or 'error'} (status_code {resp.status_code})"
    fixed = _BASE_RESP_FIXED.get(resp.status_code)
    if http_status is not None:
        cls = fixed or class_for_status(http_status)
    else:
        status = BASE_RESP_STATUS.get(resp.status_code, 500 if resp.status_code >= 1000 else 400)
        cls = fixed or refine(class_for_status(status), _BASE_RESP_HINT.get(resp.status_code), resp.status_msg)
    return build_error(cls, provider, http_status, message, headers or {}, body)


def base_resp_error(provider: str, status_code: int, status_msg: str | None, body: bytes | None) -> InvokeError:
    """MiniMax's ``base_resp`` with a nonzero ``status_code`` (any MiniMax endpoint) -> Invoke error."""
    return _base_resp_error(provider, _BaseResp(status_code=status_code, status_msg=status_msg), body)


def _top_level_error(provider: str, code: int | str | None, message: str | None, sid: str | None, body: bytes | None) -> InvokeError | None:
    """iFlytek Spark puts ``code`` (0 = success), ``message`` and ``sid`` on every answer: a nonzero
    code on an answer without choices is an error reported in a 200 body."""
    if code is None or str(code) == "0":
        return None
    text = message or "error"
    if sid:
        text = f"{text} (sid: {sid})"
    return _error_from_object(provider, _ErrorObject(message=text, code=code), None, {}, body)


def _finish_error(provider: str, reason: str) -> InvokeError:
    return InvokeServerUnavailableError(
        f"[{provider}] Server Unavailable Error, the upstream stopped the generation: finish_reason {reason!r}",
        provider=provider,
    )


def split_think(text: str) -> tuple[str | None, str]:
    """``<think>reasoning</think>answer`` -> (reasoning, answer); text without the tags is all answer."""
    stripped = text.lstrip()
    if not stripped.startswith("<think>"):
        return None, text
    end = stripped.find("</think>")
    if end < 0:
        return stripped[len("<think>"):].strip(), ""
    return stripped[len("<think>"):end].strip(), stripped[end + len("</think>"):].lstrip()


class _ThinkFilter:
    """Streams: hold back content while it is inside a leading ``<think>`` block."""

    __slots__ = ("state", "held", "reasoning")

    def __init__(self) -> None:
        self.state = 0  # 0: undecided, 1: inside <think>, 2: passing through
        self.held = ""
        self.reasoning: list[str] = []

    def feed(self, text: str) -> str:
        if self.state == 2:
            return text
        self.held += text
        if self.state == 0:
            head = self.held.lstrip()
            if len(head) < len("<think>") and "<think>".startswith(head):
                return ""
            if not head.startswith("<think>"):
                self.state = 2
                out, self.held = self.held, ""
                return out
            self.state = 1
            self.held = head[len("<think>"):]
        end = self.held.find("</think>")
        if end < 0:
            return ""
        self.reasoning.append(self.held[:end])
        out = self.held[end + len("</think>"):].lstrip()
        self.held = ""
        self.state = 2
        return out


# -- non-stream response ---------------------------------------------------------------


def _tool_calls(items: list[_ToolCallDelta] | None, legacy: _Function | None = None) -> list[ToolCall]:
    if not items and legacy is not None and legacy.name:
        items = [_ToolCallDelta(index=0, function=legacy)]  # the deprecated ``function_call``: one call
    if not items:
        return []
    return [
        ToolCall(
            id=c.id or f"call_{i}",
            type=c.type or "function",
            function=ToolCallFunction(name=(c.function.name if c.function else None) or "", arguments=_arguments(c.function.arguments if c.function else None)),
        )
        for i, c in enumerate(items)
    ]


def parse_chat_response(
    provider: str, body: bytes, model: str, messages: list[PromptMessage], usage_fn: UsageFn, *, think_tags: bool = False
) -> LLMResult:
    try:
        response = _response_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if response.error is not None:
        raise _error_from_object(provider, _error_object(response.error), None, {}, body)
    if response.base_resp is not None and response.base_resp.status_code != 0:
        raise _base_resp_error(provider, response.base_resp, body)
    if not response.choices and (failed := _top_level_error(provider, response.code, response.message, response.sid, body)):
        raise failed
    if not response.choices or response.choices[0].message is None:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the response has no choices")
    choice = response.choices[0]
    message = choice.message
    assert message is not None
    finish = choice.finish_reason
    if finish in ERROR_FINISH:
        raise _finish_error(provider, finish or "")
    text = message.content or ""
    reasoning = message.reasoning_content or message.reasoning
    if think_tags and reasoning is None:
        reasoning, text = split_think(text)
    usage = response.usage
    result_usage = usage_fn(
        usage.prompt_tokens if usage else None, usage.completion_tokens if usage else None, text
    )
    return LLMResult(
        id=response.id,
        model=response.model or model,
        prompt_messages=messages,
        message=AssistantPromptMessage(content=text, tool_calls=_tool_calls(message.tool_calls, message.function_call)),
        usage=result_usage,
        system_fingerprint=response.system_fingerprint,
        reasoning_content=reasoning,
        finish_reason=FINISH_ALIASES.get(finish, finish) if finish else finish,
    )


# -- stream ------------------------------------------------------------------------------


class _PendingCall:
    __slots__ = ("id", "type", "name", "arguments")

    def __init__(self) -> None:
        self.id = ""
        self.type = "function"
        self.name = ""
        self.arguments: list[str] = []


class ChatStreamAssembler:
    """Turns ``data:`` payloads into chunks; assembles tool calls by index; knows when the stream is complete."""

    __slots__ = (
        "provider",
        "model",
        "messages",
        "usage_fn",
        "index",
        "calls",
        "finish_reason",
        "usage",
        "fingerprint",
        "texts",
        "done",
        "think",
        "incremental",
    )

    def __init__(
        self, provider: str, model: str, messages: list[PromptMessage], usage_fn: UsageFn, *, think_tags: bool = False,
        incremental_tool_calls: bool = False,
    ) -> None:  # fmt: skip
        self.provider = provider
        self.model = model
        self.messages = messages
        self.usage_fn = usage_fn
        self.index = 0
        self.calls: dict[int, _PendingCall] = {}
        self.finish_reason: str | None = None
        self.usage: _Usage | None = None
        self.fingerprint: str | None = None
        self.texts: list[str] = []
        self.done = False  # [DONE] seen
        self.think = _ThinkFilter() if think_tags else None
        #: emit tool-call fragments (ToolCallDelta) as they arrive; the final chunk then carries none
        self.incremental = incremental_tool_calls

    def feed_into(self, payloads: Iterable[bytes], out: list[LLMResultChunk]) -> None:
        """Append the content chunk of every payload to ``out``; a failure leaves the chunks before it there."""
        decode = _chunk_decoder.decode
        texts = self.texts
        model = self.model
        messages = self.messages
        index = self.index
        try:
            for payload in payloads:
                try:
                    chunk = decode(payload)
                except msgspec.DecodeError as exc:  # also the end marker, which is not JSON
                    if payload[:6] == b"[DONE]":
                        self.done = True
                        continue
                    raise InvokeServerUnavailableError(
                        f"[{self.provider}] Server Unavailable Error, malformed stream event: {exc}"
                    ) from None
                if chunk.error is not None:
                    raise _error_from_object(self.provider, _error_object(chunk.error), None, {}, payload)
                if chunk.base_resp is not None and chunk.base_resp.status_code != 0:
                    raise _base_resp_error(self.provider, chunk.base_resp, payload)
                if chunk.code is not None and not chunk.choices and (
                    failed := _top_level_error(self.provider, chunk.code, chunk.message, chunk.sid, payload)
                ):
                    raise failed
                if chunk.usage is not None:
                    self.usage = chunk.usage
                elif chunk.x_groq is not None and chunk.x_groq.usage is not None:
                    self.usage = chunk.x_groq.usage
                fingerprint = chunk.system_fingerprint
                if fingerprint:
                    self.fingerprint = fingerprint
                choices = chunk.choices
                if not choices:
                    continue
                choice = choices[0]
                if choice.usage is not None:
                    self.usage = choice.usage
                if choice.finish_reason:
                    if choice.finish_reason in ERROR_FINISH:
                        raise _finish_error(self.provider, choice.finish_reason)
                    self.finish_reason = FINISH_ALIASES.get(choice.finish_reason, choice.finish_reason)
                delta = choice.delta
                if delta is None:
                    text = choice.text
                else:
                    if delta.tool_calls or delta.function_call is not None:
                        # tool calls, or the legacy single function call
                        calls = delta.tool_calls or [_ToolCallDelta(index=0, function=delta.function_call)]
                        fragments = self._merge_calls(calls)
                        if fragments:
                            index += 1
                            out.append(LLMResultChunk(model, LLMResultChunkDelta(index, AssistantPromptMessage("", tool_calls=fragments)), messages, fingerprint))  # fmt: skip
                    text = delta.content
                if not text:
                    continue
                if self.think is not None:
                    text = self.think.feed(text)
                    if not text:
                        continue
                texts.append(text)
                index += 1
                out.append(
                    LLMResultChunk(model, LLMResultChunkDelta(index, AssistantPromptMessage(text)), messages, fingerprint)
                )
        finally:
            self.index = index

    def _merge_calls(self, deltas: list[_ToolCallDelta]) -> list[ToolCall] | None:
        """Merge the wire deltas by index; in incremental mode also return them as fragments."""
        fragments: list[ToolCall] | None = [] if self.incremental else None
        for delta in deltas:
            call = self.calls.get(delta.index)
            new = call is None
            if call is None:
                call = self.calls[delta.index] = _PendingCall()
            if delta.id:
                call.id = delta.id
            if delta.type:
                call.type = delta.type
            fn = delta.function
            name = args = ""
            if fn is not None:
                if fn.name:
                    name = fn.name if call.name != fn.name else ""
                    call.name += name
                if fn.arguments:
                    args = _arguments(fn.arguments)
                    call.arguments.append(args)
            if fragments is not None and (new or name or args):
                if new and not call.id:
                    call.id = f"call_{delta.index}"
                fragments.append(ToolCallDelta(call.id if new else "", ToolCallFunction(name, args), call.type if new else "", delta.index))
        return fragments

    def partial_usage(self, text: str) -> LLMUsage:
        """The usage of an answer that stopped after ``text``: reported counts, the rest counted locally."""
        u = self.usage
        return self.usage_fn(u.prompt_tokens if u else None, u.completion_tokens if u else None, text)

    def final_chunk(self) -> LLMResultChunk:
        """The terminal chunk: assembled tool calls, finish reason and usage."""
        if not (self.done or self.finish_reason is not None):  # neither [DONE] nor a finish reason
            raise InvokeStreamInterruptedError(
                f"[{self.provider}] Stream Interrupted: the upstream ended the stream before it finished"
            )
        calls = [] if self.incremental else [
            ToolCall(id=c.id or f"call_{i}", type=c.type, function=ToolCallFunction(name=c.name, arguments="".join(c.arguments)))
            for i, c in sorted(self.calls.items())
        ]  # fmt: skip
        u = self.usage
        usage = self.usage_fn(
            u.prompt_tokens if u else None, u.completion_tokens if u else None, "".join(self.texts)
        )
        self.index += 1
        return LLMResultChunk(
            model=self.model,
            prompt_messages=self.messages,
            system_fingerprint=self.fingerprint,
            delta=LLMResultChunkDelta(
                index=self.index,
                message=AssistantPromptMessage(content="", tool_calls=calls),
                usage=usage,
                finish_reason=self.finish_reason or "stop",
            ),
        )


# -- legacy /completions (text in, ``choices[].text`` out) ------------------------------------


class _TextChoice(msgspec.Struct, gc=False):
    text: str | None = None
    finish_reason: str | None = None


class _Completion(msgspec.Struct, gc=False):
    choices: list[_TextChoice] = []
    usage: _Usage | None = None
    error: _ErrorObject | None = None
    system_fingerprint: str | None = None


_completion_decoder = msgspec.json.Decoder(_Completion)


def build_completion_body(
    model: str,
    messages: list[PromptMessage],
    parameters: Mapping[str, Any],
    stop: list[str] | None,
    stream: bool,
    user: str | None,
    *,
    include_usage: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """``POST /completions``: the messages' texts joined by blank lines as the ``prompt``."""
    body: dict[str, Any] = {"model": model, "prompt": "\n\n".join(m.text() for m in messages)}
    body.update(parameters)
    return _encode_request(body, stop, stream, user, include_usage, extra)


def parse_completion_response(
    provider: str, body: bytes, model: str, messages: list[PromptMessage], usage_fn: UsageFn
) -> LLMResult:
    try:
        parsed = _completion_decoder.decode(body.strip())
    except msgspec.DecodeError as exc:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, malformed response: {exc}") from None
    if parsed.error is not None:
        raise _error_from_object(provider, parsed.error, None, {}, body)
    if not parsed.choices:
        raise InvokeServerUnavailableError(f"[{provider}] Server Unavailable Error, the response has no choices")
    choice = parsed.choices[0]
    text = choice.text or ""
    u = parsed.usage
    return LLMResult(
        model=model,
        prompt_messages=messages,
        message=AssistantPromptMessage(content=text),
        usage=usage_fn(u.prompt_tokens if u else None, u.completion_tokens if u else None, text),
        system_fingerprint=parsed.system_fingerprint,
        finish_reason=choice.finish_reason,
    )
