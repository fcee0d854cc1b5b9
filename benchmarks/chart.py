"""Draw benchmarks/results/chart.png from results.json.  Needs matplotlib, which
lives in the peers venv (benchmarks/.peers), never in arun's dependencies.

    benchmarks/.peers/bin/python -m benchmarks.chart results.json chart.png
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    src, dst = argv[0], argv[1]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(src) as fh:
        data = json.load(fh)
    rows = [r for r in data["rows"] if r.get("cpu_ms_per_call") is not None]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    clients = list(dict.fromkeys(r["client"] for r in rows))
    colours = {"floor": "#555555", "arun": "#1f77b4", "arun_lb": "#17becf", "openai": "#2ca02c", "litellm": "#d62728"}
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    width = 0.8 / max(1, len(clients))
    for ax, key, title in (
        (axes[0], "cpu_ms_per_call", "client CPU per call (ms, log) — lower is better"),
        (axes[1], "cps", "throughput (chunks/s, log) — higher is better\n"
                         "(stream: content chunks; chat: responses; embed: vectors; rerank: results)"),
    ):
        for j, cl in enumerate(clients):
            xs, ys = [], []
            for i, sc in enumerate(scenarios):
                v = next((r[key] for r in rows if r["scenario"] == sc and r["client"] == cl), None)
                if v:
                    xs.append(i + (j - (len(clients) - 1) / 2) * width)
                    ys.append(v)
            ax.bar(xs, ys, width, label=cl, color=colours.get(cl))
        ax.set_yscale("log")
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels(scenarios, rotation=30, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3, which="both")
    axes[0].legend()
    runs = max((r.get("runs", 1) for r in rows), default=1)
    fig.suptitle(f"arun vs floor vs openai SDK vs LiteLLM — median of {runs} run(s), "
                 f"{data['machine'].get('cpus')} CPUs, Python {data['machine'].get('python')}")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
