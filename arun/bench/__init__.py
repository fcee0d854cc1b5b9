"""``arun bench``: load-test any provider, credential pool or gateway arun can call.

Modules: :mod:`~arun.bench.cli` (arguments), :mod:`~arun.bench.runner` (one run),
:mod:`~arun.bench.targets` (runtime, manager or simulator; credentials),
:mod:`~arun.bench.load` (closed and open loop, per-request measurement),
:mod:`~arun.bench.metrics` (pure arithmetic: percentiles, throughput, goodput),
:mod:`~arun.bench.datasets`, :mod:`~arun.bench.estimate` (cost before sending),
:mod:`~arun.bench.report` (table, legend, JSON, plot).
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from arun.bench.cli import main as cli_main

    return cli_main(argv)
