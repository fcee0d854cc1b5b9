"""What a run will cost before it starts: requests x tokens x the model's prices.

Prices come from the model schema (``AIModelEntity.pricing``) through :mod:`arun.pricing`,
so the estimate is computed exactly like the price of a real call.  Output tokens are
counted at ``--max-tokens`` for every request, which makes the estimate an upper bound
for answers that stop early.  A run against a local address asks for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

from arun.bench.errors import BenchUsageError
from arun.errors import ArunError
from arun.pricing import rates

__all__ = ["Estimate", "estimate_cost", "format_money", "confirm_run", "RunDeclined"]


class RunDeclined(ArunError):
    """The user answered no at the confirmation prompt."""


@dataclass(frozen=True)
class Estimate:
    requests: int | None  # None: a closed loop bounded by time only (cost given per request)
    input_tokens: int  # in total (per request when requests is None)
    output_tokens: int
    cost: Decimal  # in total (per request when requests is None)
    per_request: Decimal
    currency: str
    priced: bool  # the model has a price list

    @property
    def paid(self) -> bool:
        return self.per_request > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": str(self.cost),
            "cost_per_request": str(self.per_request),
            "currency": self.currency,
            "priced": self.priced,
        }

    def describe(self) -> str:
        if not self.priced:
            price = "no price configured for this model"
        elif not self.paid:
            price = "free (the model's prices are 0)"
        elif self.requests is None:
            price = f"{format_money(self.per_request)} {self.currency} per request (the run is bounded by time only)"
        else:
            price = f"up to about {format_money(self.cost)} {self.currency}"
        scope = f"{self.requests:,} requests" if self.requests is not None else "per request"
        tokens = f"{self.input_tokens:,} input" + (f" + up to {self.output_tokens:,} output" if self.output_tokens else "")
        return f"{scope}, {tokens} tokens: {price}"


def format_money(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text if "." not in text else text.rstrip("0").rstrip(".") or "0"


def estimate_cost(schema: Any, *, requests: int | None, input_tokens: int, output_tokens: int) -> Estimate:
    """Cost of ``requests`` calls of ``input_tokens`` in and ``output_tokens`` out each."""
    rate_in, rate_out = rates(schema)
    n = requests if requests is not None else 1
    total_in, total_out = n * input_tokens, n * output_tokens
    return Estimate(
        requests=requests,
        input_tokens=total_in,
        output_tokens=total_out,
        cost=rate_in.total(total_in) + rate_out.total(total_out),
        per_request=rate_in.total(input_tokens) + rate_out.total(output_tokens),
        currency=rate_in.currency,
        priced=getattr(schema, "pricing", None) is not None,
    )


def confirm_run(
    estimate: Estimate,
    *,
    where: str,
    local: bool,
    yes: bool,
    stdin: TextIO,
    out: TextIO,
    ask: Callable[[str], str] = input,
) -> None:
    """Print the estimate; ask before a paid run against a remote address unless ``yes``.
    Without a terminal to ask on, refuse with a message naming ``--yes``."""
    print(f"estimate for {where}: {estimate.describe()}", file=out)
    if local or yes or not estimate.paid:
        return
    if not stdin.isatty():
        raise BenchUsageError(
            f"this run sends paid requests to {where} ({estimate.describe()}); "
            "there is no terminal to confirm on: pass --yes to run it"
        )
    answer = ask("send these requests? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise RunDeclined("not confirmed; nothing was sent")
