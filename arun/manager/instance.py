"""``ModelInstance``: one tenant's model, ready to call.

Built by :meth:`arun.manager.ModelManager.get_model_instance`.  It composes three pieces and
branches on none: the model's own input validation (first, with the bare runtime's typed
errors), the system quota when there is one (:class:`~arun.manager.quota.QuotaPlan`: an
estimate reserved before the call, the real use settled after it, an abandoned stream
settled with what it used) and the tenant's :class:`~arun.policy.router.PolicyRouter` over
the model's route (its load-balancing configs or its one credential, plus fallbacks).  Every
model type goes through that same path; with the policy layer off the router applies Dify's
balancing rules (:meth:`PolicyRouter.dify`).  Streams are the runtime's
:class:`~arun.model_types.llm_stream.LLMStream`, committed by the router.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar, overload

from arun.entities.embedding import EmbeddingInputType, RerankResult, TextEmbeddingResult
from arun.entities.llm import LLMResult
from arun.entities.messages import PromptMessage, PromptMessageTool
from arun.entities.model import ModelType
from arun.errors import ParameterValidationError
from arun.manager.errors import ModelTypeMismatchError
from arun.model_types.llm_stream import LLMStream, StreamOutcome, StreamView
from arun.policy.router import estimate_prompt_tokens, estimate_text_tokens

if TYPE_CHECKING:
    from arun.manager.crypto import Credentials
    from arun.manager.quota import QuotaPlan, QuotaReservation
    from arun.model_types.ai_model import AIModel
    from arun.policy.router import PolicyRouter
    from arun.policy.routes import Route

__all__ = ["ModelInstance", "PolicyBinding"]

log = logging.getLogger("arun.manager")
T = TypeVar("T")


@dataclass
class PolicyBinding:
    """The tenant's router and the model's route."""

    router: PolicyRouter
    route: Route
    #: credential config id -> display name (LB config name, or ``current``)
    names: dict[str, str] = field(default_factory=dict)


class ModelInstance:
    """A model of one tenant, ready to call.  Credentials never appear in the repr."""

    #: Id of the record the current credentials come from.
    credential_id: str = ""

    def __init__(
        self,
        *,
        tenant_id: str,
        provider: str,
        model_type: ModelType,
        model: str,
        model_type_instance: AIModel,
        credentials: Credentials | None,
        binding: PolicyBinding,
        provider_type: str = "custom",
        quota: QuotaPlan | None = None,
        load_balancing: bool = False,
    ) -> None:
        self.tenant_id = tenant_id
        self.provider = provider
        self.model_type = model_type
        self.model = model
        self.model_type_instance = model_type_instance
        self.credentials = credentials
        self.provider_type = provider_type
        self.quota = quota
        #: the router and route every call goes through
        self.policy = binding
        #: Dify's rule said yes: more than one enabled load-balancing config
        self.load_balancing = load_balancing

    def __repr__(self) -> str:
        configs = len(self.policy.route.target.configs)
        lb = f", lb={configs} configs" if self.load_balancing else ""
        return f"ModelInstance(tenant={self.tenant_id!r}, provider={self.provider!r}, type={self.model_type.value!r}, model={self.model!r}{lb})"

    # -- plumbing ---------------------------------------------------------------------

    def _check(self, kind: ModelType) -> Any:
        if self.model_type is not kind:
            raise ModelTypeMismatchError(f"Model type instance is not {kind.value} (it is {self.model_type.value})")
        return self.model_type_instance

    async def _charged(self, estimate: int, call: Callable[[], Awaitable[T]], tokens_of: Callable[[T], int | None]) -> T:
        """Reserve the quota estimate, call, settle with the real use (release when nothing was produced)."""
        if self.quota is None:
            return await call()
        reservation = await self.quota.reserve(estimate)
        try:
            result = await call()
        except BaseException:
            await self._quota_step(self.quota.release(reservation))
            raise
        await self._quota_step(self.quota.settle(reservation, tokens_of(result)))
        return result

    @staticmethod
    async def _quota_step(step: Awaitable[None]) -> None:
        """A settle or release after the call: a store outage is logged (the reservation stays open
        and the sweep refunds it) so the caller does not lose an answer it already has."""
        from arun.manager.store import StoreError

        try:
            await step
        except StoreError as exc:
            log.warning("quota settlement failed: %s", exc)

    def _stream_settlement(self, reservation: QuotaReservation) -> Callable[[StreamView, StreamOutcome, BaseException | None], Awaitable[None]]:
        quota = self.quota
        assert quota is not None

        async def settle(view: StreamView, outcome: StreamOutcome, error: BaseException | None) -> None:
            if view.delivered == 0 and outcome != "completed":
                await self._quota_step(quota.release(reservation))
                return
            reported = view.usage
            used = reported if outcome == "completed" and reported is not None else view.partial_usage()
            await self._quota_step(quota.settle(reservation, used.total_tokens))

        return settle

    # -- LLM --------------------------------------------------------------------------

    @overload
    async def invoke_llm(
        self, prompt_messages: Sequence[PromptMessage], model_parameters: Mapping[str, Any] | None = ...,
        tools: Sequence[PromptMessageTool] | None = ..., stop: Sequence[str] | None = ...,
        stream: Literal[True] = ..., user: str | None = ..., callbacks: Sequence[Any] | None = ..., *,
        extra_headers: Mapping[str, str] | None = ..., extra_body: Mapping[str, Any] | None = ...,
        incremental_tool_calls: bool = ...,
    ) -> LLMStream: ...

    @overload
    async def invoke_llm(
        self, prompt_messages: Sequence[PromptMessage], model_parameters: Mapping[str, Any] | None = ...,
        tools: Sequence[PromptMessageTool] | None = ..., stop: Sequence[str] | None = ..., *,
        stream: Literal[False], user: str | None = ..., callbacks: Sequence[Any] | None = ...,
        extra_headers: Mapping[str, str] | None = ..., extra_body: Mapping[str, Any] | None = ...,
        incremental_tool_calls: bool = ...,
    ) -> LLMResult: ...

    @overload
    async def invoke_llm(
        self, prompt_messages: Sequence[PromptMessage], model_parameters: Mapping[str, Any] | None = ...,
        tools: Sequence[PromptMessageTool] | None = ..., stop: Sequence[str] | None = ...,
        stream: bool = ..., user: str | None = ..., callbacks: Sequence[Any] | None = ..., *,
        extra_headers: Mapping[str, str] | None = ..., extra_body: Mapping[str, Any] | None = ...,
        incremental_tool_calls: bool = ...,
    ) -> LLMResult | LLMStream: ...

    async def invoke_llm(
        self,
        prompt_messages: Sequence[PromptMessage],
        model_parameters: Mapping[str, Any] | None = None,
        tools: Sequence[PromptMessageTool] | None = None,
        stop: Sequence[str] | None = None,
        stream: bool = True,
        user: str | None = None,
        callbacks: Sequence[Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        incremental_tool_calls: bool = False,
    ) -> LLMResult | LLMStream:
        """A result, or (``stream=True``) the committed stream; ``incremental_tool_calls=True`` streams
        tool calls as :class:`~arun.entities.messages.ToolCallDelta` fragments by index."""
        llm = self._check(ModelType.LLM)
        checked = await llm.check_inputs(self.model, self.credentials or {}, prompt_messages, model_parameters, tools, stop)
        router, route = self.policy.router, self.policy.route
        args = (route, checked.messages, checked.parameters, checked.tools, checked.stop)
        kwargs: dict[str, Any] = {"user": user, "callbacks": callbacks, "extra_headers": extra_headers, "extra_body": extra_body}
        if incremental_tool_calls:
            kwargs["incremental_tool_calls"] = True
        if self.quota is None:
            return await router.invoke(*args, stream=stream, **kwargs)
        estimate = await self._llm_estimate(checked.messages, checked.tools, checked.parameters)
        if not stream:
            result: LLMResult = await self._charged(estimate, lambda: router.invoke(*args, stream=False, **kwargs), lambda r: r.usage.total_tokens)
            return result
        reservation = await self.quota.reserve(estimate)
        try:
            routed: LLMStream = await router.invoke(*args, stream=True, **kwargs)
        except BaseException:
            await self._quota_step(self.quota.release(reservation))
            raise
        routed.on_finish(self._stream_settlement(reservation))
        return routed

    async def _llm_estimate(self, messages: list[PromptMessage], tools: list[PromptMessageTool] | None, params: Mapping[str, Any]) -> int:
        """Prompt tokens (the model's own counter) + the answer's budget, for a tokens quota."""
        llm = self.model_type_instance
        try:
            prompt = int(await llm.get_num_tokens(self.model, self.credentials or {}, messages, tools))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no counter: the router's character estimate
            prompt = estimate_prompt_tokens(messages, tools)
        budget = params.get("max_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            budget = self.policy.route.target.default_max_tokens
        return prompt + budget

    async def policy_states(self) -> list[Any]:
        """Per credential config of the route (target and fallbacks): healthy, cooling until when and why,
        in flight, EWMA time to first token, remaining limit (:class:`~arun.policy.trace.ConfigStatus`)."""
        return await self.policy.router.states(self.policy.route, self.model_type.value)

    async def get_llm_num_tokens(self, prompt_messages: Sequence[PromptMessage], tools: Sequence[PromptMessageTool] | None = None) -> int:
        llm = self._check(ModelType.LLM)
        checked = await llm.check_inputs(self.model, self.credentials or {}, prompt_messages, None, tools, None)
        result: int = await llm.get_num_tokens(self.model, self.credentials or {}, checked.messages, checked.tools)
        return result

    # -- other model types --------------------------------------------------------------

    async def _routed(self, kind: ModelType, op: Callable[[Any, str, Mapping[str, Any]], Awaitable[T]], estimate: int,
                      tokens: int, used: Callable[[T], int | None]) -> T:  # fmt: skip
        router, route = self.policy.router, self.policy.route
        return await self._charged(
            estimate, lambda: router.call(route, kind.value, op, tokens=tokens, used=used), used
        )

    async def invoke_text_embedding(
        self, texts: Sequence[str], user: str | None = None, input_type: EmbeddingInputType | str = EmbeddingInputType.DOCUMENT,
        **options: Any,
    ) -> TextEmbeddingResult:  # fmt: skip
        emb = self._check(ModelType.TEXT_EMBEDDING)
        items = emb.check_inputs(texts)
        try:
            kind = EmbeddingInputType(input_type)
        except ValueError:
            raise ParameterValidationError(f"input_type should be one of {[t.value for t in EmbeddingInputType]}", parameter="input_type") from None
        tokens = estimate_text_tokens(items)
        return await self._routed(
            ModelType.TEXT_EMBEDDING, lambda m, model, creds: m.invoke(model, creds, items, user, kind, **options),
            tokens, tokens, lambda r: r.usage.total_tokens,
        )  # fmt: skip

    async def get_text_embedding_num_tokens(self, texts: Sequence[str]) -> list[int]:
        emb = self._check(ModelType.TEXT_EMBEDDING)
        result: list[int] = await emb.get_num_tokens(self.model, self.credentials or {}, emb.check_inputs(texts))
        return result

    async def invoke_rerank(
        self, query: str, docs: Sequence[str], score_threshold: float | None = None, top_n: int | None = None,
        user: str | None = None, **options: Any,
    ) -> RerankResult:  # fmt: skip
        rr = self._check(ModelType.RERANK)
        rr.check_inputs(query, docs, score_threshold, top_n)
        items = list(docs)
        tokens = (len(query) + sum(len(d) for d in items)) // 4 + 1
        return await self._routed(
            ModelType.RERANK,
            lambda m, model, creds: m.invoke(model, creds, query, items, score_threshold, top_n, user, **options),
            1, tokens, lambda _r: None,
        )  # fmt: skip

    async def invoke_moderation(self, text: str, user: str | None = None, **options: Any) -> bool:
        self._check(ModelType.MODERATION)
        if not isinstance(text, str):
            raise ParameterValidationError("text should be a string", parameter="text")
        return await self._routed(
            ModelType.MODERATION, lambda m, model, creds: m.invoke(model, creds, text, user, **options),
            1, len(text) // 4 + 1, lambda _r: None,
        )  # fmt: skip

    async def invoke_speech2text(self, file: IO[bytes] | bytes, user: str | None = None, **options: Any) -> str:
        s2t = self._check(ModelType.SPEECH2TEXT)
        audio = s2t.read_audio(file)  # read once: a retry or a rotation sends the same bytes
        options.setdefault("filename", getattr(file, "name", None))
        return await self._routed(
            ModelType.SPEECH2TEXT, lambda m, model, creds: m.invoke(model, creds, audio, user, **options),
            1, 0, lambda _r: None,
        )  # fmt: skip

    async def invoke_tts(
        self, content_text: str, tenant_id: str | None = None, voice: str | None = None, user: str | None = None,
        **options: Any,
    ) -> AsyncIterator[bytes]:  # fmt: skip
        self._check(ModelType.TTS)
        if not isinstance(content_text, str) or not content_text.strip():
            raise ParameterValidationError("content_text should be a non-empty string", parameter="content_text")
        tenant = tenant_id or self.tenant_id
        return await self._routed(
            ModelType.TTS, lambda m, model, creds: m.invoke(model, tenant, creds, content_text, voice, user, **options),
            1, len(content_text) // 4 + 1, lambda _r: None,
        )  # fmt: skip

    async def get_tts_voices(self, language: str | None = None) -> list[dict[str, str]]:
        tts = self._check(ModelType.TTS)
        result: list[dict[str, str]] = await tts.get_tts_model_voices(self.model, self.credentials or {}, language)
        return result
