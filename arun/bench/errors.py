"""The one error the bench raises itself: a setting the user must fix."""

from __future__ import annotations

from arun.errors import ArunUsageError

__all__ = ["BenchUsageError"]


class BenchUsageError(ArunUsageError):
    """A bad argument, file or line; the message names it (``--dataset x.jsonl line 3: ...``)."""
