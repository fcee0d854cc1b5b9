from __future__ import annotations

import math

from arun.testing.content import (
    Conversation,
    ToolSpec,
    audio_bytes,
    count_words,
    embedding_tokens,
    embedding_vector,
    moderation_flagged,
    plan_reply,
    prompt_tokens,
    rerank_score,
    split_arguments,
    split_pieces,
)


def conv(**kw):
    base = {"texts": ["hello big world"], "n_messages": 1, "last_role": "user", "last_user_text": "hello big world", "tool_results": []}
    base.update(kw)
    return Conversation(**base)


def test_split_pieces_round_trips_and_keeps_trailing_spaces():
    text = "Echo:  hello\nbig world"
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert pieces == ["Echo:  ", "hello\n", "big ", "world"]
    assert split_pieces("") == []


def test_echo_reply_and_usage():
    r = plan_reply(conv())
    assert r.text == "Echo: hello big world"
    assert r.pieces == ["Echo: ", "hello ", "big ", "world"]
    assert r.finish == "stop"
    assert r.completion_tokens == 4
    assert prompt_tokens(["hello big world", "be brief"], 2) == 5 + 6


def test_tool_result_reply():
    r = plan_reply(conv(last_role="tool", tool_results=["sunny", "rainy"]))
    assert r.text == "Tool results: sunny; rainy"


def test_max_words_gives_length():
    r = plan_reply(conv(max_words=2))
    assert r.pieces == ["Echo: ", "hello "] and r.finish == "length"


def test_stop_cuts_before_first_occurrence():
    r = plan_reply(conv(stop=["world", "big"]))
    assert r.text == "Echo: hello " and r.finish == "stop_sequence" and r.stop_sequence == "big"


def test_stop_beyond_cap_is_length():
    r = plan_reply(conv(stop=["world"], max_words=1))
    assert r.finish == "length" and r.text == "Echo: "


def test_reply_words_pads_and_truncates():
    assert len(plan_reply(conv(), reply_words=50).pieces) == 50
    r = plan_reply(conv(), reply_words=2)
    assert r.text == "Echo: hello"


def test_json_mode_wraps_reply():
    import json

    r = plan_reply(conv(json_mode=True))
    assert json.loads(r.text) == {"answer": "Echo: hello big world"}


def test_tool_calls_arguments_from_schema():
    tools = [
        ToolSpec("a", {"type": "object", "properties": {"s": {"type": "string"}, "i": {"type": "integer"},
                                                        "n": {"type": "number"}, "b": {"type": "boolean"},
                                                        "o": {"type": "object"}}}),
    ] + [ToolSpec(f"t{i}", {}) for i in range(5)]
    r = plan_reply(conv(tools=tools), id_prefix="toolu_")
    assert r.finish == "tool_calls"
    assert len(r.tool_calls) == 4  # capped
    assert [c.id for c in r.tool_calls] == ["toolu_0", "toolu_1", "toolu_2", "toolu_3"]
    assert r.tool_calls[0].input == {"s": "hello big world", "i": 1, "n": 1, "b": True, "o": None}
    assert r.completion_tokens == sum(count_words(c.arguments) for c in r.tool_calls)


def test_tools_ignored_after_tool_result_and_with_choice_none():
    tools = [ToolSpec("a", {})]
    assert not plan_reply(conv(tools=tools, last_role="tool", tool_results=["x"])).tool_calls
    assert not plan_reply(conv(tools=tools, tool_choice_none=True)).tool_calls


def test_split_arguments_at_least_two():
    for s in ["{}", '{"a":1}', '{"x":"' + "y" * 100 + '"}']:
        parts = split_arguments(s)
        assert len(parts) >= 2 and "".join(parts) == s


def test_embedding_vector_deterministic_normalised():
    v = embedding_vector("abc", 16)
    assert v == embedding_vector("abc", 16)
    assert v != embedding_vector("abd", 16)
    assert len(v) == 16
    assert math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9)
    assert embedding_tokens(["a b", "c"]) == 3


def test_rerank_score_and_moderation():
    assert rerank_score("red apple", "a red apple pie") == 1.0
    assert rerank_score("red apple", "a red car") == 0.5
    assert rerank_score("red apple", "blue") == 0.0
    assert moderation_flagged("I will KILL it") == {"hate": False, "violence": True}
    assert moderation_flagged("skill") == {"hate": False, "violence": False}


def test_audio_bytes():
    a = audio_bytes("one two three", 256)
    assert a.startswith(b"ID3") and len(a) == 768
    assert a == audio_bytes("one two three", 256)
