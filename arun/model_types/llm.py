"""``LargeLanguageModel``: validated, timed, priced, error-mapped chat invocations."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from time import perf_counter
from types import CoroutineType
from typing import Any, ClassVar, Literal, NamedTuple, overload

from arun.callbacks import Callback, fire
from arun.entities.llm import LLMMode, LLMResult, LLMResultChunk, LLMUsage
from arun.entities.messages import PromptMessage, PromptMessageTool, UserPromptMessage
from arun.entities.model import AIModelEntity, ModelPropertyKey, ModelType, ParameterRule
from arun.errors import ParameterValidationError
from arun.model_types.ai_model import AIModel, validate_by
from arun.model_types.call_options import check_extras, use_extras
from arun.model_types.code_block import (
    CODE_BLOCK_FORMATS,
    code_block_request,
    strip_fences_result,
    strip_fences_stream,
)
from arun.model_types.llm_stream import LLMStream
from arun.parameters import validate_parameters
from arun.pricing import rates
from arun.wire.client import ErrorMapper, StreamResponse

__all__ = ["LargeLanguageModel"]

_PING = UserPromptMessage(content="ping")  # what validation by invoking sends


def _check_messages(prompt_messages: Any) -> list[PromptMessage]:
    if prompt_messages.__class__ is not list and (
        not isinstance(prompt_messages, Sequence) or isinstance(prompt_messages, (str, bytes))
    ):
        raise ParameterValidationError("prompt_messages should be a list of messages", parameter="prompt_messages")
    if not prompt_messages:
        raise ParameterValidationError("prompt_messages must not be empty", parameter="prompt_messages")
    for i, message in enumerate(prompt_messages):
        if not isinstance(message, PromptMessage):
            raise ParameterValidationError(
                f"prompt_messages[{i}] should be a PromptMessage, got {type(message).__name__}",
                parameter="prompt_messages",
            )
    return list(prompt_messages)  # never mutate the caller's list


def _check_stop(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise ParameterValidationError("stop should be a list of strings", parameter="stop")
    return list(stop)


def _check_tools(tools: Any) -> list[PromptMessageTool] | None:
    if not tools:
        return None
    if not isinstance(tools, (list, tuple)) or not all(isinstance(t, PromptMessageTool) for t in tools):
        raise ParameterValidationError("tools should be a list of PromptMessageTool", parameter="tools")
    return list(tools)


def _validated(
    schema: AIModelEntity, prompt_messages: Any, model_parameters: Any, tools: Any, stop: Any
) -> tuple[list[PromptMessage], dict[str, Any], list[PromptMessageTool] | None, list[str] | None]:
    return (
        _check_messages(prompt_messages),
        validate_parameters(schema.parameter_rules, model_parameters),
        _check_tools(tools),
        _check_stop(stop),
    )


class CheckedCall(NamedTuple):
    """An LLM call's inputs after validation (copies: the caller's objects are never touched)."""

    schema: AIModelEntity
    messages: list[PromptMessage]
    parameters: dict[str, Any]
    tools: list[PromptMessageTool] | None
    stop: list[str] | None


class LargeLanguageModel(AIModel):
    model_type: ClassVar[ModelType] = ModelType.LLM

    async def check_inputs(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Any,
        model_parameters: Any = None,
        tools: Any = None,
        stop: Any = None,
    ) -> CheckedCall:
        """Validate a call's inputs with the typed errors ``invoke`` raises (the manager and the
        policy layer call this first, before any quota, limit or credential is touched)."""
        schema = await self.require_schema(model, credentials)
        return CheckedCall(schema, *_validated(schema, prompt_messages, model_parameters, tools, stop))

    @overload
    async def invoke(
        self, model: str, credentials: Mapping[str, Any], prompt_messages: Sequence[PromptMessage],
        model_parameters: Mapping[str, Any] | None = ..., tools: Sequence[PromptMessageTool] | None = ...,
        stop: Sequence[str] | None = ..., stream: Literal[True] = ..., user: str | None = ...,
        callbacks: Sequence[Callback] | None = ..., *, extra_headers: Mapping[str, str] | None = ...,
        extra_body: Mapping[str, Any] | None = ..., incremental_tool_calls: bool = ...,
    ) -> LLMStream: ...

    @overload
    async def invoke(
        self, model: str, credentials: Mapping[str, Any], prompt_messages: Sequence[PromptMessage],
        model_parameters: Mapping[str, Any] | None = ..., tools: Sequence[PromptMessageTool] | None = ...,
        stop: Sequence[str] | None = ..., *, stream: Literal[False], user: str | None = ...,
        callbacks: Sequence[Callback] | None = ..., extra_headers: Mapping[str, str] | None = ...,
        extra_body: Mapping[str, Any] | None = ..., incremental_tool_calls: bool = ...,
    ) -> LLMResult: ...

    @overload
    async def invoke(
        self, model: str, credentials: Mapping[str, Any], prompt_messages: Sequence[PromptMessage],
        model_parameters: Mapping[str, Any] | None = ..., tools: Sequence[PromptMessageTool] | None = ...,
        stop: Sequence[str] | None = ..., stream: bool = ..., user: str | None = ...,
        callbacks: Sequence[Callback] | None = ..., *, extra_headers: Mapping[str, str] | None = ...,
        extra_body: Mapping[str, Any] | None = ..., incremental_tool_calls: bool = ...,
    ) -> LLMResult | LLMStream: ...

    async def invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Sequence[PromptMessage],
        model_parameters: Mapping[str, Any] | None = None,
        tools: Sequence[PromptMessageTool] | None = None,
        stop: Sequence[str] | None = None,
        stream: bool = True,
        user: str | None = None,
        callbacks: Sequence[Callback] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        incremental_tool_calls: bool = False,
    ) -> LLMResult | LLMStream:
        """Invoke the model: an :class:`LLMResult`, or (``stream=True``) an :class:`LLMStream` of chunks.

        ``extra_headers`` / ``extra_body`` add request headers and body fields for this call only
        (never the headers that carry the credentials).  ``incremental_tool_calls=True`` streams
        tool calls as :class:`~arun.entities.messages.ToolCallDelta` fragments by index as they
        arrive instead of assembled on the final chunk (``LLMStream.result()`` assembles them).
        """
        extras = (
            check_extras(extra_headers, extra_body, incremental_tool_calls)
            if extra_headers is not None or extra_body is not None or incremental_tool_calls
            else None
        )
        schema = await self.require_schema(model, credentials)
        messages, params, tool_list, stop_list = _validated(schema, prompt_messages, model_parameters, tools, stop)
        hooks = list(callbacks) if callbacks else []
        call = {
            "llm_instance": self,
            "model": model,
            "credentials": credentials,
            "prompt_messages": messages,
            "model_parameters": params,
            "tools": tool_list,
            "stop": stop_list,
            "stream": stream,
            "user": user,
        } if hooks else None
        started = perf_counter()
        if hooks:
            await fire(hooks, "on_before_invoke", **call)  # type: ignore[arg-type]
        try:
            code_block = params.get("response_format") in CODE_BLOCK_FORMATS
            wire_stop: list[str] | None
            if code_block:  # Dify's code-block mode for models without a native JSON mode
                wire_messages, wire_params, wire_stop = code_block_request(messages, params, stop_list)
            else:
                wire_messages, wire_params, wire_stop = messages, params, stop_list
            if extras is None:
                pending: Any = self._invoke(
                    model, credentials, wire_messages, wire_params, tool_list, wire_stop, stream, user
                )
                result: Any = (
                    await pending if pending.__class__ is CoroutineType or inspect.isawaitable(pending) else pending
                )
            else:
                with use_extras(extras):
                    pending = self._invoke(model, credentials, wire_messages, wire_params, tool_list, wire_stop, stream, user)
                    result = await pending if inspect.isawaitable(pending) else pending
        except ParameterValidationError:
            raise  # a caller mistake found while building the request (e.g. json_schema missing)
        except Exception as exc:
            error = self._transform_invoke_error(exc, model, credentials)
            if hooks:
                await fire(hooks, "on_invoke_error", ex=error, **call)  # type: ignore[arg-type]
            if error is exc:
                raise
            raise error from exc
        if isinstance(result, LLMResult):
            if code_block:
                strip_fences_result(result)
            now = perf_counter()
            result.usage.latency = round(now - started, 6)
            result.usage.time_to_first_token = result.usage.latency
            if hooks:
                await fire(hooks, "on_after_invoke", result=result, **call)  # type: ignore[arg-type]
            return result
        if code_block:
            result = strip_fences_stream(result)
        return LLMStream(self, result, model, messages, started, hooks, call, credentials)

    # -- provider hooks ---------------------------------------------------------------

    async def _invoke(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: list[PromptMessage],
        model_parameters: dict[str, Any],
        tools: list[PromptMessageTool] | None,
        stop: list[str] | None,
        stream: bool,
        user: str | None,
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        """Return an LLMResult, or (stream) an async iterator of chunks after the response status is known."""
        raise NotImplementedError

    async def get_num_tokens(
        self,
        model: str,
        credentials: Mapping[str, Any],
        prompt_messages: Sequence[PromptMessage],
        tools: Sequence[PromptMessageTool] | None = None,
    ) -> int:
        raise NotImplementedError

    # -- helpers for providers ----------------------------------------------------------

    async def get_parameter_rules(self, model: str, credentials: Mapping[str, Any]) -> list[ParameterRule]:
        schema = await self.get_model_schema(model, credentials)
        return schema.parameter_rules if schema else []

    async def get_model_mode(self, model: str, credentials: Mapping[str, Any] | None = None) -> LLMMode:
        schema = await self.get_model_schema(model, credentials)
        mode = schema.property(ModelPropertyKey.MODE) if schema else None
        return LLMMode.value_of(mode) if mode else LLMMode.CHAT

    def _calc_response_usage(
        self, schema: AIModelEntity | None, prompt_tokens: int, completion_tokens: int
    ) -> LLMUsage:
        """Usage with prices; latency and time to first token are filled by the per-call wrapper."""
        rate_in, rate_out = rates(schema)
        prompt_price = rate_in.total(prompt_tokens)
        completion_price = rate_out.total(completion_tokens)
        return LLMUsage(
            prompt_tokens,
            rate_in.unit_price,
            rate_in.unit,
            prompt_price,
            completion_tokens,
            rate_out.unit_price,
            rate_out.unit,
            completion_price,
            prompt_tokens + completion_tokens,
            prompt_price + completion_price,
            rate_in.currency,
            0.0,
        )

    def _usage_with_fallback(
        self, schema: AIModelEntity | None, count_prompt: Callable[[], int], encoding: str = "cl100k_base"
    ) -> Callable[[int | None, int | None, str], LLMUsage]:
        """``usage(prompt, completion, text)`` for the wire parsers: counts locally what the upstream left out."""

        def usage(prompt: int | None, completion: int | None, text: str) -> LLMUsage:
            if prompt is None:
                prompt = count_prompt()
            if completion is None:
                from arun.tokenizers import count_tokens

                completion = count_tokens(text, encoding) if text else 0
            return self._calc_response_usage(schema, prompt, completion)

        return usage

    async def _exchange(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        error_mapper: ErrorMapper,
        stream: bool,
        parse: Callable[[bytes], LLMResult],
        chunks: Callable[[StreamResponse], AsyncIterator[LLMResultChunk]],
        first_byte_timeout: float | None = None,
    ) -> LLMResult | AsyncIterator[LLMResultChunk]:
        """POST ``body``: the parsed result, or (stream) the chunks once the status is known to be good
        (``first_byte_timeout``: this call's, else the client's)."""
        http = self.http
        if not stream:
            resp = await http.request(
                "POST", url, headers=headers, data=body, error_mapper=error_mapper, first_byte_timeout=first_byte_timeout
            )
            return parse(resp.body)
        return chunks(
            await http.stream(
                "POST", url, headers=headers, data=body, error_mapper=error_mapper, first_byte_timeout=first_byte_timeout
            )
        )

    async def _validate_by_invoking(
        self, model: str, credentials: Mapping[str, Any], parameters: dict[str, Any] | None = None
    ) -> None:
        """One tiny non-streamed request; every failure becomes CredentialsValidateFailedError, with
        the credentials' secret values masked in it (:func:`~arun.model_types.ai_model.validate_by`)."""
        await validate_by(
            lambda: self._invoke(model, credentials, [_PING], parameters or {"max_tokens": 5}, None, None, False, None),
            credentials,
            self.context.secret_fields,
        )

    @staticmethod
    def enforce_stop_tokens(text: str, stop: list[str]) -> str:
        """Cut ``text`` at the first stop word (stop words are matched literally)."""
        cut = len(text)
        for word in stop:
            if word:
                at = text.find(word)
                if 0 <= at < cut:
                    cut = at
        return text[:cut]
