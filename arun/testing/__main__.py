"""``python -m arun.testing`` (or ``arun simulator``) ``[--host 127.0.0.1] [--port 0] [--reply-words N]
[--chunk-delay S]``: run the simulator in the foreground until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


async def _run(host: str, port: int, reply_words: int | None, chunk_delay: float) -> None:
    from .simulator import SimulatorConfig, UpstreamSimulator

    sim = UpstreamSimulator(SimulatorConfig(reply_words=reply_words, chunk_delay=chunk_delay), host=host, port=port)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    sys.stdout.write(f"READY {sim.url}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await sim.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="arun simulator", description="arun upstream simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reply-words", type=int, default=None)
    p.add_argument("--chunk-delay", type=float, default=0.0)
    args = p.parse_args(argv)
    asyncio.run(_run(args.host, args.port, args.reply_words, args.chunk_delay))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
