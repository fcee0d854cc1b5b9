"""``arun bench``: the command line of the load tester.

``arun bench`` alone runs a short streamed load test against the built-in simulator and
prints what the tool measures; ``run`` / ``embed`` / ``rerank`` point it at a real
provider, credential pool or gateway; ``compare`` is the project's peer comparison
(``benchmarks.run``, from a checkout of the repository).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from arun.bench.errors import BenchUsageError
from arun.bench.metrics import parse_duration, parse_slo
from arun.bench.report import LEGEND

__all__ = ["main", "build_parser", "DEFAULT_ARGV"]

#: What ``arun bench`` with no arguments runs.
DEFAULT_ARGV = [
    "run", "--simulator", "--concurrency", "1,8,32", "--requests", "100",
    "--input-tokens", "32", "--max-tokens", "16", "--sim-chunk-delay", "0.001", "--legend",
]  # fmt: skip

_DESCRIPTION = """\
Load-test a provider, credential pool or gateway through arun. With no arguments: a short
streamed run against the built-in simulator, to see what is measured before pointing it
anywhere. run / embed / rerank measure a chat, embedding or rerank model; compare is the
project's own peer comparison (benchmarks.run, from a checkout of the repository).
"""

_EXAMPLES = """\
examples:
  arun bench                                   # a few seconds against the built-in simulator
  arun bench run --simulator --concurrency 1,8,64 --json out.json --plot out.png
  arun bench run --provider openai --model gpt-4o-mini --credentials creds.yaml --rate 2 --requests 50
  arun bench run --provider openai_api_compatible --model my-model --credentials vllm.yaml \\
                 --concurrency 1,8,64,256 --input-tokens 512 --max-tokens 256 --slo ttft=500ms,e2e=5s
  arun bench run --tenant T --provider openai --model gpt-4o --policy --duration 60s --yes
  arun bench embed --simulator --batch-size 64 --concurrency 1,8
  arun bench rerank --simulator --docs 32 --concurrency 4
  arun bench compare --smoke                   # the project's peer comparison (from a checkout)
"""

_NOTES = """\
credentials: --credentials FILE is a YAML or JSON mapping of the provider's credential fields
(e.g. for openai_api_compatible: endpoint_url: http://host:8000/v1, api_key: ...); variables
ARUN_BENCH_CRED_<FIELD> add or override fields (ARUN_BENCH_CRED_API_KEY sets api_key). They are
never printed. `arun serve` (the gateway) and vLLM are OpenAI-compatible: use
--provider openai_api_compatible with endpoint_url pointing at their /v1. --tenant T goes through
the manager (--store/--state as for `arun credentials`), so load balancing, quotas and, with
--policy, limits, retries and fallbacks are part of what is measured.

cost: before a run that is not against the simulator or a local address (localhost, 127.0.0.0/8,
::1) the estimate from the model's prices is printed and confirmed; --yes skips the question
(required when there is no terminal).
"""


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive whole numbers separated by commas, e.g. 1,8,64")
    return values


def _positive_rates(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive request rates (requests/s) separated by commas, e.g. 2 or 1,5,20")
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive duration (seconds, or with a unit: 30s, 2m)")
    return value


def _slo(text: str) -> Any:
    try:
        return parse_slo(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE (e.g. temperature=0.2)")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def _target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--provider", help="provider name (see `arun providers`)")
    g.add_argument("--model", help="model name (any name for customizable providers such as openai_api_compatible)")
    g.add_argument("--credentials", metavar="FILE", help="YAML/JSON mapping of credential fields (plus ARUN_BENCH_CRED_* variables)")
    g.add_argument("--tenant", metavar="T", help="go through the manager with tenant T's stored credentials")
    g.add_argument("--store", help="manager store URL with --tenant (default $ARUN_STORE_URL or ~/.arun/arun.db)")
    g.add_argument("--state", help="manager state URL with --tenant (default $ARUN_STATE_URL or memory://)")
    g.add_argument("--policy", action="store_true", help="with --tenant: enable the policy stack (limits, retries, fallbacks)")
    g.add_argument("--simulator", action="store_true", help="start the built-in simulator and point the provider at it")
    g.add_argument("--sim-chunk-delay", type=float, default=0.0, metavar="S", help="with --simulator: seconds between stream events")


def _load_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("load")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--concurrency", type=_positive_ints, metavar="N[,N...]",
                      help="closed loop: N requests in flight, back to back; a list is a sweep (default 8)")
    mode.add_argument("--rate", type=_positive_rates, metavar="R[,R...]",
                      help="open loop: Poisson arrivals at R requests/s; a list is a sweep")
    g.add_argument("--max-concurrency", type=_positive_int, metavar="N", help="with --rate: at most N requests in flight")
    g.add_argument("--requests", type=_positive_int, metavar="N", help="requests per level (default 100 unless --duration)")
    g.add_argument("--duration", type=_seconds, metavar="S", help="seconds per level (30, 30s, 2m); with --requests, whichever ends first")
    g.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the arrival times")


def _output_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--json", metavar="FILE", help="write every figure and the run's settings as JSON")
    g.add_argument("--plot", metavar="FILE", help="write latency percentiles and throughput against concurrency or rate (PNG; needs matplotlib)")
    g.add_argument("--legend", action="store_true", help="print what each metric means after the table")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (it is off anyway when stderr is not a terminal)")
    g.add_argument("--yes", "-y", action="store_true", help="do not ask before sending paid requests")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    notes = _NOTES + "\n" + LEGEND
    parser = argparse.ArgumentParser(prog="arun bench", description=_DESCRIPTION, epilog=_EXAMPLES + "\n" + notes, formatter_class=fmt)
    sub = parser.add_subparsers(dest="bench_command", metavar="{run,embed,rerank,compare}")
    run = sub.add_parser("run", help="load-test a chat model (LLM)", description="Load-test a chat model.",
                         epilog=_EXAMPLES + "\n" + notes, formatter_class=fmt)
    _target_args(run)
    _load_args(run)
    g = run.add_argument_group("requests")
    g.add_argument("--no-stream", dest="stream", action="store_false", help="non-streamed calls (no TTFT, ITL or TPOT)")
    g.add_argument("--dataset", metavar="FILE", help="JSONL: one prompt (string, {prompt}, {messages} or a message list) per line")
    g.add_argument("--input-tokens", type=_positive_int, default=128, metavar="N", help="synthetic prompt length (default 128)")
    g.add_argument("--max-tokens", type=_positive_int, default=128, metavar="N", help="max_tokens of every request (default 128)")
    g.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE", help="another model parameter (repeat)")
    g.add_argument("--slo", type=_slo, metavar="ttft=500ms,tpot=50ms,e2e=5s", help="bounds for goodput")
    _output_args(run)

    embed = sub.add_parser("embed", help="load-test an embedding model (texts/s, vectors/s)",
                           description="Load-test an embedding model: each request embeds --batch-size texts.",
                           epilog=notes, formatter_class=fmt)
    _target_args(embed)
    _load_args(embed)
    g = embed.add_argument_group("requests")
    g.add_argument("--batch-size", type=_positive_int, default=32, metavar="N", help="texts per request (default 32)")
    g.add_argument("--fanout", type=_positive_int, metavar="N",
                   help="sub-batches the runtime sends at once within one request (its max_concurrency; default: the runtime's)")
    g.add_argument("--dataset", metavar="FILE", help='JSONL: one text (string or {"text": ...}) per line')
    g.add_argument("--text-tokens", type=_positive_int, default=64, metavar="N", help="synthetic text length (default 64)")
    _output_args(embed)

    rerank = sub.add_parser("rerank", help="load-test a rerank model", description="Load-test a rerank model.",
                            epilog=notes, formatter_class=fmt)
    _target_args(rerank)
    _load_args(rerank)
    g = rerank.add_argument_group("requests")
    g.add_argument("--docs", type=_positive_int, default=16, metavar="N", help="documents per query (default 16)")
    g.add_argument("--top-n", type=_positive_int, metavar="N", help="top_n of every request")
    g.add_argument("--dataset", metavar="FILE", help='JSONL: {"query": ..., "documents": [...]} per line')
    g.add_argument("--doc-tokens", type=_positive_int, default=64, metavar="N", help="synthetic document length (default 64)")
    _output_args(rerank)

    sub.add_parser("compare", add_help=False, help="the project's peer comparison (benchmarks.run, from a checkout; arguments pass through)")
    return parser


def _compare(argv: list[str]) -> int:
    try:
        from benchmarks.run import main as compare_main
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.run"):
            raise
        print(
            "arun bench compare runs the project's peer comparison from a checkout of the repository "
            "(benchmarks/ is not installed with the package); to load-test your own endpoint use `arun bench run`",
            file=sys.stderr,
        )
        return 2
    return int(compare_main(argv) or 0)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.max_concurrency and not args.rate:
        parser.error("--max-concurrency applies to --rate (an open loop); a closed loop's --concurrency is its bound")
    if args.tenant is None and (args.store or args.state):
        parser.error("--store and --state apply with --tenant")
    if args.policy and args.tenant is None:
        parser.error("--policy applies with --tenant (the policy stack runs in the manager)")
    if getattr(args, "slo", None) is not None and args.slo.needs_stream and not args.stream:
        parser.error("--slo ttft/tpot need a streamed run (drop --no-stream, or bound e2e only)")
    if args.sim_chunk_delay < 0:
        parser.error("--sim-chunk-delay: must not be negative")


def _user_errors() -> tuple[type[BaseException], ...]:
    """What a wrong setting raises below us: the runtime's usage errors, the manager's own
    (unknown tenant, credentials not set up), its store and state errors."""
    from arun.errors import ArunUsageError, CredentialsValidateFailedError
    from arun.manager.errors import ManagerError
    from arun.manager.store.base import StoreError
    from arun.state.base import StateUnavailableError

    return (ArunUsageError, CredentialsValidateFailedError, ManagerError, StoreError, StateUnavailableError)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["compare"]:
        return _compare(args_list[1:])
    if not args_list:
        args_list = list(DEFAULT_ARGV)
    parser = build_parser()
    if args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        parser.error(f"{args_list[0]}: name a subcommand first (run, embed, rerank or compare); "
                     "the peer comparison's options go after `compare`, e.g. arun bench compare --smoke")  # fmt: skip
    args = parser.parse_args(args_list)
    if args.bench_command is None:
        parser.error("name a subcommand (run, embed, rerank or compare), or give no arguments for the simulator demo")
    _check(parser, args)
    from arun.bench.estimate import RunDeclined
    from arun.bench.runner import ProbeFailed, execute

    name = f"arun bench {args.bench_command}"
    try:
        return asyncio.run(execute(args))
    except BenchUsageError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except (ProbeFailed, RunDeclined) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except _user_errors() as exc:
        print(f"{name}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
