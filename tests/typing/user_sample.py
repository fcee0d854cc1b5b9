"""User code as a service writes it, checked by ``mypy --strict`` (``make test`` runs mypy on
this file; ``tests/typing/test_strict_typing.py`` checks it alone, as a user's project would).

Every ``assert_type`` states the type a user's editor and type checker see: the model object
of each type, the stream or result an ``invoke`` returns for ``stream=True`` / ``stream=False``,
the chunks of a stream, and the error classes one ``except`` catches.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import assert_type

from arun import (
    ArunError,
    InvokeError,
    InvokeRateLimitError,
    InvokeStreamInterruptedError,
    LargeLanguageModel,
    LLMResult,
    LLMResultChunk,
    LLMStream,
    LLMUsage,
    ModelRuntime,
    ModelType,
    ModerationModel,
    PromptMessage,
    PromptMessageTool,
    RerankModel,
    RerankResult,
    Speech2TextModel,
    SystemPromptMessage,
    TextEmbeddingModel,
    TextEmbeddingResult,
    TTSModel,
    UserPromptMessage,
)
from arun.manager import ModelInstance, ModelManager
from arun.policy import CredentialConfig, PolicyRouter, Route, Target

CREDENTIALS = {"openai_api_key": "sk-..."}


async def model_objects(rt: ModelRuntime) -> None:
    assert_type(rt.get_model_instance("openai", "llm"), LargeLanguageModel)
    assert_type(rt.get_model_instance("openai", ModelType.LLM), LargeLanguageModel)
    assert_type(rt.get_model_instance("openai", "text-embedding"), TextEmbeddingModel)
    assert_type(rt.get_model_instance("openai", ModelType.TEXT_EMBEDDING), TextEmbeddingModel)
    assert_type(rt.get_model_instance("cohere", "rerank"), RerankModel)
    assert_type(rt.get_model_instance("openai", "speech2text"), Speech2TextModel)
    assert_type(rt.get_model_instance("openai", "tts"), TTSModel)
    assert_type(rt.get_model_instance("openai", "moderation"), ModerationModel)
    assert_type(rt.get_provider("openai").get_model_instance("llm"), LargeLanguageModel)


async def chat(rt: ModelRuntime, question: str) -> str:
    llm = rt.get_model_instance("openai", "llm")
    messages: Sequence[PromptMessage] = [SystemPromptMessage(content="Be brief."), UserPromptMessage(content=question)]

    result = await llm.invoke("gpt-4o-mini", CREDENTIALS, messages, {"temperature": 0.2}, stream=False)
    assert_type(result, LLMResult)
    assert_type(result.usage, LLMUsage)

    stream = await llm.invoke("gpt-4o-mini", CREDENTIALS, messages)  # stream=True is the default
    assert_type(stream, LLMStream)
    parts: list[str] = []
    async with stream:
        async for chunk in stream:
            assert_type(chunk, LLMResultChunk)
            parts.append(chunk.delta.message.text())
    assert_type(stream.result(), LLMResult)

    either = await llm.invoke("gpt-4o-mini", CREDENTIALS, messages, stream=bool(parts))
    assert_type(either, LLMResult | LLMStream)
    return "".join(parts) + result.message.text()


async def tools(rt: ModelRuntime) -> list[str]:
    llm = rt.get_model_instance("openai", ModelType.LLM)
    weather = PromptMessageTool(name="weather", description="Weather of a city", parameters={"type": "object"})
    result = await llm.invoke("gpt-4o", CREDENTIALS, [UserPromptMessage(content="Paris?")], tools=[weather], stream=False)
    return [call.function.name for call in result.message.tool_calls]


async def other_types(rt: ModelRuntime) -> float:
    vectors = await rt.get_model_instance("openai", "text-embedding").invoke("text-embedding-3-small", CREDENTIALS, ["a", "b"])
    assert_type(vectors, TextEmbeddingResult)
    ranked = await rt.get_model_instance("cohere", "rerank").invoke("rerank-v3.5", {"api_key": "..."}, "q", ["d1", "d2"])
    assert_type(ranked, RerankResult)
    flagged = await rt.get_model_instance("openai", "moderation").invoke("omni-moderation-latest", CREDENTIALS, "text")
    assert_type(flagged, bool)
    return vectors.embeddings[0][0] + (ranked.docs[0].score if ranked.docs else 0.0)


async def errors(rt: ModelRuntime) -> str:
    llm = rt.get_model_instance("openai", "llm")
    try:
        await llm.invoke("gpt-4o-mini", CREDENTIALS, [UserPromptMessage(content="hi")], stream=False)
    except InvokeRateLimitError as exc:
        return f"retry after {exc.retry_after}"
    except InvokeStreamInterruptedError as exc:
        return f"cut after {exc.delivered_chunks} chunks"
    except InvokeError as exc:
        return f"{exc.provider}: {exc.status}"
    except ArunError as exc:  # anything else arun raises (store, state, quota, usage)
        return type(exc).__name__
    return "ok"


async def managed(manager: ModelManager, tenant: str) -> LLMResult:
    instance = await manager.get_model_instance(tenant, "openai", "llm", "gpt-4o-mini")
    assert_type(instance, ModelInstance)
    stream = await instance.invoke_llm([UserPromptMessage(content="hi")])
    assert_type(stream, LLMStream)
    return await instance.invoke_llm([UserPromptMessage(content="hi")], stream=False)


async def routed(rt: ModelRuntime) -> LLMResult:
    target = Target("openai", "gpt-4o-mini", [CredentialConfig("a", CREDENTIALS), CredentialConfig("b", CREDENTIALS)])
    router = PolicyRouter(rt)
    stream = await router.invoke(Route(target), [UserPromptMessage(content="hi")])
    assert_type(stream, LLMStream)
    vectors = await router.embed(target, ["a", "b"])
    assert_type(vectors, TextEmbeddingResult)
    return await router.invoke(target, [UserPromptMessage(content="hi")], stream=False)
