"""The cost estimate printed before a run, checked against arun's pricing, and when it asks."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from arun import ModelRuntime
from arun.bench.errors import BenchUsageError
from arun.bench.estimate import Estimate, RunDeclined, confirm_run, estimate_cost, format_money
from arun.bench.targets import endpoint_urls, is_local_url, load_credentials
from arun.entities.model import PriceType


async def test_estimate_matches_the_pricing_module() -> None:
    async with ModelRuntime() as rt:
        llm = rt.get_model_instance("openai", "llm")
        schema = await llm.get_model_schema("gpt-4o")
        est = estimate_cost(schema, requests=101, input_tokens=128, output_tokens=128)
        # gpt-4o: 2.50 and 10.00 per million tokens; 12,928 tokens each way
        assert est.cost == Decimal("0.1616000") and est.currency == "USD" and est.priced and est.paid
        price_in = await llm.get_price("gpt-4o", {}, PriceType.INPUT, 101 * 128)
        price_out = await llm.get_price("gpt-4o", {}, PriceType.OUTPUT, 101 * 128)
        assert est.cost == price_in.total_amount + price_out.total_amount
        assert est.per_request == (await llm.get_price("gpt-4o", {}, PriceType.INPUT, 128)).total_amount + (
            await llm.get_price("gpt-4o", {}, PriceType.OUTPUT, 128)
        ).total_amount
        assert (est.input_tokens, est.output_tokens) == (12928, 12928)
        emb = rt.get_model_instance("openai", "text-embedding")
        e = estimate_cost(await emb.get_model_schema("text-embedding-3-small"), requests=10, input_tokens=1000, output_tokens=0)
        assert e.cost == (await emb.get_price("text-embedding-3-small", {}, PriceType.INPUT, 10_000)).total_amount > 0


def test_unpriced_models_and_money_format() -> None:
    free = estimate_cost(None, requests=1000, input_tokens=10, output_tokens=10)
    assert free.cost == 0 and not free.priced and not free.paid
    assert "no price configured" in free.describe()
    assert format_money(Decimal("0.0043344")) == "0.0043344" and format_money(Decimal("1.5000000")) == "1.5"
    assert format_money(Decimal("0E-7")) == "0"


async def test_a_time_bounded_closed_loop_is_priced_per_request() -> None:
    timed = estimate_cost(await _gpt4o(), requests=None, input_tokens=128, output_tokens=128)
    assert timed.requests is None and timed.cost == timed.per_request == Decimal("0.0016000") and timed.paid
    assert timed.describe() == "per request, 128 input + up to 128 output tokens: 0.0016 USD per request (the run is bounded by time only)"


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _gpt4o() -> Any:
    async with ModelRuntime() as rt:
        return await rt.get_model_instance("openai", "llm").get_model_schema("gpt-4o")


async def _paid() -> Estimate:
    return estimate_cost(await _gpt4o(), requests=10, input_tokens=10, output_tokens=10)


async def test_confirmation_rules() -> None:
    est = await _paid()
    out = io.StringIO()

    def never(prompt: str) -> str:
        raise AssertionError("asked")

    confirm_run(est, where="w", local=True, yes=False, stdin=io.StringIO(), out=out, ask=never)
    confirm_run(est, where="w", local=False, yes=True, stdin=io.StringIO(), out=out, ask=never)
    assert out.getvalue().count("estimate for w: 10 requests, 100 input + up to 100 output tokens") == 2
    with pytest.raises(BenchUsageError, match="pass --yes"):
        confirm_run(est, where="w", local=False, yes=False, stdin=io.StringIO(), out=out)
    with pytest.raises(RunDeclined, match="nothing was sent"):
        confirm_run(est, where="w", local=False, yes=False, stdin=_TTY(), out=out, ask=lambda p: "n")
    asked: list[str] = []
    confirm_run(est, where="w", local=False, yes=False, stdin=_TTY(), out=out,
                ask=lambda p: asked.append(p) or "y")  # fmt: skip
    assert asked == ["send these requests? [y/N] "]
    free = estimate_cost(None, requests=10, input_tokens=10, output_tokens=10)
    confirm_run(free, where="w", local=False, yes=False, stdin=io.StringIO(), out=out, ask=never)


def test_local_addresses() -> None:
    for url in ("http://127.0.0.1:8000/v1", "http://127.9.9.9", "http://[::1]:11434", "http://localhost:8000", "https://LOCALHOST./v1"):
        assert is_local_url(url), url
    for url in ("https://api.openai.com/v1", "http://10.0.0.5:8000", "http://[::2]", "http://localhost.example.com", "http://0.0.0.0"):
        assert not is_local_url(url), url
    assert endpoint_urls({"api_key": "sk-x", "endpoint_url": "http://h/v1", "n": 3}) == ["http://h/v1"]


def test_credentials_from_file_and_environment(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "creds.yaml"
    path.write_text("endpoint_url: http://127.0.0.1:8000/v1\napi_key: from-file\n")
    env = {"ARUN_BENCH_CRED_API_KEY": "from-env", "ARUN_BENCH_CRED_MODE": "chat", "OTHER": "x"}
    assert load_credentials(str(path), env) == {"endpoint_url": "http://127.0.0.1:8000/v1", "api_key": "from-env", "mode": "chat"}
    path.write_text('{"api_key": "json works too"}')
    assert load_credentials(str(path), {}) == {"api_key": "json works too"}
    path.write_text("- a\n- b\n")
    with pytest.raises(BenchUsageError, match="expected a mapping of credential fields"):
        load_credentials(str(path), {})
    path.write_text("api_key: [unclosed\n")
    with pytest.raises(BenchUsageError, match=r"creds.yaml line \d+: not YAML or JSON"):
        load_credentials(str(path), {})
    with pytest.raises(BenchUsageError, match="no such file"):
        load_credentials(str(path) + ".missing", {})
