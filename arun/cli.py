"""The ``arun`` command line: ``demo``, ``providers``, ``simulator``, ``bench`` and the manager's commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


async def _providers(model_type: str | None) -> None:
    from arun import ModelRuntime

    async with ModelRuntime() as rt:
        for provider in await rt.get_models(model_type=model_type):
            print(f"{provider.provider}: {', '.join(t.value for t in provider.supported_model_types)}")
            for model in provider.models:
                ctx = model.property("context_size")
                print(f"  {model.model_type.value:<15} {model.model}" + (f"  (context {ctx})" if ctx else ""))


async def _simulator(host: str, port: int) -> None:
    from arun.testing import UpstreamSimulator

    async with UpstreamSimulator(host=host, port=port) as sim:
        print(f"READY {sim.url}", flush=True)
        await asyncio.Event().wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arun", description="asyncio-native model runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end scenario against the built-in simulator")
    demo.add_argument("rest", nargs=argparse.REMAINDER)
    providers = sub.add_parser("providers", help="list providers and their predefined models")
    providers.add_argument("--type", dest="model_type", default=None)
    simulator = sub.add_parser("simulator", help="serve the upstream simulator in the foreground")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=0)
    # `arun bench ...` is dispatched in main() before parsing, so its options (and --help) reach it whole
    sub.add_parser("bench", help="load-test a provider, credential pool or gateway (arun bench --help)", add_help=False)
    from arun.manager.cli import register

    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    if argv[:1] == ["bench"]:
        from arun.bench.cli import main as bench_main

        return bench_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from arun.demo import run_demo

        return run_demo(args.rest)
    if args.command == "providers":
        asyncio.run(_providers(args.model_type))
        return 0
    if args.command == "simulator":
        try:
            asyncio.run(_simulator(args.host, args.port))
        except KeyboardInterrupt:
            pass
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.error(f"unknown command {args.command}")
    return int(handler(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
