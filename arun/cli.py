"""The ``arun`` command line: ``demo``, ``providers``, ``simulator``, ``bench``, the manager's commands and the
gateway's (``serve``, ``keys``, ``spend``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]

#: commands that parse their own arguments (so their options and --help reach them whole): module, function
_DELEGATED = {
    "bench": ("arun.bench.cli", "main"),
    "demo": ("arun.demo", "run_demo"),
    "simulator": ("arun.testing.__main__", "main"),
}


async def _providers(model_type: str | None, paths: list[str], summary: bool) -> int:
    from arun import ModelRuntime
    from arun.entities.model import ModelType

    async with ModelRuntime(provider_paths=paths) as rt:
        counts: dict[str, int] = {}
        broken = 0
        for name in rt.provider_names():
            try:
                schema = rt.get_provider_schema(name)
                entries = await rt.get_models(provider=name, model_type=model_type)
            except Exception as exc:  # noqa: BLE001 - one broken provider is listed, not fatal
                broken += 1
                print(f"{name}: BROKEN ({type(exc).__name__}: {exc})")
                continue
            for kind in schema.supported_model_types:
                counts[kind.value] = counts.get(kind.value, 0) + 1
            if summary:
                continue
            for provider in entries:
                methods = ", ".join(m.value for m in schema.configurate_methods)
                print(f"{provider.provider}: {', '.join(t.value for t in provider.supported_model_types)}  [{methods}]")
                for model in provider.models:
                    ctx = model.property("context_size")
                    print(f"  {model.model_type.value:<15} {model.model}" + (f"  (context {ctx})" if ctx else ""))
        total = len(rt.provider_names())
        order = [t.value for t in ModelType if t.value in counts]
        print(f"{total} providers ({broken} broken); by model type: " + ", ".join(f"{k} {counts[k]}" for k in order))
        return 1 if broken else 0


def _check(paths: list[str]) -> int:
    """Lint provider folders (Dify, arun or plugin layout): every problem with its file and key."""
    from arun import ModelRuntime
    from arun.schema.lint import lint_provider_folder
    from arun.schema.loader import LoadProblem

    runtime = ModelRuntime(provider_paths=paths)
    sources = {s.id: s for s in map(runtime.provider_source, runtime.provider_names()) if not s.builtin}
    problems = runtime.discovery_problems
    errors = sum(1 for p in problems if p.severity == "error")
    for p in problems:
        print(p)
    if not sources:
        print(f"no provider folder found under {', '.join(paths)}")
        return 1
    for name, source in sources.items():
        found = runtime.get_provider(name).check()
        if source.layout == "folder":  # our strict lint: what loads but should be spelt otherwise
            for text in lint_provider_folder(source.folder):
                file, _, message = text.partition(": ")
                found.append(LoadProblem(file, message, "warning") if message else LoadProblem(str(source.folder), text, "warning"))
        for p in found:
            print(p)
        errors += sum(1 for p in found if p.severity == "error")
        status = "ok" if not any(p.severity == "error" for p in found) else "errors"
        print(f"{name} ({source.layout} layout, {source.folder}): {status}")
    return 1 if errors else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arun", description="asyncio-native model runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the end-to-end scenario against the built-in simulator (arun demo --help)", add_help=False)
    providers = sub.add_parser("providers", help="list providers and their predefined models, or lint a folder")
    providers.add_argument("--type", dest="model_type", default=None, help="only this model type")
    providers.add_argument("--path", action="append", default=[], help="add a providers folder (repeatable)")
    providers.add_argument("--summary", action="store_true", help="only the counts by model type")
    providers.add_argument("--check", metavar="PATH", action="append", help="lint a provider folder: every problem with file and key")
    sub.add_parser("simulator", help="serve the upstream simulator in the foreground (arun simulator --help)", add_help=False)
    sub.add_parser("bench", help="load-test a provider, credential pool or gateway (arun bench --help)", add_help=False)
    from arun.manager.cli import register

    register(sub)
    from arun.gateway.cli import register as register_gateway

    register_gateway(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv) if argv is not None else sys.argv[1:]
    delegated = _DELEGATED.get(argv[0]) if argv else None
    if delegated is not None:
        import importlib

        module, function = delegated
        return int(getattr(importlib.import_module(module), function)(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "providers":
        if args.check:
            return _check(args.check)
        return asyncio.run(_providers(args.model_type, args.path, args.summary))
    handler = getattr(args, "func", None)
    if handler is None:
        parser.error(f"unknown command {args.command}")
    return int(handler(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
