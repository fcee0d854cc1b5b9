"""Run the benchmark in --smoke mode (floor, arun and arun through the manager layer with
load balancing over 3 credentials; a few hundred requests) as a
subprocess and check that every client completed with all checks passing.
No timing assertions: this only proves the benchmark and arun's paths work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--no-progress", "--out", str(tmp_path)],
        cwd=str(REPO), capture_output=True, text=True, timeout=600, env=env,
    )
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-4000:]}"
    data = json.loads((tmp_path / "results.json").read_text())
    rows = data["rows"]
    assert {row["client"] for row in rows} == {"floor", "arun", "arun_lb"}
    assert {row["scenario"] for row in rows if row["client"] == "arun_lb"} == {
        "stream_c1", "stream_c64", "stream_c512", "stream_c64_ev", "chat_c1", "chat_c64"}
    assert {row["scenario"] for row in rows} >= {"stream_c1", "stream_c64", "chat_c64",
                                                  "embed_fanout", "rerank_c16"}
    for row in rows:
        assert row["ok"], row
        assert row["rps"] and row["rps"] > 0, row
    assert (tmp_path / "RESULTS.md").exists()
