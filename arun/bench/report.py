"""How a run is shown: the summary table, the metrics legend, the JSON file and the plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arun.bench.errors import BenchUsageError

__all__ = ["LEGEND", "level_label", "format_table", "write_json", "write_plot"]

LEGEND = """\
What the figures mean (names as in vLLM's `bench serve` and genai-perf): requests/s counts
successful requests over the level's wall time (first send to last completion); output
tokens/s sums the completion tokens of the terminal usage (the JSON says when they had to be
counted from chunks instead). TTFT is the time from sending a request to its first content or
tool-call delta; ITL the gap between successive content deltas (pooled over all requests);
TPOT = (E2E - TTFT) / (output tokens - 1) per request, the mean time per token after the first;
E2E the whole request. Each shows p50 / p90 / p99 in milliseconds over successful requests.
Errors are counted by arun error class (a stream cut short counts as its error, never as a
short success). Rate-limit waits are the requests the policy layer held back (Retry-After,
backoff, limits) and for how long, when going through --tenant with --policy. Goodput is the
successful requests per second that met every --slo bound. Client CPU is this process's CPU
time (arun plus the bench's own bookkeeping) per request and as a share of one core: far
below 100% means the client was not the bottleneck.\
"""


def level_label(level: dict[str, Any]) -> str:
    if "rate" in level:
        return f"rate={level['rate']:g}/s"
    return f"c={level['concurrency']}"


def _fmt(x: float | int | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _dist(d: dict[str, float] | None) -> str:
    return "-" if d is None else " / ".join(_fmt(d[k]) for k in ("p50", "p90", "p99"))


def _rows(kind: str, levels: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, f: Any) -> None:
        rows.append((name, [f(lv) for lv in levels]))

    row("requests ok / failed", lambda lv: f"{lv['completed']:,} / {lv['failed']:,}")
    row("duration s", lambda lv: _fmt(lv["duration_s"]))
    row("requests/s", lambda lv: _fmt(lv["request_throughput"]))
    if kind == "llm":
        row("output tokens/s", lambda lv: _fmt(lv["output_throughput"]))
        row("total tokens/s", lambda lv: _fmt(lv["total_token_throughput"]))
        row("TTFT ms p50/p90/p99", lambda lv: _dist(lv["ttft_ms"]))
        row("TPOT ms p50/p90/p99", lambda lv: _dist(lv["tpot_ms"]))
        row("ITL ms p50/p90/p99", lambda lv: _dist(lv["itl_ms"]))
    else:
        noun = "texts" if kind == "text-embedding" else "documents"
        result = "vectors" if kind == "text-embedding" else "results"
        row(f"{noun}/s", lambda lv: _fmt(lv.get("items_throughput")))
        row(f"{result}/s", lambda lv: _fmt(lv.get("results_throughput")))
        if kind == "text-embedding":
            row("input tokens/s", lambda lv: _fmt(lv["input_throughput"]))
    row("E2E ms p50/p90/p99", lambda lv: _dist(lv["e2e_ms"]))
    if any("goodput" in lv for lv in levels):
        row("goodput req/s (share)", lambda lv: f"{_fmt(lv['goodput']['request_goodput'])} ({lv['goodput']['fraction']:.0%})")
    classes = sorted({name for lv in levels for name in lv["errors"]})
    if not classes:
        row("errors", lambda lv: "0")
    for name in classes:
        row(f"errors: {name}", lambda lv, n=name: _fmt(lv["errors"].get(n, 0)))
    row("rate-limit waits (req, s)", lambda lv: f"{lv['rate_limit_waits']['requests']}, {_fmt(lv['rate_limit_waits']['seconds'])}")
    row("client CPU ms/request", lambda lv: _fmt(lv["client_cpu"]["ms_per_request"]))
    row("client CPU share of a core", lambda lv: f"{lv['client_cpu']['core_utilization']:.0%}")
    return rows


def format_table(kind: str, levels: Sequence[dict[str, Any]], title: str) -> str:
    rows = _rows(kind, levels)
    heads = [level_label(lv) for lv in levels]
    name_w = max(len(name) for name, _ in rows)
    widths = [max(len(h), *(len(vals[i]) for _, vals in rows)) for i, h in enumerate(heads)]
    lines = [title, " " * name_w + "".join(f"  {h:>{w}}" for h, w in zip(heads, widths))]
    for name, vals in rows:
        lines.append(f"{name:<{name_w}}" + "".join(f"  {v:>{w}}" for v, w in zip(vals, widths)))
    return "\n".join(lines)


def write_json(path: str, document: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BenchUsageError(f"--json {path}: cannot write it ({exc.strerror or exc})") from None


def write_plot(path: str, kind: str, levels: Sequence[dict[str, Any]]) -> None:
    """Latency percentiles and throughput against concurrency (or rate); needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchUsageError("--plot needs matplotlib: pip install 'arun[plot]' (or pip install matplotlib)") from None
    open_loop = "rate" in levels[0]
    xs = [lv["rate"] if open_loop else lv["concurrency"] for lv in levels]
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [("TTFT", "ttft_ms"), ("E2E", "e2e_ms")] if kind == "llm" else [("latency", "e2e_ms")]
    for (name, key), color in zip(series, ("tab:blue", "tab:red")):
        for q, style in (("p50", "-o"), ("p90", "--s"), ("p99", ":^")):
            ys = [lv[key][q] if lv[key] else float("nan") for lv in levels]
            lat.plot(xs, ys, style, color=color, label=f"{name} {q}")
    lat.set_ylabel("ms")
    lat.set_title("latency percentiles")
    lat.legend(fontsize=8)
    thr.plot(xs, [lv["request_throughput"] for lv in levels], "-o", color="tab:blue", label="requests/s")
    thr.set_ylabel("requests/s", color="tab:blue")
    thr.set_title("throughput")
    if kind == "llm":
        tok = thr.twinx()
        tok.plot(xs, [lv["output_throughput"] for lv in levels], "-s", color="tab:orange", label="output tokens/s")
        tok.set_ylabel("output tokens/s", color="tab:orange")
    for ax in (lat, thr):
        ax.set_xlabel("requests/s offered (Poisson)" if open_loop else "concurrency")
        if len(xs) > 1 and max(xs) / max(min(xs), 1e-9) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise BenchUsageError(f"--plot {path}: cannot write it ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


