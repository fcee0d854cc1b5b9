"""The report's targets table: verdicts from the figures, and the floor's own lead over LiteLLM
shown next to the per-call target (pure functions of the rows; no benchmark run)."""

from __future__ import annotations

from typing import Any

from benchmarks.run import targets


def _row(scenario: str, client: str, **figures: Any) -> dict[str, Any]:
    return {"scenario": scenario, "client": client, "ok": True, **figures}


def _by_name(items: list[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    return {name: (measured, verdict) for name, measured, verdict in items}


def test_verdicts_follow_the_thresholds() -> None:
    rows = [
        _row("stream_c512", "arun", cpu_x_floor=1.49, rps_x_floor=0.79, rss_warm_mb=38.0),
        _row("stream_c512", "litellm", cpu_x_arun=85.0, cpu_x_floor=100.0),
        _row("chat_c1", "arun", cpu_x_floor=1.51, rss_warm_mb=51.0),
        _row("chat_c1", "litellm", cpu_x_arun=13.0, cpu_x_floor=14.5),
    ]
    got = _by_name(targets(rows, {"arun\timport arun": 0.02}))
    assert got["CPU per streamed chunk ≤ 1.5× floor"][1] == "met"
    assert got["CPU per non-streamed call ≤ 1.5× floor"][1] == "missed"
    assert got["streams/s at concurrency 512 ≥ 0.8× floor"] == ("stream_c512 0.79×", "missed")
    assert got["≥ 20× less CPU per chunk than LiteLLM"][1] == "met"
    assert got["≥ 20× less CPU per call than LiteLLM"] == ("chat_c1 13.0×", "missed")
    assert got["`import arun` ≤ 100 ms"] == ("import 20 ms", "met")
    assert got["RSS after warm-up ≤ 50 MB"][1] == "missed"  # chat_c1 is over


def test_the_floor_lead_over_litellm_is_shown_for_per_call_scenarios_only() -> None:
    rows = [
        _row("chat_c1", "arun", cpu_x_floor=1.2),
        _row("chat_c1", "litellm", cpu_x_arun=12.0, cpu_x_floor=14.6),
        _row("rerank_c16", "arun", cpu_x_floor=1.1),
        _row("rerank_c16", "litellm", cpu_x_arun=9.2, cpu_x_floor=10.6),
        _row("stream_c64", "arun", cpu_x_floor=1.2),
        _row("stream_c64", "litellm", cpu_x_arun=86.0, cpu_x_floor=110.0),
    ]
    items = targets(rows, {})
    reference = [(m, v) for name, m, v in items if name.startswith("(reference")]
    assert reference == [("chat_c1 14.6×, rerank_c16 10.6×", "—")]


def test_no_figures_no_line() -> None:
    assert targets([_row("chat_c1", "floor", cpu_x_floor=1.0)], {}) == []
