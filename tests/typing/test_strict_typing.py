"""The public surface under ``mypy --strict``, checked the way a user's project checks it: the
sample alone, with no configuration of ours (so no ``ignore_missing_imports``, no overrides).

A second, deliberately wrong sample must fail with the errors a user would want to see: that
proves the check can fail, and that the overloads narrow (a non-streamed call is not a stream).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SAMPLE = Path(__file__).with_name("user_sample.py")

WRONG = '''
from arun import LargeLanguageModel, LLMStream, ModelRuntime, TextEmbeddingModel, UserPromptMessage

async def wrong(rt: ModelRuntime) -> None:
    llm = rt.get_model_instance("openai", "llm")
    embedder: LargeLanguageModel = rt.get_model_instance("openai", "text-embedding")
    stream: LLMStream = await llm.invoke("m", {}, [UserPromptMessage(content="hi")], stream=False)
    await llm.invoke("m", {}, "not a list of messages", stream=False)
    typed: TextEmbeddingModel = rt.get_model_instance("openai", "text-embedding")
    await typed.invoke("m", {}, ["a"], max_concurrency="four")
'''


def _mypy(tmp_path: Path, target: Path) -> tuple[str, int]:
    config = tmp_path / "empty.ini"
    config.write_text("[mypy]\n")
    out, err, status = api.run(
        ["--strict", "--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(target)]
    )
    return out + err, status


def test_user_sample_passes_strict(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, SAMPLE)
    assert status == 0, out
    assert out.strip() == ""


def test_wrong_code_is_caught(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.py"
    wrong.write_text(textwrap.dedent(WRONG))
    out, status = _mypy(tmp_path, wrong)
    assert status == 1
    lines = [line for line in out.splitlines() if ": error:" in line]
    by_line = {int(line.split(":")[1]): line for line in lines}
    assert '"TextEmbeddingModel"' in by_line[6] and '"LargeLanguageModel"' in by_line[6]  # the per-type overloads
    assert '"LLMResult"' in by_line[7] and '"LLMStream"' in by_line[7]  # stream=False is a result, not a stream
    assert "Sequence[PromptMessage]" in by_line[8]  # a string is not a list of messages
    assert "max_concurrency" in by_line[10]
    assert len(lines) == 4, out
