"""arun vs the bare-client floor vs the openai SDK vs LiteLLM, side by side.

    .venv/bin/python -m benchmarks.run                    # full run: 3 runs, all clients
    .venv/bin/python -m benchmarks.run --smoke            # seconds: floor + arun (+ manager layer), 1 run
    .venv/bin/python -m benchmarks.run --no-peers --scenarios stream_c64,chat_c64

The upstream (benchmarks/upstream.py) and every client run in their own
processes; each (run, scenario, client) is a fresh process so CPU seconds
(getrusage user+sys over the measured phase) and peak RSS are the client's own.
floor and arun run in this interpreter's venv; openai and litellm run in
benchmarks/.peers (created here with ``python -m venv`` + ``pip install``; never an
arun dependency).  Each figure is the median of --runs runs; ratios are taken
against the floor of the same run, then the median of those ratios is shown.
Progress goes to stderr (tqdm), the summary table to stdout, and the report to
benchmarks/results/RESULTS.md (+ chart.png, drawn with matplotlib from the
peers venv when available).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_DIR = HERE / ".peers"
PEER_PACKAGES = ["openai", "litellm", "matplotlib"]
ALL_CLIENTS = ("floor", "arun", "arun_lb", "openai", "litellm")
PEER_CLIENTS = ("openai", "litellm")
# the clients whose measured window would otherwise be a fraction of a second (see --fast-repeat)
FAST_CLIENTS = ("floor", "arun", "arun_lb")
SUPPORTS = {"openai": {"stream", "chat", "embed"},  # the openai SDK has no rerank
            "arun_lb": {"stream", "chat"}}  # the manager layer's LLM path

# client -> statements timed (arun loads its public names lazily, so the second
# statement, which pulls in the runtime and its HTTP stack, is the honest figure)
IMPORTS = {
    "floor": ["import aiohttp, msgspec"],
    "arun": ["import arun", "from arun import ModelRuntime, UserPromptMessage, LargeLanguageModel"],
    "openai": ["import openai"],
    "litellm": ["import litellm"],
}

# name -> scenario spec (request counts are multiplied by --scale)
SCENARIOS: dict[str, dict[str, Any]] = {
    "stream_c1": {"kind": "stream", "conc": 1, "requests": 100, "chunks": 64},
    "stream_c64": {"kind": "stream", "conc": 64, "requests": 512, "chunks": 64},
    "stream_c512": {"kind": "stream", "conc": 512, "requests": 1024, "chunks": 64},
    "stream_c64_ev": {"kind": "stream", "conc": 64, "requests": 256, "chunks": 64,
                      "write_mode": "event"},
    "chat_c1": {"kind": "chat", "conc": 1, "requests": 300, "chunks": 64},
    "chat_c64": {"kind": "chat", "conc": 64, "requests": 1024, "chunks": 64},
    "embed_fanout": {"kind": "embed", "conc": 16, "texts": 100_000},
    "rerank_c16": {"kind": "rerank", "conc": 16, "requests": 300, "docs": 100, "top_n": 3},
}
DEFAULT_SCENARIOS = list(SCENARIOS)

SMOKE = {
    "stream_c1": {"requests": 20},
    "stream_c64": {"requests": 128},
    "stream_c512": {"requests": 512},
    "stream_c64_ev": {"requests": 64},
    "chat_c1": {"requests": 30},
    "chat_c64": {"requests": 128},
    "embed_fanout": {"texts": 3000},
    "rerank_c16": {"requests": 40},
}


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# -- peers venv ---------------------------------------------------------------
def peers_python() -> Path:
    return PEERS_DIR / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_peers() -> tuple[str | None, str]:
    """(python path or None, note).  Creates benchmarks/.peers once and reuses it."""
    py = peers_python()
    check = [str(py), "-c", "import openai, litellm"]
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    if py.exists() and subprocess.run(check, capture_output=True, env=env,
                                      timeout=300).returncode == 0:
        return str(py), "peers venv reused"
    log(f"[bench] creating peers venv {PEERS_DIR} and installing {' '.join(PEER_PACKAGES)} ...")
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEERS_DIR)], check=True,
                           capture_output=True, timeout=300)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            # matplotlib is optional: retry without it
            r = subprocess.run([str(py), "-m", "pip", "install", "-q", "openai", "litellm"],
                               capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            return None, f"peer install failed: {r.stderr.strip().splitlines()[-1:]}"
        if subprocess.run(check, capture_output=True, env=env, timeout=300).returncode != 0:
            return None, "peer install finished but `import openai, litellm` fails"
        return str(py), "peers venv created"
    except Exception as e:
        return None, f"peer install failed: {type(e).__name__}: {e}"


def has_uvloop(python: str) -> bool:
    return subprocess.run([python, "-c", "import uvloop"], capture_output=True,
                          timeout=120).returncode == 0


# -- upstream -------------------------------------------------------------------
class UpstreamProc:
    def __init__(self, chunks: int, embed_dim: int, write_mode: str,
                 cpus: set[int] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.upstream", "--port", "0", "--chunks", str(chunks),
             "--embed-dim", str(embed_dim), "--write-mode", write_mode],
            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env())
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"upstream failed to start: {line!r} {err[-500:]}")
        self.url = line.split(" ", 1)[1]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/__stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _env(tree: Path = REPO) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("LITELLM_LOG", "ERROR")
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    return env


# -- one worker -------------------------------------------------------------------
def pinning(enabled: bool) -> tuple[set[int], set[int]] | None:
    """(upstream CPUs, client CPUs): the upstream on one core and every client on another, so a
    client never shares its core with the upstream (the same for every client); None when fewer
    than two CPUs are available or pinning is off."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[1]}


def run_worker(python: str, client: str, url: str, spec: dict[str, Any],
               timeout: float, cpus: set[int] | None = None, loop: str = "asyncio",
               tree: Path = REPO) -> dict[str, Any]:
    """One worker process; ``tree`` is the checkout whose ``benchmarks`` and ``arun`` it imports."""
    cmd = [python, "-m", "benchmarks.worker", "--client", client, "--url", url,
           "--spec", json.dumps(spec), "--loop", loop]
    if cpus:
        cmd += ["--cpus", ",".join(map(str, sorted(cpus)))]
    try:
        r = subprocess.run(cmd, cwd=str(tree), capture_output=True, text=True, timeout=timeout,
                           env=_env(tree))
    except subprocess.TimeoutExpired:
        return {"client": client, "scenario": spec["name"], "ok": False,
                "error": f"timed out after {timeout:.0f}s"}
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            if not res["ok"] and r.stderr:
                res["stderr"] = r.stderr[-2000:]
            return res
    return {"client": client, "scenario": spec["name"], "ok": False,
            "error": f"worker exited {r.returncode} without a result: {r.stderr[-800:]}"}


def import_time(python: str, stmt: str, reps: int = 5) -> float | None:
    """Median over ``reps`` fresh interpreters of (import stmt) minus (bare interpreter)."""
    def once(code: str) -> float:
        t0 = time.perf_counter()
        r = subprocess.run([python, "-c", code], cwd=str(REPO), capture_output=True, env=_env())
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(r.stderr.decode()[-300:])
        return dt
    try:
        once(stmt)  # warm the page cache / .pyc files
        bare, full = [], []
        for _ in range(reps):
            bare.append(once("pass"))
            full.append(once(stmt))
        return max(0.0, statistics.median(full) - statistics.median(bare))
    except Exception as e:
        log(f"[bench] import timing failed for {stmt!r}: {e}")
        return None


def arun_max_chunks() -> int | None:
    r = subprocess.run([sys.executable, "-m", "benchmarks.clients.arun_client", "--max-chunks"],
                       cwd=str(REPO), capture_output=True, text=True, env=_env(), timeout=120)
    try:
        return int(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


# -- aggregation -------------------------------------------------------------------
def derive(res: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if not res.get("ok") or not res.get("wall_s"):
        return d
    wall, cpu = res["wall_s"], res["cpu_s"]
    req, ch = max(res["requests"], 1), max(res["chunks"], 1)
    d["rps"] = res["requests"] / wall
    d["cps"] = res["chunks"] / wall
    d["cpu_ms_per_1k_chunks"] = cpu / ch * 1e6
    d["cpu_ms_per_call"] = cpu / req * 1e3
    d["ttfc_p50_ms"] = res.get("ttfc_p50_ms")
    d["ttfc_p99_ms"] = res.get("ttfc_p99_ms")
    d["maxrss_mb"] = res.get("maxrss_mb")
    d["rss_warm_mb"] = res.get("rss_warm_mb")
    d["upstream_cpu_pct"] = res.get("upstream_cpu_pct")
    return d


def _median(xs: list[Any]) -> float | None:
    xs = [x for x in xs if isinstance(x, (int, float)) and x == x]
    return statistics.median(xs) if xs else None


def summarise(raw: list[dict[str, Any]], scenarios: list[str], clients: list[str]
              ) -> list[dict[str, Any]]:
    rows = []
    for sc in scenarios:
        for cl in clients:
            mine = [r for r in raw if r["scenario"] == sc and r["client"] == cl]
            if not mine:
                continue
            runs = [derive(r) for r in mine]
            row: dict[str, Any] = {"scenario": sc, "client": cl,
                                   "ok": all(r.get("ok") for r in mine),
                                   "runs": len(mine),
                                   "errors": sorted({r["error"] for r in mine if r.get("error")}),
                                   "version": next((r.get("version") for r in mine
                                                    if r.get("version")), None)}
            for k in ("rps", "cps", "cpu_ms_per_1k_chunks", "cpu_ms_per_call", "ttfc_p50_ms",
                      "ttfc_p99_ms", "maxrss_mb", "rss_warm_mb", "upstream_cpu_pct"):
                row[k] = _median([d.get(k) for d in runs])
            # ratios against the floor (and arun) of the same run
            for k, base, name in (("cpu_ms_per_call", "floor", "cpu_x_floor"),
                                  ("rps", "floor", "rps_x_floor"),
                                  ("cps", "floor", "cps_x_floor"),
                                  ("cpu_ms_per_call", "arun", "cpu_x_arun")):
                row[name] = _median(_same_run_ratios(raw, mine, sc, base, k))
            rows.append(row)
    return rows


def _same_run_ratios(raw: list[dict[str, Any]], mine: list[dict[str, Any]], scenario: str,
                     base: str, key: str) -> list[float]:
    """``key`` of each of ``mine`` over ``key`` of client ``base`` in the same run."""
    ratios = []
    for r in mine:
        other = [f for f in raw if f["scenario"] == scenario and f["client"] == base
                 and f["run"] == r["run"]]
        if other:
            a, b = derive(r).get(key), derive(other[0]).get(key)
            if a is not None and b:
                ratios.append(a / b)
    return ratios


# the targets, checked against the rows of this run (medians of same-run ratios)
def targets(rows: list[dict[str, Any]], imports: dict[str, float | None]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target this run has the figures for."""
    out: list[tuple[str, str, str]] = []

    def row(sc: str, cl: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["scenario"] == sc and r["client"] == cl and r["ok"]), None)

    def check(name: str, values: list[tuple[str, float | None]], ok: Any, fmt: str) -> None:
        vals = [(sc, v) for sc, v in values if v is not None]
        if not vals:
            return
        shown = ", ".join(f"{sc} {fmt.format(v)}" for sc, v in vals)
        out.append((name, shown, "met" if all(ok(v) for _, v in vals) else "missed"))

    scen = sorted({r["scenario"] for r in rows})
    streams = [sc for sc in scen if sc.startswith("stream")]
    calls = [sc for sc in scen if sc.startswith("chat")]
    arun = {sc: row(sc, "arun") for sc in scen}
    check("CPU per streamed chunk ≤ 1.5× floor",
          [(sc, arun[sc]["cpu_x_floor"] if arun[sc] else None) for sc in streams],
          lambda v: v <= 1.5, "{:.2f}×")
    check("CPU per non-streamed call ≤ 1.5× floor",
          [(sc, arun[sc]["cpu_x_floor"] if arun[sc] else None) for sc in calls],
          lambda v: v <= 1.5, "{:.2f}×")
    check("streams/s at concurrency 512 ≥ 0.8× floor",
          [("stream_c512", arun["stream_c512"]["rps_x_floor"] if arun.get("stream_c512") else None)],
          lambda v: v >= 0.8, "{:.2f}×")
    check("embedding fan-out throughput ≥ 0.9× floor",
          [("embed_fanout", arun["embed_fanout"]["cps_x_floor"] if arun.get("embed_fanout") else None)],
          lambda v: v >= 0.9, "{:.2f}×")
    lite = {sc: row(sc, "litellm") for sc in scen}
    check("≥ 20× less CPU per chunk than LiteLLM",
          [(sc, lite[sc]["cpu_x_arun"] if lite[sc] else None) for sc in streams],
          lambda v: v >= 20, "{:.0f}×")
    check("≥ 20× less CPU per call than LiteLLM",
          [(sc, lite[sc]["cpu_x_arun"] if lite[sc] else None)
           for sc in scen if not sc.startswith("stream")],
          lambda v: v >= 20, "{:.1f}×")
    bound = [(sc, lite[sc]["cpu_x_floor"]) for sc in scen
             if not sc.startswith("stream") and lite[sc] and lite[sc].get("cpu_x_floor")]
    if bound:  # not a target: how far the bare client itself is below LiteLLM
        out.append(("(reference, not a target) LiteLLM ÷ floor per call: what the bare aiohttp + msgspec client itself reaches",
                    ", ".join(f"{sc} {v:.1f}×" for sc, v in bound), "—"))
    t = imports.get("arun\timport arun")
    if t is not None:
        check("`import arun` ≤ 100 ms", [("import", t * 1000)], lambda v: v <= 100, "{:.0f} ms")
    check("RSS after warm-up ≤ 50 MB",
          [(sc, arun[sc].get("rss_warm_mb") if arun[sc] else None) for sc in scen],
          lambda v: v <= 50, "{:.0f} MB")
    return out


def targets_table(items: list[tuple[str, str, str]]) -> str:
    lines = ["| target | measured (arun; median of same-run ratios) | verdict |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in items]
    return "\n".join(lines)


def _f(x: float | None, nd: int = 1) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{nd}f}"


COLUMNS = ("scenario", "client", "req/s", "chunks/s", "CPU ms/1k chunks", "CPU ms/call",
           "p50 TTFC ms", "p99 TTFC ms", "warm RSS MB", "peak RSS MB", "CPU × floor", "req/s × floor",
           "upstream CPU %", "checks")


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        out.append("| " + " | ".join([
            r["scenario"], r["client"], _f(r["rps"], 0), _f(r["cps"], 0),
            _f(r["cpu_ms_per_1k_chunks"], 2), _f(r["cpu_ms_per_call"], 2),
            _f(r["ttfc_p50_ms"], 2), _f(r["ttfc_p99_ms"], 2), _f(r.get("rss_warm_mb"), 0),
            _f(r["maxrss_mb"], 0),
            _f(r["cpu_x_floor"], 1) + ("×" if r["cpu_x_floor"] is not None else ""),
            _f(r["rps_x_floor"], 2) + ("×" if r["rps_x_floor"] is not None else ""),
            _f(r["upstream_cpu_pct"], 0),
            "pass" if r["ok"] else "FAIL: " + "; ".join(r["errors"])[:120],
        ]) + " |")
    return "\n".join(out)


def import_table(imports: dict[str, float | None]) -> str:
    out = ["| client | import statement | import time over bare interpreter (ms, median of 5) |",
           "|---|---|---|"]
    for key, t in imports.items():
        cl, stmt = key.split("\t", 1)
        out.append(f"| {cl} | `{stmt}` | {_f(t * 1000 if t is not None else None, 0)} |")
    return "\n".join(out)


# -- main -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="repetitions; figures are medians")
    p.add_argument("--peers", dest="peers", action="store_true", default=True,
                   help="include the openai SDK and LiteLLM (default)")
    p.add_argument("--no-peers", dest="peers", action="store_false", help="no openai SDK or LiteLLM")
    p.add_argument("--clients", default=None,
                   help=f"comma list out of {','.join(ALL_CLIENTS)} (default: all available)")
    p.add_argument("--scenarios", nargs="+", default=None,
                   help=f"names out of {', '.join(SCENARIOS)} (comma or space separated)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every request / text count (not concurrency)")
    p.add_argument("--fast-repeat", type=int, default=8,
                   help="floor and arun run this many times the scenario's requests, so that their "
                        "measured window lasts seconds, not a tenth of one (1 with --smoke)")
    p.add_argument("--chunks", type=int, default=64, help="content chunks per stream")
    p.add_argument("--embed-texts", type=int, default=None, help="texts in the fan-out")
    p.add_argument("--embed-dim", type=int, default=256, help="embedding dimension")
    p.add_argument("--embed-batch", type=int, default=None,
                   help="batch size (default: arun's max_chunks for the model, else 2048)")
    p.add_argument("--smoke", action="store_true",
                   help="a few hundred requests, floor + arun + arun_lb, 1 run, no import timing")
    p.add_argument("--no-import-times", action="store_true")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--out", default=str(HERE / "results"), help="output directory")
    p.add_argument("--timeout", type=float, default=1800, help="per worker process, seconds")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="the clients' event loop (the same for every client; default asyncio)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the upstream and the clients to separate CPUs")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m benchmarks.run`` and ``arun bench``; returns an exit code."""
    cwd = os.getcwd()
    try:
        return _main(argv)
    finally:
        os.chdir(cwd)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    os.chdir(REPO)  # worker modules are found as benchmarks.* from the repo root
    upstream_loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    notes: list[str] = [f"every client runs on the {args.loop} event loop, the upstream on {upstream_loop}"
                        + (" (PEERS.md §8 ran every client on uvloop: `--loop uvloop`)"
                           if args.loop == "asyncio" else "")]
    if args.smoke:
        args.runs = 1
        args.peers = False
        args.no_import_times = True
        args.embed_dim = min(args.embed_dim, 64)
    scenarios = DEFAULT_SCENARIOS
    if args.scenarios:
        scenarios = [s for item in args.scenarios for s in item.split(",") if s]
        bad = [s for s in scenarios if s not in SCENARIOS]
        if bad:
            log(f"unknown scenarios: {bad}; choose from {list(SCENARIOS)}")
            return 2
    clients = list(ALL_CLIENTS)
    if args.clients:
        clients = [c for c in args.clients.split(",") if c]
    if args.smoke or not args.peers:
        clients = [c for c in clients if c not in PEER_CLIENTS]

    pythons = {"floor": sys.executable, "arun": sys.executable, "arun_lb": sys.executable}
    peer_py: str | None = None
    if any(c in PEER_CLIENTS for c in clients):
        peer_py, note = ensure_peers()
        notes.append(note)
        if peer_py is None:
            log(f"[bench] {note}; skipping openai and litellm")
            clients = [c for c in clients if c not in PEER_CLIENTS]
        else:
            pythons.update(openai=peer_py, litellm=peer_py)
    elif args.peers is False:
        notes.append("peers skipped (--no-peers" + (", --smoke" if args.smoke else "") + ")")
    if args.loop == "uvloop":
        for py in sorted({pythons[c] for c in clients}):
            if not has_uvloop(py):
                log(f"[bench] installing uvloop into {py}")
                subprocess.run([py, "-m", "pip", "install", "-q", "uvloop"], capture_output=True,
                               timeout=600)
            if not has_uvloop(py):
                raise SystemExit(f"--loop uvloop: uvloop cannot be imported by {py}")

    batch = args.embed_batch
    if batch is None:
        mc = arun_max_chunks()
        batch = mc or 2048
        notes.append(f"embedding batch = {batch} texts per request for every client "
                     + ("(arun's max_chunks for text-embedding-3-small, as in Dify's model YAML; "
                        "pass --embed-batch to change the others)" if mc else "(default 2048)"))

    specs: dict[str, dict[str, Any]] = {}
    for name in scenarios:
        s = dict(SCENARIOS[name], name=name)
        if args.smoke:
            s.update(SMOKE.get(name, {}))
        if s["kind"] == "embed":
            s["texts"] = args.embed_texts or max(1, int(s["texts"] * (1 if args.smoke else args.scale)))
            s["batch"] = batch
            s["dim"] = args.embed_dim
        else:
            s["requests"] = max(s["conc"], int(s["requests"] * (1 if args.smoke else args.scale)))
            s["chunks"] = args.chunks
            s["warmup"] = min(8, s["requests"])
        specs[name] = s

    pins = pinning(not args.no_pin)
    notes.append(f"upstream pinned to CPU {min(pins[0])}, every client to CPU {min(pins[1])} "
                 "(--no-pin to let the scheduler place them)" if pins else
                 "no CPU pinning: upstream and clients placed by the scheduler")
    ups: dict[str, UpstreamProc] = {}
    raw: list[dict[str, Any]] = []
    try:
        for mode in sorted({s.get("write_mode", "one") for s in specs.values()}):
            ups[mode] = UpstreamProc(args.chunks, args.embed_dim, mode, pins[0] if pins else None)
        jobs = [(run, name, cl) for run in range(args.runs) for name in scenarios for cl in clients
                if SCENARIOS[name]["kind"] in SUPPORTS.get(cl, {SCENARIOS[name]["kind"]})]
        bar = None
        if not args.no_progress:
            try:
                from tqdm import tqdm
                bar = tqdm(total=len(jobs), file=sys.stderr, unit="job", dynamic_ncols=True)
            except ImportError:
                bar = None
        for run, name, cl in jobs:
            if bar is not None:
                bar.set_description(f"run {run + 1}/{args.runs} {name} {cl}")
            up = ups[specs[name].get("write_mode", "one")]
            spec = specs[name]
            if cl in FAST_CLIENTS and "requests" in spec and not args.smoke:
                spec = dict(spec, requests=spec["requests"] * max(1, args.fast_repeat))
            st0 = up.stats()
            res = run_worker(pythons[cl], cl, up.url, spec, args.timeout, pins[1] if pins else None,
                             args.loop)
            st1 = up.stats()
            res["run"] = run
            res["scenario"] = name
            if res.get("wall_s"):
                # upstream CPU over the whole worker lifetime, as a share of the measured wall
                # time: an upper bound of what the upstream used while the client was measured
                res["upstream_cpu_pct"] = 100.0 * (st1["cpu_s"] - st0["cpu_s"]) / res["wall_s"]
            if not res.get("ok"):
                log(f"[bench] {name} {cl} run {run + 1} FAILED: {res.get('error')}")
            raw.append(res)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    finally:
        for u in ups.values():
            u.stop()

    imports: dict[str, float | None] = {}
    if not args.no_import_times:
        for cl in clients:
            for stmt in IMPORTS.get(cl, ()):
                log(f"[bench] import time: {cl}: {stmt}")
                imports[f"{cl}\t{stmt}"] = import_time(pythons[cl], stmt)

    rows = summarise(raw, scenarios, clients)
    out = Path(args.out)
    (out / "raw").mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload = {"when": stamp, "argv": argv if argv is not None else sys.argv[1:],
               "specs": specs, "clients": clients, "notes": notes, "imports": imports,
               "rows": rows, "raw": raw, "machine": machine_info()}
    (out / "raw" / f"run-{stamp}.json").write_text(json.dumps(payload, indent=1))
    (out / "results.json").write_text(json.dumps({k: v for k, v in payload.items() if k != "raw"},
                                                 indent=1))
    chart_note = None
    if not args.no_chart and not args.smoke:
        chart_note = draw_chart(out, peer_py)
        if chart_note:
            notes.append(chart_note)
    md = report(payload, rows, imports, notes, args)
    (out / "RESULTS.md").write_text(md)
    sys.stdout.write(table(rows) + "\n")
    goals = targets(rows, imports)
    if goals:
        sys.stdout.write("\n" + targets_table(goals) + "\n")
    if imports:
        sys.stdout.write("\n" + import_table(imports) + "\n")
    for n in notes:
        sys.stdout.write(f"note: {n}\n")
    sys.stdout.write(f"report: {out / 'RESULTS.md'}\n")
    sys.stdout.flush()
    return 0 if all(r["ok"] for r in rows) and rows else 1


def machine_info() -> dict[str, Any]:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def draw_chart(out: Path, peer_py: str | None) -> str | None:
    """Draw chart.png with matplotlib from the peers venv (or this venv if it has it)."""
    candidates = [p for p in (peer_py, str(peers_python()) if peers_python().exists() else None,
                              sys.executable) if p]
    for py in candidates:
        r = subprocess.run([py, "-m", "benchmarks.chart", str(out / "results.json"),
                            str(out / "chart.png")], cwd=str(REPO), capture_output=True,
                           text=True, env=_env(), timeout=300)
        if r.returncode == 0:
            return None
    return "chart.png not drawn (matplotlib unavailable)"


def report(payload: dict[str, Any], rows: list[dict[str, Any]],
           imports: dict[str, float | None], notes: list[str], args: argparse.Namespace) -> str:
    m = payload["machine"]
    versions = {r["client"]: r["version"] for r in rows if r.get("version")}
    specs = payload["specs"]
    lines = [
        "# arun benchmarks: arun vs the floor vs the openai SDK vs LiteLLM",
        "",
        "Generated {} by `{}`".format(
            payload["when"], " ".join(["python -m benchmarks.run", *payload["argv"]])),
        "",
        f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, Python {m['python']}, {m['platform']}. "
        "The upstream and the client share the machine; each is one process (one core at most); "
        "unless `--no-pin`, the upstream runs on one CPU and every client on the other.",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()),
        "",
        "Method (as PEERS.md §8): a pre-serialised OpenAI-compatible upstream in its own process; "
        "each (run, scenario, client) in a fresh process; every client decodes and checks every "
        "chunk (concatenated text compared to the expected text, chunk count, usage), every vector "
        "(count, dimension, input order) and every rerank result. CPU = getrusage user+sys of the "
        "client process over the measured phase (after import, construction and a short warm-up). "
        f"Figures are medians of {args.runs} run(s); `× floor` columns are the median over runs of "
        "the ratio to the floor measured in the same run (CPU: higher is worse; req/s: lower is "
        "worse). `upstream CPU %` is the upstream's CPU over the worker's lifetime divided by the "
        "measured wall time (an upper bound; well below 100 % means the client was the "
        "bottleneck).",
        "",
        "Scenarios: "
        + "; ".join(
            f"`{n}` = {s['kind']}"
            + (f", {s['texts']:,} texts in batches of {s['batch']} × {s['dim']} dims, "
               f"{s['conc']} batches in flight" if s["kind"] == "embed" else
               f", {s['requests']} requests at concurrency {s['conc']}"
               + (f" ({s['requests'] * args.fast_repeat:,} for floor and arun)"
                  if args.fast_repeat > 1 and not args.smoke else ""))
            + (f", {s['chunks']} content chunks" if s["kind"] == "stream" else "")
            + (", one write per SSE event" if s.get("write_mode") == "event" else "")
            + (f", {s['docs']} docs, top_n {s['top_n']}" if s["kind"] == "rerank" else "")
            for n, s in specs.items()) + ".",
        "",
        "Chunks: stream = content chunks; non-stream chat = 1 per response; embed = vectors; "
        "rerank = results. TTFC: time to the first content chunk for streams, time to the whole "
        "response otherwise (for embed: per batch; arun's fan-out is a single `invoke` over all "
        "texts, so its figure is the whole fan-out).",
        "",
        table(rows),
        "",
    ]
    goals = targets(rows, imports)
    if goals:
        lines += ["## Targets (issue 5)", "", targets_table(goals), "",
                  "LiteLLM ratios are LiteLLM's CPU over arun's from the same run; where the floor "
                  "itself is not 20× below LiteLLM (see `CPU × floor` of the litellm rows), 20× is "
                  "out of reach for any client built on the floor's stack.", ""]
    if imports:
        lines += ["## Import time", "", import_table(imports), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    if (Path(args.out) / "chart.png").exists() and not args.smoke:
        lines += ["![chart](chart.png)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
