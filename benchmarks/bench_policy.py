"""µs per limiter decision: acquire + settle + release, memory and Redis (median of 3 runs).

    .venv/bin/python benchmarks/bench_policy.py [--redis redis://127.0.0.1:6379/0] [-n 20000]

Prints a Markdown table.  Limits are set high enough never to bind, so this is
the cost of the bookkeeping (memory) or of the round trips (Redis: one Lua
script to acquire, one to settle, one ZREM to release when max_in_flight is set).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from arun.policy.limits import LimitSpec, open_limiter

CASES = [
    ("unlimited", LimitSpec()),
    ("rpm+tpm", LimitSpec(rpm=10**9, tpm=10**12)),
    ("rpm+tpm+in-flight", LimitSpec(rpm=10**9, tpm=10**12, max_in_flight=10**6)),
]


async def _run(url: str, spec: LimitSpec, n: int) -> float:
    prefix = f"arun-bench-{uuid.uuid4().hex[:8]}:"
    lim = open_limiter(url if url.startswith("memory") else f"{url}?prefix={prefix}")
    key = "bench:openai:gpt-4o:cfg"
    try:
        for _ in range(min(n, 200)):  # warm-up (connections, script cache)
            p = await lim.acquire(key, spec, 100)
            await p.settle(60)
            await p.release()
        t = time.perf_counter()
        for _ in range(n):
            p = await lim.acquire(key, spec, 100)
            await p.settle(60)
            await p.release()
        return (time.perf_counter() - t) / n * 1e6
    finally:
        if not url.startswith("memory"):
            keys = [k async for k in lim.client.scan_iter(match=f"{prefix}*")]
            if keys:
                await lim.client.delete(*keys)
        await lim.aclose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("-n", type=int, default=20000)
    args = ap.parse_args()
    rows = []
    for backend, url, n in (("memory", "memory://", args.n), ("redis", args.redis, max(500, args.n // 20))):
        for name, spec in CASES:
            try:
                runs = [await _run(url, spec, n) for _ in range(3)]
            except Exception as exc:  # Redis not reachable
                rows.append((backend, name, n, f"n/a ({type(exc).__name__})"))
                continue
            rows.append((backend, name, n, f"{statistics.median(runs):.1f}"))
    try:
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(args.redis)
        await r.ping()
        pings = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(500):
                await r.ping()
            pings.append((time.perf_counter() - t) / 500 * 1e6)
        await r.aclose()
        rows.append(("redis", "PING only (reference round trip)", 500, f"{statistics.median(pings):.1f}"))
    except Exception:
        pass
    print("| backend | limits | decisions per run | µs per acquire+settle+release (median of 3) |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")


if __name__ == "__main__":
    asyncio.run(main())
