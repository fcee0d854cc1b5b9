"""``arun serve`` against the LiteLLM proxy: added latency, streams, CPU per request, memory over a soak.

    .venv/bin/python -m benchmarks.bench_gateway                      # arun + LiteLLM proxy, 60 s soak
    .venv/bin/python -m benchmarks.bench_gateway --soak 600           # the 10-minute soak of the report
    .venv/bin/python -m benchmarks.bench_gateway --no-litellm --quick # arun only, small counts

Processes (PEERS.md §9.3's method): the benchmark upstream (``benchmarks/upstream.py``, raw
``asyncio.Protocol``, pre-serialised answers), the gateway under test (one process), and a
separate load process (aiohttp + msgspec, persistent connections) that measures every request
twice -- once direct to the upstream, once through the gateway -- so the *added* latency is the
gateway's alone.  The gateway is pinned to one CPU, upstream and load to the other; the
gateway's CPU seconds (utime + stime of its process tree, from /proc) over each measured phase
give requests per CPU second.

Scenarios:

* ``chat_c1`` / ``chat_c16`` / ``chat_c64``: non-streamed chat at concurrency 1, 16, 64;
  p50 / p99 latency direct and through the gateway, their difference, requests/s,
  requests per gateway CPU second;
* ``stream_c512``: 512 concurrent streams of 64 deltas paced 20 ms apart by the upstream;
  streams/s, time to first token direct and through the gateway (added TTFT p50 / p99),
  streams per gateway CPU second, deltas lost (must be 0);
* ``soak``: constant load (16 concurrent non-streamed chats + 16 concurrent streams) for
  ``--soak`` seconds; the gateway's RSS after warm-up and at the end.

The LiteLLM proxy runs from ``benchmarks/.peers`` (``pip install 'litellm[proxy]'``), one
uvicorn worker, no database, the same model routed to the same upstream; arun runs
``arun serve --config`` with a virtual key.  Both log their access lines to /dev/null.
Results go to stdout (a table) and ``benchmarks/results/gateway.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_PY = HERE / ".peers" / "bin" / "python"
MODEL = "gpt-4o"
KEY = "sk-arun-benchbenchbenchbenchbenchbenchbenchbe"
LITELLM_KEY = "sk-litellm-bench-0123456789abcdef0123456789abcdef"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say something long."}], "max_tokens": 64}


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# -- process plumbing -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("LITELLM_LOG", "ERROR")
    return env


def _cpus() -> tuple[set[int], set[int]] | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else None


def _pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass


def _tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
    return total


def rss_mb(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return total


class Proc:
    """A server process; ready when a stdout line contains ``ready``, or when ``health`` answers 200."""

    def __init__(self, cmd: list[str], *, ready: str = "", health: str = "", cpus: set[int] | None, cwd: Path = REPO,
                 env: dict[str, str] | None = None, timeout: float = 180.0) -> None:  # fmt: skip
        self.errlog = tempfile.TemporaryFile()
        out = subprocess.PIPE if ready else subprocess.DEVNULL
        self.p = subprocess.Popen(cmd, cwd=str(cwd), stdout=out, stderr=self.errlog, text=True, env=env or _env())
        _pin(self.p.pid, cpus)
        self.cpus = cpus
        deadline = time.monotonic() + timeout
        self.line = ""
        if health:
            import urllib.request

            while time.monotonic() < deadline and self.p.poll() is None:
                try:
                    with urllib.request.urlopen(health, timeout=2) as r:
                        if r.status == 200:
                            self.line = "ready"
                            break
                except OSError:
                    time.sleep(0.5)
        else:
            assert self.p.stdout is not None
            while time.monotonic() < deadline:
                line = self.p.stdout.readline()
                if not line:
                    break
                if ready in line:
                    self.line = line.strip()
                    break
        if not self.line:
            self.errlog.seek(0)
            raise RuntimeError(f"{cmd[:4]} did not start: {self.errlog.read().decode(errors='replace')[-2000:]}")
        for p in _tree(self.p.pid):
            _pin(p, cpus)

    def stop(self) -> None:
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def start_upstream(cpus: set[int] | None, *, paced: bool) -> tuple[Proc, str]:
    cmd = [sys.executable, "-m", "benchmarks.upstream", "--port", "0", "--chunks", "64"]
    if paced:
        cmd += ["--write-mode", "event", "--delay", "0.02"]
    proc = Proc(cmd, ready="READY", cpus=cpus)
    return proc, proc.line.split(" ", 1)[1]


def start_arun(upstream: str, cpus: set[int] | None, tmp: Path) -> tuple[Proc, str, dict[str, str]]:
    import yaml

    cfg = {
        "host": "127.0.0.1", "port": 0, "store": f"sqlite:///{tmp}/arun-gw.db", "state": "memory://",
        "tenant": {"id": "bench", "name": "bench"},
        "providers": {"openai": {"credentials": {"openai_api_key": "sk-bench-upstream-0000", "openai_api_base": upstream}}},
        "aliases": {MODEL: f"openai/{MODEL}"}, "keys": [{"name": "bench", "key": KEY}],
    }  # fmt: skip
    path = tmp / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = _env()
    env["ARUN_MASTER_KEY"] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    proc = Proc([sys.executable, "-m", "arun.cli", "serve", "--config", str(path)], ready="READY", cpus=cpus, env=env)
    return proc, proc.line.split(" ", 1)[1], {"Authorization": f"Bearer {KEY}"}


def start_litellm(upstream: str, cpus: set[int] | None, tmp: Path) -> tuple[Proc, str, dict[str, str]]:
    import socket

    import yaml

    cfg = {
        "model_list": [{"model_name": MODEL, "litellm_params": {"model": f"openai/{MODEL}", "api_base": upstream + "/v1",
                                                                 "api_key": "sk-bench-upstream-0000"}}],
        "litellm_settings": {"drop_params": True, "telemetry": False, "set_verbose": False},
        "general_settings": {"disable_spend_logs": True, "master_key": LITELLM_KEY},
    }  # fmt: skip
    path = tmp / "litellm.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    litellm = HERE / ".peers" / "bin" / "litellm"
    env = _env()
    env.pop("PYTHONPATH", None)
    proc = Proc([str(litellm), "--config", str(path), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                health=f"http://127.0.0.1:{port}/health/liveliness", cpus=cpus, env=env, timeout=300)  # fmt: skip
    return proc, f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {LITELLM_KEY}"}


def ensure_proxy() -> str | None:
    """Install ``litellm[proxy]`` into benchmarks/.peers (as benchmarks/run.py installs the peers); None when ready."""
    litellm = HERE / ".peers" / "bin" / "litellm"
    check = [str(PEERS_PY), "-c", "import litellm.proxy.proxy_server"]
    if litellm.exists() and subprocess.run(check, capture_output=True, env=_env(), timeout=300).returncode == 0:
        return None
    log("[bench] installing litellm[proxy] into benchmarks/.peers ...")
    try:
        if not PEERS_PY.exists():
            subprocess.run([sys.executable, "-m", "venv", str(HERE / ".peers")], check=True, capture_output=True, timeout=300)
        r = subprocess.run([str(PEERS_PY), "-m", "pip", "install", "-q", "litellm[proxy]"], capture_output=True, text=True,
                           timeout=1800)  # fmt: skip
        if r.returncode != 0:
            return f"pip install 'litellm[proxy]' failed: {r.stderr.strip().splitlines()[-1:]}"
    except Exception as exc:
        return f"installing litellm[proxy] failed: {type(exc).__name__}: {exc}"
    return None


# -- the load process ---------------------------------------------------------------------------------


def run_load(spec: dict[str, Any], cpus: set[int] | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_gateway", "--load", json.dumps(spec)]
    r = subprocess.run(cmd, cwd=str(REPO), capture_output=True, text=True, env=_env(),
                       preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None, timeout=3600)  # fmt: skip
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"load process failed: {r.stderr[-2000:]}")


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp
    import msgspec

    kind = spec["kind"]
    conc = spec["conc"]
    body = msgspec.json.encode({**BODY, "stream": kind == "stream"})
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=conn) as session:

        async def chat(url: str) -> float:
            t0 = time.perf_counter()
            async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{resp.status}: {raw[:300]!r}")
            if b'"choices"' not in raw:
                raise RuntimeError(f"bad answer {raw[:200]!r}")
            return time.perf_counter() - t0

        async def stream(url: str) -> tuple[float, float, int]:
            t0 = time.perf_counter()
            first = None
            deltas = 0
            done = False
            async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{resp.status}: {(await resp.read())[:300]!r}")
                buf = b""
                async for data in resp.content.iter_any():
                    buf += data
                    while b"\n\n" in buf:
                        event, buf = buf.split(b"\n\n", 1)
                        if event.startswith(b"data: [DONE]"):
                            done = True
                        elif b'"content":"' in event:
                            deltas += 1
                            if first is None:
                                first = time.perf_counter() - t0
            if not done:
                raise RuntimeError("stream ended without [DONE]")
            return first or 0.0, time.perf_counter() - t0, deltas

        async def phase(url: str, n: int, measure: bool) -> dict[str, Any]:
            lat: list[float] = []
            ttft: list[float] = []
            lost = 0
            queue = iter(range(n))

            async def worker() -> None:
                nonlocal lost
                for _ in queue:
                    if kind == "chat":
                        lat.append(await chat(url))
                    else:
                        f, total, deltas = await stream(url)
                        ttft.append(f)
                        lat.append(total)
                        lost += max(0, 64 - deltas)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conc)))
            wall = time.perf_counter() - t0
            return {"lat": lat, "ttft": ttft, "wall": wall, "lost": lost}

        targets = spec["targets"]  # {"direct": url, "gateway": url}
        for url in targets.values():  # warm-up: connections and caches, on both paths
            await phase(url, spec["warmup"], False)
        results: dict[str, Any] = {}
        if spec.get("soak"):
            url = targets["gateway"]
            warm_end = time.monotonic() + spec.get("warmup_seconds", 0)
            while time.monotonic() < warm_end:  # the same load until caches and pools reach their steady size
                await phase(url, conc * 20, False)
            end = time.monotonic() + spec["soak"]
            samples = []
            pid = spec["pid"]
            samples.append((0.0, rss_mb(pid)))
            start = time.monotonic()
            count = 0
            while time.monotonic() < end:
                r = await phase(url, conc * 20, False)
                count += len(r["lat"])
                samples.append((round(time.monotonic() - start, 1), rss_mb(pid)))
            out["soak"] = {"samples": samples, "requests": count}
            return out
        for name, url in targets.items():
            pid = spec.get("pid") if name == "gateway" else None
            c0 = cpu_seconds(pid) if pid else 0.0
            r = await phase(url, spec["requests"], True)
            r["cpu"] = cpu_seconds(pid) - c0 if pid else None
            results[name] = r
        out.update(_summarise(results, kind))
    return out


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _summarise(results: dict[str, Any], kind: str) -> dict[str, Any]:
    d, g = results["direct"], results["gateway"]
    out: dict[str, Any] = {"n": len(g["lat"])}
    for name, r in (("direct", d), ("gateway", g)):
        out[f"{name}_p50_ms"] = _pct(r["lat"], 0.5) * 1000
        out[f"{name}_p99_ms"] = _pct(r["lat"], 0.99) * 1000
        out[f"{name}_rps"] = len(r["lat"]) / r["wall"]
        if kind == "stream":
            out[f"{name}_ttft_p50_ms"] = _pct(r["ttft"], 0.5) * 1000
            out[f"{name}_ttft_p99_ms"] = _pct(r["ttft"], 0.99) * 1000
            out[f"{name}_lost_deltas"] = r["lost"]
    out["added_p50_ms"] = out["gateway_p50_ms"] - out["direct_p50_ms"]
    out["added_p99_ms"] = out["gateway_p99_ms"] - out["direct_p99_ms"]
    if kind == "stream":
        out["added_ttft_p50_ms"] = out["gateway_ttft_p50_ms"] - out["direct_ttft_p50_ms"]
        out["added_ttft_p99_ms"] = out["gateway_ttft_p99_ms"] - out["direct_ttft_p99_ms"]
    out["gateway_cpu_s"] = g["cpu"]
    out["per_cpu_s"] = len(g["lat"]) / g["cpu"] if g["cpu"] else None
    return out


# -- orchestration --------------------------------------------------------------------------------------

CHAT = {"chat_c1": (1, 2000), "chat_c16": (16, 4000), "chat_c64": (64, 4000)}


def bench_one(name: str, start: Any, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    pins = None if args.no_pin else _cpus()
    up_cpus, gw_cpus = (pins or (None, None))
    out: dict[str, Any] = {}
    scale = 0.1 if args.quick else 1.0
    # non-streamed chat against an upstream that answers at once
    up, up_url = start_upstream(up_cpus, paced=False)
    try:
        gw, gw_url, headers = start(up_url, gw_cpus, tmp)
        try:
            for sc, (conc, n) in CHAT.items():
                n = max(50, int(n * scale) if name == "arun" else int(n * scale / (4 if conc == 1 else 2)))
                log(f"[{name}] {sc}: {n} requests at concurrency {conc}")
                out[sc] = run_load({"kind": "chat", "conc": conc, "requests": n, "warmup": max(20, n // 10),
                                    "targets": {"direct": up_url, "gateway": gw_url}, "headers": headers,
                                    "pid": gw.p.pid}, up_cpus)  # fmt: skip
            if args.soak:
                log(f"[{name}] soak: {args.soak:.0f} s at concurrency 32")
                warm = rss_mb(gw.p.pid)
                soak = run_load({"kind": "chat", "conc": 32, "requests": 0, "warmup": 200,
                                 "warmup_seconds": args.soak_warmup, "targets": {"gateway": gw_url}, "headers": headers,
                                 "pid": gw.p.pid, "soak": args.soak}, up_cpus)["soak"]  # fmt: skip
                samples = soak["samples"]
                out["soak"] = {"seconds": args.soak, "warmup_seconds": args.soak_warmup, "requests": soak["requests"],
                               "rss_before_warmup_mb": warm,
                               "rss_after_warmup_mb": samples[0][1], "rss_end_mb": samples[-1][1],
                               "rss_growth_mb": samples[-1][1] - samples[0][1],
                               "rss_max_mb": max(s[1] for s in samples), "samples": samples}  # fmt: skip
        finally:
            gw.stop()
    finally:
        up.stop()
    # streams, paced by the upstream (64 deltas, 20 ms apart)
    up, up_url = start_upstream(up_cpus, paced=True)
    try:
        gw, gw_url, headers = start(up_url, gw_cpus, tmp)
        try:
            n = max(64, int(2048 * scale))
            log(f"[{name}] stream_c512: {n} streams of 64 paced deltas at concurrency 512")
            out["stream_c512"] = run_load({"kind": "stream", "conc": 512, "requests": n, "warmup": 512,
                                           "targets": {"direct": up_url, "gateway": gw_url}, "headers": headers,
                                           "pid": gw.p.pid}, up_cpus)  # fmt: skip
        finally:
            gw.stop()
    finally:
        up.stop()
    return out


def _f(x: float | None, nd: int = 2) -> str:
    return "-" if x is None or x != x else f"{x:.{nd}f}"


def report(res: dict[str, Any]) -> str:
    lines = ["| scenario | gateway | p50 direct ms | p50 via ms | added p50 ms | added p99 ms | req/s | req per CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    for sc in (*CHAT, "stream_c512"):
        for gw in res:
            r = res[gw].get(sc)
            if not r:
                continue
            lines.append(f"| {sc} | {gw} | {_f(r['direct_p50_ms'])} | {_f(r['gateway_p50_ms'])} | {_f(r['added_p50_ms'])} | "
                         f"{_f(r['added_p99_ms'])} | {_f(r['gateway_rps'], 0)} | {_f(r['per_cpu_s'], 0)} |")  # fmt: skip
    lines += ["", "| streams c512 | gateway | added TTFT p50 ms | added TTFT p99 ms | streams/s | deltas lost |", "|---|---|---|---|---|---|"]
    for gw in res:
        r = res[gw].get("stream_c512")
        if r:
            lines.append(f"| stream_c512 | {gw} | {_f(r['added_ttft_p50_ms'])} | {_f(r['added_ttft_p99_ms'])} | "
                         f"{_f(r['gateway_rps'], 0)} | {r['gateway_lost_deltas']} |")  # fmt: skip
    soaks = [(gw, res[gw]["soak"]) for gw in res if "soak" in res[gw]]
    if soaks:
        lines += ["", "| soak | gateway | seconds | requests | RSS after warm-up MB | RSS end MB | growth MB | max MB |",
                  "|---|---|---|---|---|---|---|---|"]
        for gw, s in soaks:
            lines.append(f"| soak | {gw} | {s['seconds']:.0f} | {s['requests']} | {_f(s['rss_after_warmup_mb'], 1)} | "
                         f"{_f(s['rss_end_mb'], 1)} | {_f(s['rss_growth_mb'], 1)} | {_f(s['rss_max_mb'], 1)} |")  # fmt: skip
    if "arun" in res and "litellm" in res:
        lines += ["", "| ratio arun / LiteLLM proxy (requests per CPU second) | value | target |", "|---|---|---|"]
        for sc in (*CHAT, "stream_c512"):
            a, b = res["arun"].get(sc), res["litellm"].get(sc)
            if a and b and a.get("per_cpu_s") and b.get("per_cpu_s"):
                ratio = a["per_cpu_s"] / b["per_cpu_s"]
                lines.append(f"| {sc} | {ratio:.1f}x | >= 10x: {'met' if ratio >= 10 else 'missed'} |")
    a = res.get("arun", {})
    if "chat_c1" in a:
        v = a["chat_c1"]["added_p50_ms"]
        lines.append(f"| arun added p50 at concurrency 1 | {v:.3f} ms | < 1 ms: {'met' if v < 1 else 'missed'} |")
    if "soak" in a:
        g = a["soak"]["rss_growth_mb"]
        lines.append(f"| arun RSS growth over the soak | {g:.1f} MB | <= 5 MB: {'met' if g <= 5 else 'missed'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.bench_gateway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--load", default=None, help=argparse.SUPPRESS)
    p.add_argument("--soak", type=float, default=60.0, help="seconds of the constant-load soak (0: none; the report: 600)")
    p.add_argument("--soak-warmup", type=float, default=30.0, help="seconds of the same load before the soak's first sample")
    p.add_argument("--no-litellm", action="store_true", help="arun only")
    p.add_argument("--only-litellm", action="store_true", help="LiteLLM proxy only")
    p.add_argument("--litellm-soak", action="store_true", help="soak the LiteLLM proxy too")
    p.add_argument("--quick", action="store_true", help="a tenth of the request counts")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--out", default=str(HERE / "results" / "gateway.json"))
    args = p.parse_args(argv)
    if args.load is not None:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        result = asyncio.run(_load(json.loads(args.load)))
        print("RESULT " + json.dumps(result))
        return 0
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="arun-bench-gw-") as tmpdir:
        tmp = Path(tmpdir)
        if not args.only_litellm:
            res["arun"] = bench_one("arun", start_arun, args, tmp)
        if not args.no_litellm:
            note = ensure_proxy()
            if note:
                log(f"[bench] {note}; skipping the LiteLLM proxy")
            else:
                soak = args.soak
                if not args.litellm_soak:
                    args.soak = 0
                res["litellm"] = bench_one("litellm", start_litellm, args, tmp)
                args.soak = soak
    payload = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": os.uname().machine, "cpus": os.cpu_count(),
               "python": sys.version.split()[0], "soak_seconds": args.soak, "results": res}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=2))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
