"""Dify §11.9 factory behaviours and typed errors for bad input."""

import pytest

from arun import (
    InvokeAuthorizationError,
    LargeLanguageModel,
    ModelNotFoundError,
    ModelRuntime,
    ModelType,
    ModelTypeNotSupportedError,
    ParameterValidationError,
    ProviderNotFoundError,
    UserPromptMessage,
)


@pytest.fixture
async def rt():
    async with ModelRuntime() as runtime:
        yield runtime


async def test_get_providers_and_models(rt):
    providers = rt.get_providers()
    assert providers and providers[0].provider == "openai"
    assert rt.get_providers() == providers  # nothing accumulates between calls
    llms = await rt.get_models(model_type="llm")
    assert llms and all(m.model_type is ModelType.LLM for p in llms for m in p.models)
    only_openai = await rt.get_models(provider="openai")
    assert [p.provider for p in only_openai] == ["openai"]


async def test_model_instances_are_per_runtime_and_typed(rt):
    llm = rt.get_model_instance("openai", "llm")
    assert isinstance(llm, LargeLanguageModel)
    assert rt.get_model_instance("openai", ModelType.LLM) is llm
    async with ModelRuntime() as other:
        assert other.get_model_instance("openai", "llm") is not llm


async def test_predefined_models_follow_position(rt):
    models = await rt.get_model_instance("openai", "llm").predefined_models()
    assert models[0].model == "gpt-4.1"


@pytest.mark.parametrize(
    "provider, model_type, error",
    [("nope", "llm", ProviderNotFoundError), ("openai", "rerank", ModelTypeNotSupportedError), ("openai", "text2video", ModelTypeNotSupportedError)],
)
async def test_unknown_provider_or_type(rt, provider, model_type, error):
    with pytest.raises(error):
        rt.get_model_instance(provider, model_type)


async def test_bad_invocations_are_typed_and_name_the_field(rt):
    llm = rt.get_model_instance("openai", "llm")
    creds = {"openai_api_key": "sk-x", "openai_api_base": "http://127.0.0.1:9"}
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        await llm.invoke("no-such-model", None, [UserPromptMessage(content="hi")])
    with pytest.raises(ParameterValidationError, match="prompt_messages must not be empty"):
        await llm.invoke("gpt-4o", creds, [])
    with pytest.raises(ParameterValidationError, match=r"prompt_messages\[0\]"):
        await llm.invoke("gpt-4o", creds, [{"role": "user", "content": "hi"}])
    with pytest.raises(ParameterValidationError, match="max_tokens should be int"):
        await llm.invoke("gpt-4o", creds, [UserPromptMessage(content="hi")], {"max_tokens": "10"})
    with pytest.raises(ParameterValidationError, match="stop"):
        await llm.invoke("gpt-4o", creds, [UserPromptMessage(content="hi")], stop="END")


async def test_connection_refused_is_a_connection_error(rt):
    from arun import InvokeConnectionError

    llm = rt.get_model_instance("openai", "llm")
    creds = {"openai_api_key": "sk-x", "openai_api_base": "http://127.0.0.1:9"}
    with pytest.raises(InvokeConnectionError) as info:
        await llm.invoke("gpt-4o", creds, [UserPromptMessage(content="hi")], stream=False)
    assert info.value.provider == "openai" and info.value.model == "gpt-4o"


async def test_callbacks_fire_in_order_and_do_not_share_state(rt):
    from arun import Callback
    from arun.testing import UpstreamSimulator

    events = []

    class Recorder(Callback):
        def on_before_invoke(self, **kw):
            events.append("before")

        async def on_new_chunk(self, **kw):
            events.append("chunk")

        def on_after_invoke(self, **kw):
            events.append(("after", kw["result"].message.content))

        def on_invoke_error(self, **kw):
            events.append("error")

    class Broken(Callback):
        def on_before_invoke(self, **kw):
            raise RuntimeError("callback bug")  # logged, not raised (raise_error is False)

    async with UpstreamSimulator() as sim:
        creds = {"openai_api_key": "sk-cb", "openai_api_base": sim.url}
        llm = rt.get_model_instance("openai", "llm")
        callbacks = [Broken(), Recorder()]
        stream = await llm.invoke("gpt-4o", creds, [UserPromptMessage(content="one two")], callbacks=callbacks)
        text = (await stream.collect()).message.content
        assert callbacks == callbacks[:2] and len(callbacks) == 2  # the caller's list is not mutated
        assert events[0] == "before" and events[-1] == ("after", text) and "chunk" in events
        events.clear()
        with pytest.raises(InvokeAuthorizationError):
            await llm.invoke("gpt-4o", {**creds, "openai_api_key": "invalid-x"}, [UserPromptMessage(content="x")], callbacks=[Recorder()])
        assert events == ["before", "error"]
