"""Dataset files and synthetic data of `arun bench`: what each line may be, and the message
naming the file and line when one is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from arun import AssistantPromptMessage, SystemPromptMessage, UserPromptMessage
from arun.bench import datasets
from arun.bench.errors import BenchUsageError
from arun.tokenizers import count_tokens


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "data.jsonl"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_prompt_lines_of_every_accepted_shape(tmp_path: Path) -> None:
    path = _file(tmp_path, '"plain"\n\n{"prompt": "from a field"}\n'
                           '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}\n'
                           '[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]\n')  # fmt: skip
    prompts = datasets.load_prompts(path)
    assert len(prompts) == 4  # the blank line is skipped
    assert prompts[0] == [UserPromptMessage(content="plain")] and prompts[1] == [UserPromptMessage(content="from a field")]
    assert [type(m) for m in prompts[2]] == [SystemPromptMessage, UserPromptMessage]
    assert [type(m) for m in prompts[3]] == [UserPromptMessage, AssistantPromptMessage, UserPromptMessage]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"ok"\n{"prompt": "x"\n', "line 2: not JSON"),
        ('"ok"\n\n42\n', 'line 3: expected a string, {"prompt": "..."}'),
        ('[{"role": "wizard", "content": "x"}]\n', "line 1: not a list of messages"),
        ("\n\n", "the file has no lines"),
    ],
)
def test_bad_prompt_lines_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(BenchUsageError) as info:
        datasets.load_prompts(path)
    assert str(info.value).startswith(f"--dataset {path}") and message in str(info.value)


def test_text_and_rerank_lines(tmp_path: Path) -> None:
    assert datasets.load_texts(_file(tmp_path, '"a"\n{"text": "b"}\n')) == ["a", "b"]
    with pytest.raises(BenchUsageError, match=r"line 2: expected a string or \{\"text\""):
        datasets.load_texts(_file(tmp_path, '"a"\n{"txt": "b"}\n'))
    path = _file(tmp_path, '{"query": "q", "documents": ["d1", "d2"]}\n')
    assert datasets.load_rerank(path) == [("q", ["d1", "d2"])]
    with pytest.raises(BenchUsageError, match="line 1: expected"):
        datasets.load_rerank(_file(tmp_path, '{"query": "q", "documents": []}\n'))
    with pytest.raises(BenchUsageError, match="no such file"):
        datasets.load_texts(str(tmp_path / "missing.jsonl"))


def test_synthetic_data_is_seeded_and_sized_in_tokens() -> None:
    prompts = datasets.synthetic_prompts(5, 100, seed=1)
    assert prompts == datasets.synthetic_prompts(5, 100, seed=1) != datasets.synthetic_prompts(5, 100, seed=2)
    assert len({p[0].content for p in prompts}) == 5  # distinct prompts
    for encoding in ("gpt2", "cl100k_base", "o200k_base"):
        assert count_tokens(str(prompts[0][0].content), encoding) == 100
    queries = datasets.synthetic_rerank(3, docs=4, words=10, seed=0)
    assert len(queries) == 3 and all(len(docs) == 4 for _, docs in queries)
    assert len(datasets.synthetic_texts(7, 5, seed=0)) == 7
