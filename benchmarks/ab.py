"""Floor vs arun in one process, alternating blocks: a quick A/B for profiling a change.

    .venv/bin/python -m benchmarks.ab --kind stream --conc 512 --requests 1024 --blocks 10

Both clients share one process, one event loop and one upstream (its own process, pinned to
another CPU unless ``--no-pin``), and run in alternating blocks of ``--requests`` calls, so the
host's drift hits both alike. Prints CPU (``time.process_time``) per call for each client,
median and minimum over its blocks, and arun's ratio to the floor. This is a tool for working on
the hot path; the report's figures come from ``benchmarks.run`` (a fresh process per client).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from statistics import median
from typing import Any

from benchmarks.clients import arun_client, floor
from benchmarks.common import rerank_docs
from benchmarks.run import UpstreamProc, pinning


async def _blocks(args: argparse.Namespace, url: str) -> dict[str, list[float]]:
    spec: dict[str, Any] = {"kind": args.kind, "conc": args.conc, "chunks": args.chunks}
    clients = {"floor": floor.Client(url, spec), "arun": arun_client.Client(url, spec)}
    for c in clients.values():
        await c.start()
    docs = rerank_docs(100)

    def call(c: Any) -> Callable[[], Awaitable[Any]]:
        if args.kind == "stream":
            return c.stream
        if args.kind == "chat":
            return c.chat
        return lambda: c.rerank("what is topic 3?", docs, 3)

    async def run(fn: Callable[[], Awaitable[Any]], n: int) -> None:
        it = iter(range(n))

        async def worker() -> None:
            for _ in it:
                await fn()

        await asyncio.gather(*(worker() for _ in range(min(args.conc, n))))

    try:
        for c in clients.values():
            await run(call(c), args.warmup)
        per_call: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients)
        for b in range(args.blocks):
            for name in order if b % 2 == 0 else order[::-1]:
                t0 = time.process_time()
                await run(call(clients[name]), args.requests)
                per_call[name].append((time.process_time() - t0) / args.requests * 1e6)
        return per_call
    finally:
        for c in clients.values():
            await c.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=("stream", "chat", "rerank"), default="chat")
    p.add_argument("--conc", type=int, default=1)
    p.add_argument("--requests", type=int, default=500, help="calls per block")
    p.add_argument("--blocks", type=int, default=10, help="blocks per client, alternating")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--chunks", type=int, default=64)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args(argv)
    cpus = pinning(not args.no_pin)
    upstream = UpstreamProc(args.chunks, 256, "one", cpus[0] if cpus else None)
    try:
        if cpus:
            os.sched_setaffinity(0, cpus[1])
        if args.loop == "uvloop":
            import uvloop

            per_call = uvloop.run(_blocks(args, upstream.url))
        else:
            per_call = asyncio.run(_blocks(args, upstream.url))
    finally:
        upstream.stop()
    fl, ar = per_call["floor"], per_call["arun"]
    print(f"{args.kind} c{args.conc} {args.loop}: CPU µs/call "
          f"floor median {median(fl):.1f} min {min(fl):.1f} | "
          f"arun median {median(ar):.1f} min {min(ar):.1f} | "
          f"arun ÷ floor median {median(ar) / median(fl):.3f} min {min(ar) / min(fl):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
