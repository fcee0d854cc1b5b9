"""Cost of one balancing decision (``StateStore.lb_pick``), memory and Redis.

    .venv/bin/python benchmarks/bench_balancer.py [--memory N] [--redis N] [--redis-url URL]

Prints a Markdown table: µs per decision, median of 3 runs, sequential calls
from one coroutine (for Redis that is one round trip per decision, so the
number is dominated by the loopback RTT).  One config of three is cooling, so
a third of the decisions take the skip-and-INCR-again path.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arun.state import MemoryStateStore, StateUnavailableError, lb_scope

IDS = ["cfg-a", "cfg-b", "cfg-c"]
SCOPE = lb_scope("bench-tenant", "openai", "llm", "gpt-4o")


async def _time_picks(store, n: int) -> float:
    pick = store.lb_pick
    t0 = time.perf_counter()
    for _ in range(n):
        await pick(SCOPE, IDS)
    return (time.perf_counter() - t0) / n * 1e6


async def _bench(store, n: int, runs: int = 3) -> list[float]:
    await store.lb_cooldown(SCOPE, "cfg-c", 3600, "bench")
    await _time_picks(store, min(n, 1000))  # warm up (and load the Lua script)
    return [await _time_picks(store, n) for _ in range(runs)]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory", type=int, default=100_000)
    ap.add_argument("--redis", type=int, default=10_000)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()

    rows = []
    mem = MemoryStateStore()
    runs = await _bench(mem, args.memory)
    rows.append(("memory", args.memory, runs))
    await mem.aclose()

    from arun.state.redis import RedisStateStore

    prefix = f"arun-bench-{uuid.uuid4().hex[:8]}:"
    sep = "&" if "?" in args.redis_url else "?"
    red = RedisStateStore.from_url(f"{args.redis_url}{sep}prefix={prefix}")
    try:
        runs = await _bench(red, args.redis)
        rows.append(("redis (Lua, 1 RTT)", args.redis, runs))
        ping = red.client.ping
        base = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(args.redis):
                await ping()
            base.append((time.perf_counter() - t0) / args.redis * 1e6)
        rows.append(("redis PING (RTT baseline)", args.redis, base))
    except StateUnavailableError as exc:
        print(f"redis skipped: {exc}", file=sys.stderr)
    finally:
        try:
            keys = [k async for k in red.client.scan_iter(match=f"{prefix}*")]
            if keys:
                await red.client.delete(*keys)
        except Exception:
            pass
        await red.aclose()

    print("| store | decisions per run | µs/decision (median of 3) | runs (µs) |")
    print("|---|---:|---:|---|")
    for name, n, r in rows:
        print(f"| {name} | {n:,} | {statistics.median(r):.2f} | {', '.join(f'{x:.2f}' for x in r)} |")


if __name__ == "__main__":
    asyncio.run(main())
