"""``ModelInstance``: one tenant's model, with resolved credentials, balancing and quota.

Built by :meth:`arun.manager.ModelManager.get_model_instance`.  Every method checks
the model type (:class:`ModelTypeMismatchError`), charges the system quota when
there is one (see :class:`QuotaPlan`), and calls the model directly or through the
:class:`~arun.manager.balancer.LoadBalancer` when balancing is active (Dify's
``_round_robin_invoke``).  Streams fail over before their first chunk; after it an
upstream failure ends the stream with a typed ``Invoke*Error``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from arun.entities.llm import LLMResult, LLMResultChunk, LLMUsage
from arun.entities.model import ModelType
from arun.manager.balancer import LoadBalancer
from arun.manager.errors import ModelTypeMismatchError

if TYPE_CHECKING:
    from arun.manager.crypto import Credentials
    from arun.manager.quota import QuotaPlan
    from arun.model_types.ai_model import AIModel

__all__ = ["Credentials", "ModelInstance", "ManagedLLMStream", "PolicyBinding"]

@dataclass
class PolicyBinding:
    """What an instance needs to call through the policy stack: the tenant's router and the model's route."""

    router: Any  # arun.policy.router.PolicyRouter
    route: Any  # arun.policy.router.Route
    #: credential config id -> display name (LB config name, or ``current``)
    names: dict[str, str] = field(default_factory=dict)


class ManagedLLMStream:
    """What ``invoke_llm(stream=True)`` returns: an async iterator of chunks and an async context manager.

    Like :class:`~arun.model_types.llm_stream.LLMStream` it offers ``usage``,
    ``result()`` and ``collect()``; the quota is settled when the stream ends.
    """

    def __init__(self, agen: AsyncIterator[LLMResultChunk], holder: list[Any], on_end: Callable[[bool], Awaitable[None]]) -> None:
        self._agen = agen
        self._holder = holder  # [current LLMStream] (the one that produced the first chunk)
        self._on_end = on_end
        self._seen = False
        self._ended = False
        self._primed: list[LLMResultChunk] = []

    async def _prime(self) -> None:
        """Open the stream and read its first chunk, so opening errors surface from ``invoke_llm``."""
        try:
            self._primed.append(await self.__anext__())
        except StopAsyncIteration:
            pass

    def __aiter__(self) -> ManagedLLMStream:
        return self

    async def __anext__(self) -> LLMResultChunk:
        if self._primed:
            return self._primed.pop()
        if self._ended:
            raise StopAsyncIteration
        try:
            chunk = await self._agen.__anext__()
        except StopAsyncIteration:
            await self._end(True)
            raise
        except BaseException:
            await self._end(False)
            raise
        self._seen = True
        return chunk

    async def _end(self, ok: bool) -> None:
        if not self._ended:
            self._ended = True
            await self._on_end(ok or self._seen)

    @property
    def usage(self) -> LLMUsage | None:
        return self._holder[0].usage if self._holder else None

    @property
    def trace(self) -> Any:
        """The policy layer's decision trace (None without the policy)."""
        return getattr(self._holder[0], "trace", None) if self._holder else None

    def result(self) -> LLMResult:
        if not self._holder:
            raise RuntimeError("the stream has not started")
        return self._holder[0].result()

    async def collect(self) -> LLMResult:
        async with self:
            async for _ in self:
                pass
        return self.result()

    async def aclose(self) -> None:
        close = getattr(self._agen, "aclose", None)
        try:
            if close is not None:
                await close()
        finally:
            await self._end(self._seen)

    async def __aenter__(self) -> ManagedLLMStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


class ModelInstance:
    """A model of one tenant, ready to call.  Credentials never appear in the repr."""

    #: Id of the record the current credentials come from (the policy's config id when not balancing).
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
        provider_type: str = "custom",
        load_balancer: LoadBalancer | None = None,
        quota: QuotaPlan | None = None,
        policy: PolicyBinding | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.provider = provider
        self.model_type = model_type
        self.model = model
        self.model_type_instance = model_type_instance
        self.credentials = credentials
        self.provider_type = provider_type
        self.load_balancer = load_balancer if load_balancer is not None and load_balancer.active else None
        self.quota = quota
        #: Set when the manager's policy is enabled: LLM and embedding calls go through its router.
        self.policy = policy

    def __repr__(self) -> str:
        lb = f", lb={len(self.load_balancer.configs)} configs" if self.load_balancer else ""
        if self.policy is not None:
            lb += f", policy={len(self.policy.route.target.configs)} configs"
        return f"ModelInstance(tenant={self.tenant_id!r}, provider={self.provider!r}, type={self.model_type.value!r}, model={self.model!r}{lb})"

    # -- plumbing ---------------------------------------------------------------------

    def _check(self, kind: ModelType) -> Any:
        if self.model_type is not kind:
            raise ModelTypeMismatchError(f"Model type instance is not {kind.value} (it is {self.model_type.value})")
        return self.model_type_instance

    async def _round_robin_invoke(self, fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        if self.load_balancer is not None:
            return await self.load_balancer.invoke(fn, **kwargs)
        return await fn(credentials=self.credentials, **kwargs)

    async def _charged(self, call: Callable[[], Awaitable[Any]], tokens_of: Callable[[Any], int | None] = lambda _r: None) -> Any:
        if self.quota is None:
            return await call()
        qt = await self.quota.reserve()
        try:
            result = await call()
        except BaseException:
            await self.quota.release(qt)
            raise
        await self.quota.settle(qt, tokens_of(result))
        return result

    # -- LLM --------------------------------------------------------------------------

    async def invoke_llm(
        self,
        prompt_messages: Sequence[Any],
        model_parameters: Mapping[str, Any] | None = None,
        tools: Sequence[Any] | None = None,
        stop: Sequence[str] | None = None,
        stream: bool = True,
        user: str | None = None,
        callbacks: Sequence[Any] | None = None,
    ) -> LLMResult | ManagedLLMStream:
        llm = self._check(ModelType.LLM)
        if self.policy is not None:
            return await self._policy_llm(prompt_messages, model_parameters, tools, stop, stream, user, callbacks)
        kwargs = dict(
            model=self.model, prompt_messages=prompt_messages, model_parameters=model_parameters,
            tools=tools, stop=stop, user=user, callbacks=callbacks,
        )  # fmt: skip
        if not stream:
            return await self._charged(
                lambda: self._round_robin_invoke(llm.invoke, stream=False, **kwargs),
                lambda r: r.usage.total_tokens,
            )
        qt = await self.quota.reserve() if self.quota is not None else None
        holder: list[Any] = []

        async def open_stream(credentials: Mapping[str, Any]) -> Any:
            s = await llm.invoke(credentials=credentials, stream=True, **kwargs)
            holder[:] = [s]
            return s

        on_end = self._quota_end(qt, lambda: holder[0].usage if holder else None)
        if self.load_balancer is not None:
            agen = self.load_balancer.invoke_stream(open_stream)
        else:
            agen = _single_stream(open_stream, self.credentials or {})
        managed = ManagedLLMStream(agen, holder, on_end)
        await managed._prime()
        return managed

    def _quota_end(self, qt: str | None, usage: Callable[[], Any]) -> Callable[[bool], Awaitable[None]]:
        """What a managed stream runs at its end: release the reserved quota when nothing was
        charged, else settle it with the stream's usage (``usage()``, possibly None)."""

        async def on_end(charged: bool) -> None:
            if self.quota is None or qt is None:
                return
            if not charged:
                await self.quota.release(qt)
            else:
                used = usage()
                await self.quota.settle(qt, used.total_tokens if used else None)

        return on_end

    async def _policy_llm(self, prompt_messages: Sequence[Any], model_parameters: Mapping[str, Any] | None, tools: Sequence[Any] | None,
                          stop: Sequence[str] | None, stream: bool, user: str | None, callbacks: Sequence[Any] | None) -> LLMResult | ManagedLLMStream:  # fmt: skip
        assert self.policy is not None
        router, route = self.policy.router, self.policy.route
        args = (route, prompt_messages, model_parameters, tools, stop)
        if not stream:
            return await self._charged(
                lambda: router.invoke(*args, stream=False, user=user, callbacks=callbacks),
                lambda r: r.usage.total_tokens,
            )
        qt = await self.quota.reserve() if self.quota is not None else None
        try:
            routed = await router.invoke(*args, stream=True, user=user, callbacks=callbacks)
        except BaseException:
            if self.quota is not None and qt is not None:
                await self.quota.release(qt)
            raise

        on_end = self._quota_end(qt, lambda: routed.usage or routed.partial_usage())
        managed = ManagedLLMStream(routed, [routed], on_end)
        await managed._prime()
        return managed

    async def policy_states(self) -> list[Any]:
        """Per credential config of the route (target and fallbacks): healthy, cooling until when and why,
        in flight, EWMA time to first token, remaining limit (:class:`~arun.policy.trace.ConfigStatus`).
        Empty without the policy."""
        if self.policy is None:
            return []
        return await self.policy.router.states(self.policy.route, self.model_type.value)

    async def get_llm_num_tokens(self, prompt_messages: Sequence[Any], tools: Sequence[Any] | None = None) -> int:
        llm = self._check(ModelType.LLM)
        return await self._round_robin_invoke(llm.get_num_tokens, model=self.model, prompt_messages=prompt_messages, tools=tools)

    # -- other model types --------------------------------------------------------------

    async def invoke_text_embedding(self, texts: Sequence[str], user: str | None = None, **options: Any) -> Any:
        emb = self._check(ModelType.TEXT_EMBEDDING)
        if self.policy is not None and set(options) <= {"input_type"}:
            router, route = self.policy.router, self.policy.route
            return await self._charged(
                lambda: router.embed(route, texts, user, options.get("input_type")),
                lambda r: getattr(getattr(r, "usage", None), "total_tokens", None),
            )
        return await self._charged(
            lambda: self._round_robin_invoke(emb.invoke, model=self.model, texts=texts, user=user, **options),
            lambda r: getattr(getattr(r, "usage", None), "total_tokens", None),
        )

    async def get_text_embedding_num_tokens(self, texts: Sequence[str]) -> list[int]:
        emb = self._check(ModelType.TEXT_EMBEDDING)
        return await self._round_robin_invoke(emb.get_num_tokens, model=self.model, texts=texts)

    async def invoke_rerank(
        self, query: str, docs: Sequence[str], score_threshold: float | None = None, top_n: int | None = None, user: str | None = None
    ) -> Any:
        rr = self._check(ModelType.RERANK)
        return await self._charged(
            lambda: self._round_robin_invoke(rr.invoke, model=self.model, query=query, docs=docs, score_threshold=score_threshold, top_n=top_n, user=user)
        )

    async def invoke_moderation(self, text: str, user: str | None = None) -> bool:
        mod = self._check(ModelType.MODERATION)
        return await self._charged(lambda: self._round_robin_invoke(mod.invoke, model=self.model, text=text, user=user))

    async def invoke_speech2text(self, file: IO[bytes] | bytes, user: str | None = None) -> str:
        s2t = self._check(ModelType.SPEECH2TEXT)
        return await self._charged(lambda: self._round_robin_invoke(s2t.invoke, model=self.model, file=file, user=user))

    async def invoke_tts(self, content_text: str, tenant_id: str | None = None, voice: str | None = None, user: str | None = None) -> AsyncIterator[bytes]:
        tts = self._check(ModelType.TTS)
        return await self._charged(
            lambda: self._round_robin_invoke(
                tts.invoke, model=self.model, tenant_id=tenant_id or self.tenant_id, content_text=content_text, voice=voice, user=user
            )
        )

    async def get_tts_voices(self, language: str | None = None) -> list[dict[str, str]]:
        tts = self._check(ModelType.TTS)
        return await self._round_robin_invoke(tts.get_tts_model_voices, model=self.model, language=language)


async def _single_stream(open_stream: Callable[[Mapping[str, Any]], Awaitable[Any]], credentials: Mapping[str, Any]) -> AsyncIterator[Any]:
    stream = await open_stream(credentials)
    try:
        async for item in stream:
            yield item
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
