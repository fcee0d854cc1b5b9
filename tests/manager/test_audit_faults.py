"""The faults an audit found in the manager and policy path (issue 10 §3), each against real stores
and the simulator over sockets: validation comes first with the bare runtime's typed errors, a
broken provider folder is listed as broken and skipped, tokens quotas hold under concurrency and
charge abandoned streams what they used, bad manager arguments are typed errors, a stream
dropped without closing frees its connection at once."""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path
from typing import Any

import pytest

from arun import ModelRuntime, UserPromptMessage
from arun.errors import CredentialsValidateFailedError, ParameterValidationError
from arun.manager import ModelManager, PolicyConfig, QuotaExceededError
from arun.manager.store import open_store

KEY = "sk-audit-0123456789abcdef"
MSG = [UserPromptMessage(content="hello there")]


def creds(sim: Any, key: str = KEY) -> dict[str, str]:
    return {"openai_api_key": key, "openai_api_base": sim.url}


@pytest.fixture(params=[False, True], ids=["dify-rules", "policy"])
async def manager(request: Any, store_url: str):
    store = await open_store(store_url)
    m = ModelManager(store=store, state="memory://", master_key=os.urandom(32), policy=PolicyConfig() if request.param else None)
    async with m:
        yield m
    await store.close()


# ----------------------------------------------------------------------- 4: validation first


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"model_parameters": "x"}, "model_parameters"),
        ({"prompt_messages": None}, "prompt_messages"),
        ({"prompt_messages": [None]}, "prompt_messages"),
        ({"prompt_messages": "hi"}, "prompt_messages"),
        ({"model_parameters": {"max_tokens": True}}, "max_tokens"),
        ({"stop": 5}, "stop"),
        ({"tools": ["not a tool"]}, "tools"),
    ],
)
async def test_llm_inputs_are_validated_before_anything_else(manager: ModelManager, upstream: Any, kwargs: dict[str, Any], parameter: str) -> None:
    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    inst = await manager.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
    upstream.stats.reset()
    call = {"prompt_messages": MSG, "stream": False, **kwargs}
    with pytest.raises(ParameterValidationError) as info:
        await inst.invoke_llm(**call)
    assert info.value.parameter == parameter
    assert upstream.stats.total == 0


@pytest.mark.parametrize("texts", [[None], "str", None, [b"bytes"]], ids=["none-item", "string", "none", "bytes"])
async def test_embedding_inputs_are_validated(manager: ModelManager, upstream: Any, texts: Any) -> None:
    t = await manager.create_tenant("acme")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    inst = await manager.get_model_instance(t.id, "openai", "text-embedding", "text-embedding-3-small")
    upstream.stats.reset()
    with pytest.raises(ParameterValidationError) as info:
        await inst.invoke_text_embedding(texts)
    assert info.value.parameter == "texts" and upstream.stats.total == 0


# ----------------------------------------------------------------------- 3: a broken provider


async def test_a_broken_provider_folder_is_listed_and_skipped(tmp_path: Path, upstream: Any) -> None:
    broken = tmp_path / "broken_one"
    broken.mkdir()
    (broken / "broken_one.yaml").write_text("provider: broken_one\nlabel: [not, a, mapping]\n")
    store = await open_store(f"sqlite:///{tmp_path}/a.db")
    runtime = ModelRuntime(provider_paths=[tmp_path])
    await runtime.start()
    try:
        async with ModelManager(store=store, state="memory://", runtime=runtime, master_key=os.urandom(32)) as m:
            t = await m.create_tenant("acme")
            await m.save_provider_credentials(t.id, "openai", creds(upstream))
            statuses = {s.provider: s for s in await m.list_providers(t.id)}
            assert statuses["broken_one"].status == "broken" and "SchemaError" in (statuses["broken_one"].error or "")
            assert statuses["openai"].status == "active"
            models = await m.list_models(t.id, model_type="llm")
            assert models and all(s.provider != "broken_one" for s in models)
            default = await m.get_default_model(t.id, "llm")
            assert default is not None and default.provider_name == "openai"
            assert any(p.provider == "openai" for p in await runtime.get_models(model_type="llm"))
    finally:
        await runtime.aclose()
        await store.close()


# ----------------------------------------------------------------------- 5: tokens quotas


async def test_tokens_quota_holds_under_500_concurrent_calls(tmp_path: Path, upstream: Any) -> None:
    """Issue 10 fault 5: 500 concurrent calls against a 1,000-token limit.  Before: 406-500 admitted,
    11,368-14,000 tokens used.  Now each call reserves prompt tokens + max_tokens first."""
    store = await open_store(f"sqlite:///{tmp_path}/q.db")
    try:
        async with ModelManager(store=store, state="memory://", master_key=os.urandom(32)) as m:
            t = await m.create_tenant("acme")
            await m.set_system_quota(t.id, "openai", quota_limit=1000, quota_unit="tokens", credentials=creds(upstream))
            inst = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")

            async def one() -> int:
                try:
                    r = await inst.invoke_llm(MSG, {"max_tokens": 16}, stream=False)
                except QuotaExceededError:
                    return 0
                return r.usage.total_tokens

            used = await asyncio.gather(*(one() for _ in range(500)))
            admitted = [u for u in used if u]
            charged = (await m.get_quotas(t.id, "openai"))[0].used
            assert charged == sum(admitted) <= 1000
            assert 20 < len(admitted) < 100
    finally:
        await store.close()


async def test_an_abandoned_stream_is_charged_what_it_used(tmp_path: Path) -> None:
    """Before: a stream abandoned after its first chunk was charged 1 token against ~28 used."""
    from arun.testing import SimulatorConfig, UpstreamSimulator

    store = await open_store(f"sqlite:///{tmp_path}/q.db")
    upstream = UpstreamSimulator(SimulatorConfig(reply_words=60, chunk_delay=0.002))
    await upstream.start()
    try:
        async with ModelManager(store=store, state="memory://", master_key=os.urandom(32)) as m:
            t = await m.create_tenant("acme")
            await m.set_system_quota(t.id, "openai", quota_limit=100_000, quota_unit="tokens", credentials=creds(upstream))
            inst = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
            whole = await inst.invoke_llm(MSG, stream=False)
            before = (await m.get_quotas(t.id, "openai"))[0].used
            stream = await inst.invoke_llm(MSG, stream=True)
            async with stream:
                first = await stream.__anext__()
            assert first.delta.message.content
            charged = (await m.get_quotas(t.id, "openai"))[0].used - before
            partial = stream.partial_usage()
            assert charged == partial.total_tokens
            assert partial.prompt_tokens == await inst.get_llm_num_tokens(MSG)  # the prompt counted locally
            assert 0 < partial.completion_tokens < whole.usage.completion_tokens
    finally:
        await upstream.close()
        await store.close()


# ----------------------------------------------------------------------- 7: manager arguments


async def test_manager_arguments_are_typed_errors(manager: ModelManager, upstream: Any) -> None:
    t = await manager.create_tenant("acme")
    with pytest.raises(CredentialsValidateFailedError):
        await manager.save_provider_credentials(t.id, "openai", "sk-a-string")  # type: ignore[arg-type]
    with pytest.raises(CredentialsValidateFailedError):
        await manager.save_model_credentials(t.id, "openai_api_compatible", "llm", "m", ["a", "list"])  # type: ignore[arg-type]
    with pytest.raises(ParameterValidationError) as info:
        await manager.set_system_quota(t.id, "openai", quota_limit="x")  # type: ignore[arg-type]
    assert info.value.parameter == "quota_limit"
    with pytest.raises(ParameterValidationError):
        await manager.set_system_quota(t.id, "openai", quota_limit=True)
    with pytest.raises(ParameterValidationError):
        await manager.set_system_quota(t.id, "openai", quota_limit=10, quota_type="gold")
    await manager.save_provider_credentials(t.id, "openai", creds(upstream))
    with pytest.raises(ParameterValidationError) as info:
        await manager.set_fallbacks(t.id, "openai", "llm", "gpt-4o-mini", [("openai", "gpt-4o", ["NoSuchError"])])
    assert info.value.parameter == "chain"


# ----------------------------------------------------------------------- 11: dropped streams


async def test_a_stream_dropped_without_closing_frees_its_connection_at_once(upstream: Any) -> None:
    """Before: about 20 of 250 dropped streams kept their connection until the garbage collector ran."""
    gc.disable()  # prove it is reference counting, not the collector, that frees them
    try:
        async with ModelRuntime() as rt:
            llm = rt.get_model_instance("openai", "llm")
            for i in range(250):
                stream = await llm.invoke("gpt-4o-mini", creds(upstream), MSG, {}, stream=True)
                if i % 2:
                    await stream.__anext__()  # started, then dropped mid-stream
                del stream
            for _ in range(20):
                await asyncio.sleep(0)  # the finalizers scheduled by the drops run
            assert rt.http.acquired_connections() == 0
    finally:
        gc.enable()
