"""The arithmetic of `arun bench` on synthetic timestamps: percentiles, the per-level figures,
goodput, SLO parsing and the Poisson schedule (no clock is read anywhere here)."""

from __future__ import annotations

import itertools

import pytest

from arun.bench.load import poisson_arrivals
from arun.bench.metrics import SLO, Sample, distribution, meets_slo, parse_duration, parse_slo, percentile, summarize_level


def test_percentile_interpolates_linearly_between_closest_ranks() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5  # unsorted input
    assert percentile(list(range(1, 11)), 90) == pytest.approx(9.1)
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3], 0) == 1 and percentile([1, 2, 3], 100) == 3
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0..100"):
        percentile([1], 101)


def test_distribution_skips_missing_values_and_scales_to_ms() -> None:
    d = distribution([0.001, None, 0.003, 0.002])
    assert d == pytest.approx({"mean": 2.0, "p50": 2.0, "p90": 2.8, "p99": 2.98})
    assert distribution([None, None]) is None


def _samples() -> list[Sample]:
    return [
        Sample(0.0, 1.0, ttft=0.2, itl=[0.1, 0.1], output_tokens=9, input_tokens=10),
        Sample(0.5, 2.0, ttft=0.5, itl=[0.3], output_tokens=6, input_tokens=10),
        Sample(1.0, 1.5, error="InvokeRateLimitError", waited=0.25, retries=1),
        Sample(1.0, 4.0, ttft=2.0, output_tokens=1, input_tokens=20, tokens_from="chunks"),
    ]


def test_level_summary_on_synthetic_timestamps() -> None:
    s = summarize_level(_samples(), started=0.0, cpu_seconds=0.2)
    assert (s["requests"], s["completed"], s["failed"]) == (4, 3, 1)
    assert s["duration_s"] == 4.0  # first send (the level's start) to the last completion
    assert s["request_throughput"] == 0.75  # successful requests only
    assert s["output_throughput"] == 4.0  # 9 + 6 + 1 tokens over 4 s
    assert s["input_throughput"] == 10.0 and s["total_token_throughput"] == 14.0
    assert s["output_tokens_source"] == "mixed"
    assert s["ttft_ms"] == pytest.approx({"mean": 900.0, "p50": 500.0, "p90": 1700.0, "p99": 1970.0})
    # TPOT = (e2e - ttft) / (tokens - 1): 0.8/8 and 1.0/5; the one-token answer has none
    assert s["tpot_ms"] == pytest.approx({"mean": 150.0, "p50": 150.0, "p90": 190.0, "p99": 199.0})
    assert s["itl_ms"]["p50"] == pytest.approx(100.0)  # pooled gaps 100, 100, 300 ms
    assert s["itl_ms"]["mean"] == pytest.approx(500 / 3)
    assert s["e2e_ms"]["p50"] == pytest.approx(1500.0)  # the failed request is not a latency
    assert s["errors"] == {"InvokeRateLimitError": 1}
    assert s["rate_limit_waits"] == {"requests": 1, "seconds": 0.25, "retries": 1}
    assert s["client_cpu"] == pytest.approx({"seconds": 0.2, "ms_per_request": 50.0, "core_utilization": 0.05})
    assert "goodput" not in s


def test_goodput_counts_successes_within_every_bound() -> None:
    s = summarize_level(_samples(), started=0.0, cpu_seconds=0.0, slo=SLO(ttft=0.6, e2e=2.0))
    # the first two meet both bounds; the failure never counts; the last is over TTFT
    assert s["goodput"] == {"slo": {"ttft_ms": 600.0, "e2e_ms": 2000.0}, "good_requests": 2,
                            "request_goodput": 0.5, "fraction": 0.5}  # fmt: skip
    tpot = summarize_level(_samples(), started=0.0, cpu_seconds=0.0, slo=SLO(tpot=0.15))
    assert tpot["goodput"]["good_requests"] == 2  # 0.1 s/token passes, 0.2 fails, one token has no TPOT


def test_meets_slo_needs_a_ttft_when_bounding_it() -> None:
    unstreamed = Sample(0.0, 0.1, output_tokens=5)
    assert meets_slo(unstreamed, SLO(e2e=1.0))
    assert not meets_slo(unstreamed, SLO(ttft=1.0))


def test_empty_and_zero_length_levels_do_not_divide_by_zero() -> None:
    s = summarize_level([], started=5.0, cpu_seconds=0.0, slo=SLO(e2e=1.0))
    assert s["request_throughput"] == 0.0 and s["ttft_ms"] is None and s["goodput"]["fraction"] == 0.0


def test_item_counts_for_embedding_and_rerank_levels() -> None:
    samples = [Sample(0.0, 1.0, items=32, results=32), Sample(0.0, 2.0, items=32, results=32),
               Sample(0.0, 0.5, items=32, error="InvokeServerUnavailableError")]  # fmt: skip
    s = summarize_level(samples, started=0.0, cpu_seconds=0.0)
    assert (s["items"], s["items_throughput"], s["results_throughput"]) == (64, 32.0, 32.0)


def test_parse_duration_and_slo() -> None:
    assert parse_duration("250ms") == 0.25 and parse_duration("1.5s") == 1.5 and parse_duration("2m") == 120
    assert parse_slo("ttft=500ms, e2e=5s") == SLO(ttft=0.5, e2e=5.0)
    assert parse_slo("TPOT=40ms").tpot == pytest.approx(0.04)
    for text, needle in [
        ("ttft=5", "ttft: '5' is not a duration"),
        ("latency=1s", "'latency': unknown SLO metric"),
        ("ttft", "expected NAME=DURATION"),
        ("e2e=1s,e2e=2s", "'e2e' given twice"),
        ("ttft=0ms", "must be positive"),
        (",", "no bound given"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_slo(text)
        assert needle in str(info.value), (text, str(info.value))


def test_poisson_arrivals_are_seeded_and_bounded() -> None:
    a = poisson_arrivals(10.0, count=50, seed=7)
    assert a == poisson_arrivals(10.0, count=50, seed=7)
    assert a != poisson_arrivals(10.0, count=50, seed=8)
    assert len(a) == 50 and a[0] == 0.0 and all(x < y for x, y in itertools.pairwise(a))
    timed = poisson_arrivals(10.0, duration=3.0, seed=7)
    assert timed and max(timed) < 3.0
    assert poisson_arrivals(10.0, count=5, duration=1000.0, seed=7) == a[:5]  # whichever ends first
    long = poisson_arrivals(50.0, count=20001, seed=3)
    assert (long[-1] / 20000) == pytest.approx(1 / 50, rel=0.03)  # mean gap 1/rate (fixed seed)
    with pytest.raises(ValueError, match="positive"):
        poisson_arrivals(-1.0, count=3)
    with pytest.raises(ValueError, match="count or duration"):
        poisson_arrivals(1.0)
