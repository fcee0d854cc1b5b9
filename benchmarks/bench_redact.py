"""Cost of secret registration and redaction (:mod:`arun.redact`) as the registry grows.

    .venv/bin/python benchmarks/bench_redact.py [--sizes 10,1000,10000] [--runs 3]

Prints a Markdown table, one row per registry size: µs to register a new value and an
already-known one (the per-request path), and µs to redact a typical 401 body (about
200 characters) and a 2,000-character error body (the length ``build_error`` keeps),
each the median of ``--runs`` runs.  Registration should stay flat and redaction should
not grow with the number of secrets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arun import redact as redact_mod

BODY_401 = (
    '{"error":{"message":"Incorrect API key provided: sk-proj-notarealkey0000000000. You can find your API key '
    'at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}'
)
BODY_2K = ("upstream said: " + " ".join(f"token{i:04d}=value-{uuid.uuid4().hex[:12]}" for i in range(80)))[:2000]


def _per_call(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def _measure(size: int, runs: int) -> tuple[float, float, float, float]:
    redact_mod._registry.clear()
    redact_mod._index.clear()
    redact_mod.set_capacity(max(size, 1))
    values = [f"tk-{uuid.uuid4().hex}" for _ in range(size)]
    t0 = time.perf_counter()
    for v in values:
        redact_mod.register_secret(v)
    new_us = (time.perf_counter() - t0) / max(size, 1) * 1e6
    known = values[len(values) // 2]
    known_us = statistics.median(_per_call(lambda: redact_mod.register_secret(known), 20_000) for _ in range(runs))
    short_us = statistics.median(_per_call(lambda: redact_mod.redact(BODY_401), 2_000) for _ in range(runs))
    long_us = statistics.median(_per_call(lambda: redact_mod.redact(BODY_2K), 500) for _ in range(runs))
    return new_us, known_us, short_us, long_us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print("| secrets | register new µs | register known µs | redact 401 body µs | redact 2 kB body µs |")
    print("|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        new_us, known_us, short_us, long_us = _measure(size, args.runs)
        print(f"| {size:,} | {new_us:.2f} | {known_us:.2f} | {short_us:.1f} | {long_us:.1f} |")


if __name__ == "__main__":
    main()
