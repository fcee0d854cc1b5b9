"""One client, one scenario, one process.

    python -m benchmarks.worker --client floor --url http://127.0.0.1:PORT --spec '{json}'

Prints one line ``RESULT {json}`` on stdout.  CPU (user+sys) is the
``getrusage(RUSAGE_SELF)`` delta over the measured phase only (after import,
client construction and a short warm-up); peak RSS is the process's
``ru_maxrss``.  Standard library only, so it runs in the peers venv too; the
client module imports its own library.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

from benchmarks.common import (
    embed_text,
    expected_text,
    order_key,
    rerank_docs,
    rerank_expected,
)

CLIENT_MODULES = {
    "floor": "benchmarks.clients.floor",
    "arun": "benchmarks.clients.arun_client",
    "arun_lb": "benchmarks.clients.arun_lb_client",
    "openai": "benchmarks.clients.openai_client",
    "litellm": "benchmarks.clients.litellm_client",
}

V1 = -0.484375  # component 1 of every upstream vector (see upstream.Responses._tail)


class CheckError(AssertionError):
    pass


def _rss_mb() -> float | None:
    """Current resident set size (Linux), in MB."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return None


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))
    return xs[i]


async def _pool(n: int, conc: int, fn: Any) -> None:
    """Run ``fn(i)`` for i in range(n) with at most ``conc`` in flight."""
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await fn(i)

    await asyncio.gather(*(worker() for _ in range(min(conc, n))))


class Scenario:
    def __init__(self, client: Any, spec: dict[str, Any]) -> None:
        self.c = client
        self.spec = spec
        self.kind = spec["kind"]
        self.lat: list[float] = []
        self.chunks = 0
        self.requests = 0
        self.checked = 0
        self.expected = expected_text(spec.get("chunks", 64))

    # -- one unit of work per kind -----------------------------------------
    async def one_stream(self, _i: int) -> None:
        t0 = time.perf_counter()
        text, t_first, n, usage = await self.c.stream()
        if text != self.expected:
            raise CheckError(f"stream text mismatch: {text[:60]!r}...")
        nchunks = self.spec["chunks"]
        if n != nchunks:
            raise CheckError(f"expected {nchunks} content chunks, got {n}")
        if usage is not None and usage >= 0 and usage != nchunks:
            raise CheckError(f"usage.completion_tokens {usage} != {nchunks}")
        self.lat.append((t_first - t0) if t_first is not None else float("nan"))
        self.chunks += n
        self.requests += 1
        self.checked += 1

    async def one_chat(self, _i: int) -> None:
        t0 = time.perf_counter()
        text, usage = await self.c.chat()
        self.lat.append(time.perf_counter() - t0)
        if text != self.expected:
            raise CheckError(f"chat text mismatch: {text[:60]!r}")
        if usage is not None and usage >= 0 and usage != self.spec["chunks"]:
            raise CheckError(f"usage.completion_tokens {usage} != {self.spec['chunks']}")
        self.chunks += 1
        self.requests += 1
        self.checked += 1

    async def one_rerank(self, _i: int) -> None:
        spec = self.spec
        docs = self._docs
        t0 = time.perf_counter()
        got = await self.c.rerank("what is topic 3?", docs, spec["top_n"])
        self.lat.append(time.perf_counter() - t0)
        want = self._rr_expected
        if [(i, round(s, 6)) for i, s, _ in got] != want:
            raise CheckError(f"rerank results mismatch: {got[:3]} vs {want[:3]}")
        for i, _s, text in got:
            if text is not None and text != docs[i]:
                raise CheckError("rerank document text mismatch")
        self.chunks += len(got)
        self.requests += 1
        self.checked += 1

    def check_vectors(self, texts: list[str], vecs: list[Any], offset: int = 0) -> None:
        dim = self.spec["dim"]
        if len(vecs) != len(texts):
            raise CheckError(f"expected {len(texts)} vectors, got {len(vecs)}")
        for j, (t, v) in enumerate(zip(texts, vecs)):
            if len(v) != dim:
                raise CheckError(f"vector {offset + j}: dim {len(v)} != {dim}")
            key = order_key(t)
            # normalisation-proof order check: v[0]/v[1] recovers the text number
            got = round(v[0] / v[1] * V1)
            if got != key:
                raise CheckError(f"vector {offset + j} out of order: key {got} != {key}")

    # -- drivers ------------------------------------------------------------
    async def warmup(self) -> None:
        n = int(self.spec.get("warmup", 8))
        if n <= 0:
            return
        if self.kind == "embed":
            texts = [embed_text(k) for k in range(min(self.spec["batch"], 64))]
            if hasattr(self.c, "embed_all"):
                vecs = await self.c.embed_all(texts)
            else:
                vecs = await self.c.embed(texts)
            self.check_vectors(texts, vecs)
            return
        fn = {"stream": self.one_stream, "chat": self.one_chat, "rerank": self.one_rerank}[self.kind]
        await _pool(n, min(n, self.spec.get("conc", 1)), fn)

    async def run(self) -> None:
        spec = self.spec
        if self.kind == "rerank":
            self._docs = rerank_docs(spec["docs"])
            self._rr_expected = rerank_expected(spec["docs"], spec["top_n"])
        await self.warmup()
        gc.collect()
        self.rss_warm_mb = _rss_mb()  # resident set after import, construction and warm-up
        # reset counters after warm-up
        self.lat, self.chunks, self.requests, self.checked = [], 0, 0, 0
        if self.kind == "embed":
            self.texts = [embed_text(k) for k in range(spec["texts"])]
        gc.collect()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if self.kind == "stream":
            await _pool(spec["requests"], spec["conc"], self.one_stream)
        elif self.kind == "chat":
            await _pool(spec["requests"], spec["conc"], self.one_chat)
        elif self.kind == "rerank":
            await _pool(spec["requests"], spec["conc"], self.one_rerank)
        elif self.kind == "embed":
            await self.run_embed()
        else:
            raise ValueError(self.kind)
        self.wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)

    async def run_embed(self) -> None:
        texts = self.texts
        batch = self.spec["batch"]
        if hasattr(self.c, "embed_all"):
            # the client batches by itself (arun: by the model's max_chunks)
            t0 = time.perf_counter()
            vecs = await self.c.embed_all(texts)
            self.lat.append(time.perf_counter() - t0)
            self.requests += getattr(self.c, "batches", None) or (len(texts) + batch - 1) // batch
        else:
            nb = (len(texts) + batch - 1) // batch
            out: list[Any] = [None] * nb

            async def one(b: int) -> None:
                part = texts[b * batch:(b + 1) * batch]
                t0 = time.perf_counter()
                out[b] = await self.c.embed(part)
                self.lat.append(time.perf_counter() - t0)
                self.requests += 1

            await _pool(nb, self.spec["conc"], one)
            vecs = [v for part in out for v in part]
        self.check_vectors(texts, vecs)
        self.chunks += len(vecs)
        self.checked += len(vecs)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    spec = json.loads(args.spec)
    res: dict[str, Any] = {"client": args.client, "scenario": spec.get("name", spec["kind"]),
                           "ok": False, "error": None}
    mod = importlib.import_module(CLIENT_MODULES[args.client])
    client = mod.Client(args.url, spec)
    sc = Scenario(client, spec)
    try:
        await client.start()
        await sc.run()
        res["ok"] = True
    except Exception as e:  # report, don't crash: the runner shows the error
        res["error"] = f"{type(e).__name__}: {e}"[:500]
        traceback.print_exc(file=sys.stderr)
    finally:
        try:
            await client.close()
        except Exception:
            pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    lat_ms = [x * 1000.0 for x in sc.lat if x == x]
    res.update({
        "requests": sc.requests, "chunks": sc.chunks, "checked": sc.checked,
        "wall_s": getattr(sc, "wall", None), "cpu_s": getattr(sc, "cpu", None),
        "ttfc_p50_ms": _pct(lat_ms, 0.50), "ttfc_p99_ms": _pct(lat_ms, 0.99),
        "maxrss_mb": ru.ru_maxrss / 1024.0,
        "rss_warm_mb": getattr(sc, "rss_warm_mb", None),
        "version": getattr(mod, "version", lambda: None)(),
    })
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.worker")
    p.add_argument("--client", required=True, choices=sorted(CLIENT_MODULES))
    p.add_argument("--url", required=True, help="upstream base URL, without /v1")
    p.add_argument("--spec", required=True, help="scenario as JSON")
    p.add_argument("--cpus", default=None, help="comma list of CPUs to pin this process to")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop of the client (uvloop must be installed in its venv)")
    args = p.parse_args(argv)
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    if args.loop == "uvloop":
        import uvloop  # type: ignore[import-not-found]

        res = uvloop.run(amain(args))
    else:
        res = asyncio.run(amain(args))
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    sys.stdout.flush()
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
