"""arun at an earlier revision vs arun now, with the floor beside them: the same minute, the same
upstream, a fresh pinned worker each, alternating rounds.

    .venv/bin/python -m benchmarks.revs --rev cc2f53b --scenario stream_c512 --rounds 5

The earlier revision is checked out with ``git worktree`` into a temporary folder and run from
there with this venv (so its ``arun`` is imported, with this venv's aiohttp and msgspec). Prints
each round's CPU µs per call and requests/s and the medians: what a change bought, measured the
way ``benchmarks.run`` measures (a worker process per client and scenario).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.run import REPO, SCENARIOS, UpstreamProc, pinning, run_worker


def _worker(tree: Path, client: str, url: str, spec: dict[str, Any], cpus: set[int] | None) -> dict[str, Any]:
    res = run_worker(sys.executable, client, url, spec, 1800, cpus, tree=tree)
    if not res.get("ok"):
        raise RuntimeError(f"{client} at {tree}: {res.get('error')} {res.get('stderr', '')[-800:]}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.revs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", required=True, help="the earlier revision (any git rev)")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="stream_c512")
    p.add_argument("--requests", type=int, default=None, help="requests per worker (default: 8x the scenario's)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args(argv)
    spec = dict(SCENARIOS[args.scenario], name=args.scenario, warmup=8)
    if spec["kind"] == "embed":
        p.error("embed_fanout is not supported here; use benchmarks.run")
    spec["requests"] = args.requests or spec["requests"] * 8
    if spec["kind"] == "rerank":
        spec.setdefault("docs", 100)
    cpus = pinning(not args.no_pin)
    with tempfile.TemporaryDirectory(prefix="arun-rev-") as tmp:
        old = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.rev], cwd=str(REPO), check=True)
        upstream = UpstreamProc(spec.get("chunks", 64), 256, "one", cpus[0] if cpus else None)
        rows: dict[str, list[tuple[float, float]]] = {"floor": [], f"arun@{args.rev}": [], "arun": []}
        try:
            for i in range(args.rounds):
                runs = [("floor", REPO, "floor"), (f"arun@{args.rev}", old, "arun"), ("arun", REPO, "arun")]
                line = []
                for name, tree, client in runs:
                    res = _worker(tree, client, upstream.url, spec, cpus[1] if cpus else None)
                    us = res["cpu_s"] / res["requests"] * 1e6
                    rps = res["requests"] / res["wall_s"]
                    rows[name].append((us, rps))
                    line.append(f"{name} {us:.1f} µs {rps:,.0f}/s")
                print(f"round {i + 1}: " + " | ".join(line), flush=True)
        finally:
            upstream.stop()
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=str(REPO), check=False)
    base = median([u for u, _ in rows["floor"]])
    for name, vals in rows.items():
        us = median([u for u, _ in vals])
        rps = median([r for _, r in vals])
        print(f"median {name}: {us:.1f} µs/call ({us / base:.2f}× floor), {rps:,.0f} req/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
