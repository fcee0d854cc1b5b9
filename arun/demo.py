"""``arun demo``: a real scenario through the public API against the built-in upstream simulator.

No API key and no network: the simulator speaks each provider's wire protocol
on a local socket, and everything below goes through the same code a service
would use against the real APIs.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run_demo"]


def _say(title: str) -> None:
    print(f"\n== {title}", flush=True)


async def _scenario(out_dir: Path, texts: int) -> None:
    from tqdm import tqdm

    from arun import (
        CredentialsValidateFailedError,
        ModelRuntime,
        PromptMessageTool,
        SystemPromptMessage,
        UserPromptMessage,
    )
    from arun.testing import UpstreamSimulator

    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        print(f"upstream simulator listening on {sim.url}")
        openai = {"openai_api_key": "sk-demo-key-0001", "openai_api_base": sim.url}

        _say("providers and models")
        for provider in await rt.get_models():
            kinds = ", ".join(t.value for t in provider.supported_model_types)
            names = ", ".join(m.model for m in provider.models) or "(customizable: add your own models)"
            print(f"- {provider.provider:<22} [{kinds}]\n    {names}")

        _say("credential validation")
        await rt.provider_credentials_validate("openai", openai)
        print("openai, good key: valid")
        try:
            await rt.provider_credentials_validate("openai", {**openai, "openai_api_key": "invalid-key"})
        except CredentialsValidateFailedError as exc:
            print(f"openai, bad key:  rejected -> {exc}")

        llm = rt.get_model_instance("openai", "llm")
        tools = [
            PromptMessageTool(
                name="get_weather",
                description="Current weather in a city",
                parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            ),
            PromptMessageTool(
                name="get_local_time",
                description="Local time in a city",
                parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            ),
        ]
        messages = [SystemPromptMessage(content="You are a travel assistant."), UserPromptMessage(content="Paris")]

        _say("streamed chat with a parallel tool call")
        stream = await llm.invoke("gpt-4o", openai, messages, {"temperature": 0.2}, tools=tools, stream=True)
        async with stream:
            async for chunk in stream:
                if chunk.delta.finish_reason:
                    print(f"finish_reason={chunk.delta.finish_reason}")
        for call in stream.result().message.tool_calls:
            print(f"tool call {call.id}: {call.function.name}({call.function.arguments})")

        _say("non-streamed chat with usage and price")
        question = [UserPromptMessage(content="Summarise the plot of Hamlet in one sentence.")]
        result = await llm.invoke("gpt-4o", openai, question, {"max_tokens": 256}, stream=False)
        u = result.usage
        print(f"answer: {result.message.content}")
        print(
            f"usage: {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens; "
            f"price {u.prompt_price} + {u.completion_price} = {u.total_price} {u.currency}; latency {u.latency * 1000:.1f} ms"
        )

        _say(f"embedding fan-out: {texts:,} texts")
        embedder = rt.get_model_instance("openai", "text-embedding")
        schema = await embedder.require_schema("text-embedding-3-small", None)
        corpus = [f"document number {i} about topic {i % 97}" for i in range(texts)]
        started = time.perf_counter()
        with tqdm(total=len(corpus), unit="text", file=sys.stdout, mininterval=0.2) as bar:
            embedded = await embedder.invoke(
                "text-embedding-3-small", openai, corpus, max_concurrency=8, on_progress=bar.update
            )
        took = time.perf_counter() - started
        print(
            f"{len(embedded.embeddings):,} vectors of dimension {len(embedded.embeddings[0])} in batches of "
            f"{schema.property('max_chunks')} ({took:.2f} s); {embedded.usage.tokens:,} tokens, "
            f"{embedded.usage.total_price} {embedded.usage.currency}"
        )

        _say("rerank with score_threshold and top_n")
        reranker = rt.get_model_instance("jina", "rerank")
        jina = {"api_key": "jina_demo_key_0001", "base_url": sim.url + "/v1"}
        docs = [
            "Paris is the capital of France.",
            "The Eiffel Tower is in Paris.",
            "Bananas are rich in potassium.",
            "France borders Spain and Italy.",
        ]
        ranked = await reranker.invoke(
            "jina-reranker-v2-base-multilingual", jina, "capital of France Paris", docs, score_threshold=0.1, top_n=2
        )
        for doc in ranked.docs:
            print(f"{doc.score:.3f}  #{doc.index}  {doc.text}")

        _say("speech to text")
        audio = out_dir / "question.mp3"
        audio.write_bytes(b"ID3" + bytes(range(256)) * 40)
        stt = rt.get_model_instance("openai", "speech2text")
        with open(audio, "rb") as fh:  # noqa: ASYNC230 - a demo file of 10 kB
            print("transcript:", await stt.invoke("whisper-1", openai, fh))

        _say("text to speech (streamed to a file)")
        tts = rt.get_model_instance("openai", "tts")
        target = out_dir / "answer.mp3"
        size = 0
        with open(target, "wb") as fh:  # noqa: ASYNC230 - a demo file of a few kB
            async for piece in await tts.invoke("tts-1", None, openai, result.message.text() or "Hello.", "alloy"):
                fh.write(piece)
                size += len(piece)
        print(f"wrote {size:,} bytes of audio to {target}")

        _say("moderation")
        moderation = rt.get_model_instance("openai", "moderation")
        for text in ("I love sunny afternoons.", "I will kill the process and hate the bugs."):
            flagged = await moderation.invoke("omni-moderation-latest", openai, text)
            print(f"{'FLAGGED' if flagged else 'ok':>7}  {text}")

        print(f"\nupstream saw {sim.stats.total} requests; pool has {rt.http.acquired_connections()} connections checked out")


def run_demo(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="arun demo", description=__doc__)
    parser.add_argument("--texts", type=int, default=10_000, help="texts in the embedding fan-out")
    parser.add_argument("--out", type=Path, default=None, help="where to write the audio files")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="arun-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(_scenario(out, args.texts))
    return 0

