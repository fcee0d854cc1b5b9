"""Ordered, bounded-concurrency fan-out shared by the model types that batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["batched", "gather_bounded"]


def batched(items: Sequence[T], size: int) -> list[Sequence[T]]:
    size = max(1, int(size))
    return [items[i : i + size] for i in range(0, len(items), size)]


async def gather_bounded(
    jobs: Sequence[Callable[[], Awaitable[R]]],
    limit: int,
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """Run ``jobs`` with at most ``limit`` in flight; results in job order; the first error cancels the rest."""
    if len(jobs) == 1:
        result = await jobs[0]()
        if on_done:
            on_done(0)
        return [result]
    results: list[R] = [None] * len(jobs)  # type: ignore[list-item]
    queue = iter(range(len(jobs)))

    async def worker() -> None:
        for index in queue:
            results[index] = await jobs[index]()
            if on_done:
                on_done(index)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(limit, len(jobs))))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return results
