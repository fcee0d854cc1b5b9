"""One ``arun bench run|embed|rerank``: build the workload, open the target, estimate and
confirm, probe once, run every level, then print the table and write JSON / plot."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import arun
from arun.bench import datasets
from arun.bench.estimate import Estimate, confirm_run, estimate_cost
from arun.bench.load import (
    closed_loop,
    measure_embed,
    measure_llm,
    measure_rerank,
    open_loop,
    poisson_arrivals,
)
from arun.bench.metrics import Sample, summarize_level
from arun.bench.report import LEGEND, format_table, level_label, write_json, write_plot
from arun.bench.targets import (
    Target,
    TargetSpec,
    endpoint_urls,
    load_credentials,
    open_target,
)
from arun.errors import ArunError

__all__ = ["ProbeFailed", "Workload", "execute", "run_levels"]

MODEL_TYPES = {"run": "llm", "embed": "text-embedding", "rerank": "rerank"}
DEFAULT_REQUESTS = 100
POOL = 256  # distinct prompts / batches / queries prepared when the request count is not known


class ProbeFailed(ArunError):
    """The request sent before measuring failed: the settings are wrong, nothing was measured."""


@dataclass
class Workload:
    """What a level sends: ``request(i)`` measures request i, ``probe()`` sends one and raises on failure."""

    request: Callable[[int], Awaitable[Sample]]
    probe: Callable[[], Awaitable[None]]
    input_tokens: int  # per request, for the estimate
    output_tokens: int
    describe: str


def _requests_per_level(args: argparse.Namespace) -> int | None:
    if args.requests is not None:
        return int(args.requests)
    return None if args.duration is not None else DEFAULT_REQUESTS


def _levels(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.rate:
        return [{"rate": r, "max_concurrency": args.max_concurrency} for r in args.rate]
    return [{"concurrency": c} for c in (args.concurrency or [8])]


def _pool_size(args: argparse.Namespace) -> int:
    n = _requests_per_level(args)
    return min(n, POOL) if n is not None else POOL


def _fallback_tokens(texts: Sequence[str]) -> int:
    from arun.tokenizers import count_tokens

    return sum(count_tokens(t) for t in texts)


async def _mean_tokens(target: Target, payloads: Sequence[Any], texts_of: Callable[[Any], list[str]]) -> int:
    """Mean tokens per payload over a sample of up to 32, by the model's counter or GPT-2's."""
    sample = list(payloads[:32])
    total = 0
    for payload in sample:
        counted = await target.count_tokens(payload)
        total += counted if counted is not None else _fallback_tokens(texts_of(payload))
    return round(total / len(sample)) if sample else 0


def _message_texts(messages: Any) -> list[str]:
    return [m.text() for m in messages]


async def _llm_workload(args: argparse.Namespace, target: Target) -> Workload:
    if args.dataset:
        prompts = datasets.load_prompts(args.dataset)
        source = f"{len(prompts):,} prompts from {args.dataset}"
        input_tokens = await _mean_tokens(target, prompts, _message_texts)
    else:
        prompts = datasets.synthetic_prompts(_pool_size(args), args.input_tokens, args.seed)
        source = f"synthetic prompts of {args.input_tokens} tokens"
        input_tokens = args.input_tokens
    params: dict[str, Any] = {"max_tokens": args.max_tokens, **dict(args.param)}
    stream: bool = args.stream
    catch_trace = target.policy

    def request(i: int) -> Awaitable[Sample]:
        messages = prompts[i % len(prompts)]
        return measure_llm(lambda cbs: target.llm(messages, params, stream, cbs), stream=stream, catch_trace=catch_trace)

    async def probe() -> None:
        result = await target.llm(prompts[0], params, stream, None)
        if stream:
            async with result:
                async for _ in result:
                    pass

    mode = "streamed" if stream else "not streamed"
    return Workload(request, probe, input_tokens, args.max_tokens, f"{mode}, {source}, max_tokens {args.max_tokens}")


async def _embed_workload(args: argparse.Namespace, target: Target) -> Workload:
    size = args.batch_size
    if args.dataset:
        texts = datasets.load_texts(args.dataset)
        source = f"{len(texts):,} texts from {args.dataset}"
    else:
        texts = datasets.synthetic_texts(_pool_size(args) * size, args.text_tokens, args.seed)
        source = f"synthetic texts of {args.text_tokens} tokens"
    batches = [[texts[(b * size + j) % len(texts)] for j in range(size)] for b in range(max(1, min(POOL, len(texts) // size or 1)))]
    fanout = args.fanout

    def request(i: int) -> Awaitable[Sample]:
        batch = batches[i % len(batches)]
        return measure_embed(lambda: target.embed(batch, fanout), len(batch))

    async def probe() -> None:
        await target.embed(batches[0], fanout)

    input_tokens = await _mean_tokens(target, batches, list) if args.dataset else size * args.text_tokens
    return Workload(request, probe, input_tokens, 0, f"{size} texts per request, {source}")


async def _rerank_workload(args: argparse.Namespace, target: Target) -> Workload:
    if args.dataset:
        queries = datasets.load_rerank(args.dataset)
        source = f"{len(queries):,} queries from {args.dataset}"
        input_tokens = await _mean_tokens(target, queries, lambda query: [query[0], *query[1]])
    else:
        queries = datasets.synthetic_rerank(_pool_size(args), args.docs, args.doc_tokens, args.seed)
        source = f"synthetic queries with {args.docs} documents of {args.doc_tokens} tokens"
        input_tokens = 8 + args.docs * args.doc_tokens
    top_n = args.top_n

    def request(i: int) -> Awaitable[Sample]:
        query, docs = queries[i % len(queries)]
        return measure_rerank(lambda: target.rerank(query, docs, top_n), len(docs))

    async def probe() -> None:
        await target.rerank(queries[0][0], queries[0][1], top_n)

    return Workload(request, probe, input_tokens, 0, source)


WORKLOADS = {"run": _llm_workload, "embed": _embed_workload, "rerank": _rerank_workload}


def _estimate(args: argparse.Namespace, target: Target, work: Workload) -> Estimate:
    per_level = _requests_per_level(args)
    total: int | None = None
    if args.rate and args.duration is not None:  # an open loop bounded by time: rate x duration on average
        total = sum(min(per_level or 10**12, round(r * args.duration)) for r in args.rate)
    elif per_level is not None:
        total = per_level * len(_levels(args))
    return estimate_cost(
        target.schema,
        requests=None if total is None else total + 1,  # + the probe
        input_tokens=work.input_tokens,
        output_tokens=work.output_tokens,
    )


def _where(target: Target) -> str:
    """The model and the hosts it is reached at (never more of the credentials than host names)."""
    if target.simulated:
        return f"{target.provider}/{target.model} on the built-in simulator (nothing is charged)"
    hosts = sorted({urlsplit(u.strip()).hostname or "?" for u in endpoint_urls(target.credentials)})
    at = f" at {', '.join(hosts)}" if hosts else " at the provider's default endpoint"
    return f"{target.provider}/{target.model}{at}" + (" (a local address: not asked)" if target.local else "")


async def run_levels(
    work: Workload,
    levels: Sequence[dict[str, Any]],
    *,
    requests: int | None,
    duration: float | None,
    seed: int,
    slo: Any,
    progress: bool,
) -> list[dict[str, Any]]:
    """Every level in turn: its samples summarised, with the level's own settings first."""
    from tqdm import tqdm

    out = []
    for level in levels:
        bar = tqdm(total=requests, desc=level_label(level), unit="req", file=sys.stderr, leave=False,
                   disable=None if progress else True, mininterval=0.25)  # fmt: skip
        errors = [0]

        def done(sample: Sample) -> None:  # used within this iteration only
            bar.update(1)  # noqa: B023
            if sample.error is not None:
                errors[0] += 1  # noqa: B023
                bar.set_postfix(errors=errors[0], refresh=False)  # noqa: B023

        cpu0, started = time.process_time(), time.perf_counter()
        try:
            if "rate" in level:
                arrivals = poisson_arrivals(level["rate"], count=requests, duration=duration, seed=seed)
                samples = await open_loop(work.request, arrivals, max_concurrency=level["max_concurrency"], on_done=done)
            else:
                samples = await closed_loop(work.request, level["concurrency"], requests=requests, duration=duration, on_done=done)
        finally:
            bar.close()
        cpu = time.process_time() - cpu0
        out.append({**level, **summarize_level(samples, started=started, cpu_seconds=cpu, slo=slo)})
    return out


async def _probe(work: Workload) -> None:
    """One request before measuring, so a wrong setting fails once instead of N times. Being
    rate limited is what a load test may be about: that is noted and the run goes on."""
    from arun.errors import InvokeQuotaExhaustedError, InvokeRateLimitError

    try:
        await work.probe()
    except InvokeRateLimitError as exc:
        if isinstance(exc, InvokeQuotaExhaustedError):
            raise ProbeFailed(f"the first request failed, so nothing was measured: {type(exc).__name__}: {exc}") from None
        print(f"note: the first request was rate limited ({exc}); measuring anyway", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - any other first failure stops the run, with its class
        raise ProbeFailed(f"the first request failed, so nothing was measured: {type(exc).__name__}: {exc}") from None


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"legend", "no_progress", "yes", "json", "plot"}
    settings = {k: v for k, v in vars(args).items() if k not in skip}
    if "param" in settings:
        settings["param"] = dict(settings["param"])
    if getattr(args, "slo", None) is not None:
        settings["slo"] = args.slo.to_dict()
    sources = [f"file {args.credentials}"] if args.credentials else []
    sources += ["built-in simulator"] if args.simulator else []
    sources += ["tenant store"] if args.tenant else []
    settings["credentials_from"] = [*sources, "ARUN_BENCH_CRED_* variables"]  # names of sources only, never values
    settings.pop("credentials", None)
    settings["requests"] = _requests_per_level(args)
    return settings


def _spec(args: argparse.Namespace, model_type: str) -> TargetSpec:
    pool = max(args.concurrency or [8]) if not args.rate else (args.max_concurrency or 0)
    return TargetSpec(
        model_type=model_type,
        provider=args.provider,
        model=args.model,
        credentials=load_credentials(args.credentials),
        tenant=args.tenant,
        store=args.store,
        state=args.state,
        policy=args.policy,
        simulator=args.simulator,
        sim_reply_words=getattr(args, "max_tokens", None),
        sim_chunk_delay=args.sim_chunk_delay,
        pool_size=pool,
    )


async def execute(args: argparse.Namespace) -> int:
    command: str = args.bench_command
    model_type = MODEL_TYPES[command]
    out = sys.stdout
    async with open_target(_spec(args, model_type)) as target:
        work = await WORKLOADS[command](args, target)
        estimate = _estimate(args, target, work)
        confirm_run(estimate, where=_where(target), local=target.local, yes=args.yes, stdin=sys.stdin, out=out)
        await _probe(work)
        levels = await run_levels(
            work, _levels(args), requests=_requests_per_level(args), duration=args.duration, seed=args.seed,
            slo=getattr(args, "slo", None), progress=not args.no_progress,
        )  # fmt: skip
    loop = "open loop (Poisson arrivals)" if args.rate else "closed loop"
    per = f"{_requests_per_level(args):,} requests" if _requests_per_level(args) else ""
    if args.duration is not None:
        per = f"{per}{' or ' if per else ''}{args.duration:g} s"
    title = f"arun bench {command}: {target.label}\n{work.describe}; {loop}, {per} per level"
    print(format_table(model_type, levels, title), file=out)
    document = {
        "tool": "arun bench",
        "arun_version": arun.__version__,
        "python": platform.python_version(),
        "command": command,
        "model_type": model_type,
        "target": {
            "provider": target.provider,
            "model": target.model,
            "via": "manager" if target.instance is not None else "runtime",
            "tenant": args.tenant,
            "policy": target.policy,
            "simulator": target.simulated,
            "local": target.local,
        },
        "settings": _settings(args),
        "estimate": estimate.to_dict(),
        "units": "latencies in ms (mean, p50, p90, p99 over successful requests); throughputs per second of a "
                 "level's wall time (first send to last completion); client_cpu in seconds of this process's CPU time",
        "levels": levels,
    }
    if args.json:
        write_json(args.json, document)
        print(f"wrote {args.json}", file=out)
    if args.plot:
        write_plot(args.plot, model_type, levels)
        print(f"wrote {args.plot}", file=out)
    if args.legend:
        print("\n" + LEGEND, file=out)
    return 0
