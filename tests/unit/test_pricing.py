from decimal import Decimal

import msgspec

from arun.entities.model import AIModelEntity, PriceType
from arun.pricing import get_price


def schema(pricing):
    return msgspec.convert(
        {"model": "m", "label": {"en_US": "m"}, "model_type": "llm", "pricing": pricing}, AIModelEntity, strict=False
    )


GPT4O = schema({"input": "2.50", "output": "10.00", "unit": "0.000001", "currency": "USD"})


def test_dify_worked_example_gpt_4o():
    prompt = get_price(GPT4O, PriceType.INPUT, 1234)
    completion = get_price(GPT4O, PriceType.OUTPUT, 567)
    assert str(prompt.total_amount) == "0.0030850"
    assert str(completion.total_amount) == "0.0056700"
    assert prompt.total_amount + completion.total_amount == Decimal("0.0087550")
    assert prompt.unit_price == Decimal("2.50") and prompt.unit == Decimal("0.000001")


def test_rmb_per_thousand():
    qwen = schema({"input": "0.02", "output": "0.06", "unit": "0.001", "currency": "RMB"})
    price = get_price(qwen, PriceType.INPUT, 1000)
    assert str(price.total_amount) == "0.0200000" and price.currency == "RMB"


def test_half_up_rounding_at_seven_decimals():
    s = schema({"input": "0.15", "unit": "0.000001"})
    # 3 tokens * 0.15e-6 = 0.00000045: half-up gives 0.0000005 where half-even would give 0.0000004
    assert get_price(s, PriceType.INPUT, 3).total_amount == Decimal("0.0000005")


def test_no_pricing_or_no_output_price_is_zero_usd():
    assert get_price(schema(None), PriceType.INPUT, 10).total_amount == 0
    only_input = schema({"input": "1", "unit": "0.001"})
    out = get_price(only_input, PriceType.OUTPUT, 10)
    assert out.total_amount == 0 and out.currency == "USD"


def test_zero_price_keeps_dify_string_form():
    free = schema({"input": "0", "output": "0", "unit": "0.000001"})
    assert str(get_price(free, PriceType.INPUT, 10).total_amount) == "0E-7"


def test_integer_rate_matches_the_decimal_formula_value_and_exponent():
    import random
    from decimal import ROUND_HALF_UP

    from arun.pricing import QUANTUM, Rate

    rng = random.Random(7)
    prices = ["0.15", "2.50", "10.00", "0.0001", "0.00002", "1", "0", "3.3333333", "0.075", "123.456789"]
    units = ["0.000001", "0.001", "1", "0.0000001", "0.01"]
    for p in prices:
        for u in units:
            rate = Rate(Decimal(p), Decimal(u), "USD")
            for tokens in [*range(40), *(rng.randrange(10**8) for _ in range(100))]:
                want = (Decimal(tokens) * Decimal(p) * Decimal(u)).quantize(QUANTUM, rounding=ROUND_HALF_UP)
                got = rate.total(tokens)
                assert got == want and got.as_tuple() == want.as_tuple(), (p, u, tokens)


def test_rates_follow_a_changed_price_list():
    from arun.pricing import rates

    a = schema({"input": "1", "output": "2", "unit": "0.001"})
    b = schema({"input": "3", "output": "4", "unit": "0.001"})
    assert rates(a)[0].total(1000) == Decimal("1.0000000")
    assert rates(b)[1].total(1000) == Decimal("4.0000000")
    assert rates(a) is rates(a)
