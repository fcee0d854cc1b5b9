"""The profiling helpers run end to end (tiny counts; no timing assertions): the same-process
floor/arun A/B and the earlier-revision comparison."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO))


def _run(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", *args], cwd=str(REPO), capture_output=True, text=True,
                       timeout=600, env=ENV)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-3000:]}"
    return r.stdout


def test_same_process_ab_reports_both_clients_and_the_ratio() -> None:
    for kind, conc in (("chat", "1"), ("stream", "8"), ("rerank", "4")):
        out = _run("benchmarks.ab", "--kind", kind, "--conc", conc, "--blocks", "2", "--requests", "16",
                   "--warmup", "4")
        m = re.search(r"floor median ([\d.]+) .* arun median ([\d.]+) .* arun ÷ floor median ([\d.]+)", out)
        assert m, out
        floor_us, arun_us, ratio = map(float, m.groups())
        assert floor_us > 0 and arun_us > 0
        assert abs(ratio - arun_us / floor_us) < 0.01


def test_revision_comparison_runs_the_earlier_tree_and_cleans_up() -> None:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO), capture_output=True,
                          text=True, check=True).stdout.strip()
    out = _run("benchmarks.revs", "--rev", head, "--scenario", "chat_c1", "--rounds", "1", "--requests", "40")
    assert re.search(r"^round 1: floor [\d.]+ µs .* \| arun@\S+ [\d.]+ µs .* \| arun [\d.]+ µs", out, re.M), out
    assert f"median arun@{head}:" in out
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=str(REPO), capture_output=True, text=True,
                               check=True).stdout
    assert "arun-rev-" not in worktrees
