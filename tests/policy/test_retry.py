"""Retry arithmetic and budgets: Retry-After honoured up to a cap, backoff with full jitter, x-should-retry,
separate budgets for retries and rotations.  Sleeps are recorded, never slept."""

from __future__ import annotations

import random

import pytest
from policy_helpers import CHAT, FakeSleep, expected, messages, openai_target

from arun import ModelRuntime
from arun.errors import (
    InvokeAuthorizationError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeContextLengthExceededError,
    InvokeError,
    InvokeQuotaExhaustedError,
    InvokeRateLimitError,
    InvokeServerUnavailableError,
    InvokeTimeoutError,
)
from arun.policy.retry import RetryPolicy, is_retryable, is_rotatable, should_retry_header
from arun.policy.router import Cooldowns, PolicyRouter
from arun.testing import Fault, UpstreamSimulator


def _err(cls: type[InvokeError], status: int | None = None, retry_after: float | None = None, headers=None) -> InvokeError:
    e = cls("x", status=status, retry_after=retry_after)
    if headers is not None:
        e.headers = headers
    return e


# -- arithmetic -------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_up_to_max_delay() -> None:
    p = RetryPolicy(base_delay=0.5, max_delay=8.0, rng=lambda: 1.0)
    assert [p.backoff(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert RetryPolicy(rng=lambda: 0.0).backoff(3) == 0.0


def test_backoff_full_jitter_stays_in_bounds() -> None:
    rng = random.Random(7)
    p = RetryPolicy(base_delay=0.5, max_delay=8.0, rng=rng.random)
    for n in range(8):
        ceiling = min(8.0, 0.5 * 2**n)
        samples = [p.backoff(n) for _ in range(300)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > 0.8 * ceiling  # really spread over the whole range
        assert min(samples) < 0.2 * ceiling


def test_decide_retry_after_within_cap_is_the_delay() -> None:
    p = RetryPolicy(retry_after_cap=60.0, rng=lambda: 0.5)
    d = p.decide(_err(InvokeRateLimitError, 429, 2.5), 0)
    assert (d.retry, d.rotate, d.exclude, d.delay, d.reason) == (True, True, False, 2.5, "retry-after")


def test_decide_retry_after_beyond_cap_rotates_and_excludes() -> None:
    p = RetryPolicy(retry_after_cap=60.0)
    d = p.decide(_err(InvokeRateLimitError, 429, 61.0), 0)
    assert (d.retry, d.rotate, d.exclude) == (False, True, True)


def test_decide_backoff_without_hint() -> None:
    p = RetryPolicy(base_delay=1.0, max_delay=8.0, rng=lambda: 0.25)
    assert p.decide(_err(InvokeServerUnavailableError, 503), 0).delay == 0.25
    assert p.decide(_err(InvokeServerUnavailableError, 503), 2).delay == 1.0
    assert p.decide(_err(InvokeServerUnavailableError, 503), 9).delay == 2.0


@pytest.mark.parametrize(
    "error, retry, rotate",
    [
        (_err(InvokeConnectionError), True, True),
        (_err(InvokeTimeoutError, 408), True, True),
        (_err(InvokeServerUnavailableError, 409), True, True),
        (_err(InvokeRateLimitError, 429), True, True),
        (_err(InvokeServerUnavailableError, 500), True, True),
        (_err(InvokeServerUnavailableError, 529), True, True),
        (_err(InvokeError, 529), True, True),
        (_err(InvokeQuotaExhaustedError, 429), False, True),
        (_err(InvokeAuthorizationError, 401), False, True),
        (_err(InvokeBadRequestError, 400), False, False),
        (_err(InvokeContextLengthExceededError, 400), False, False),
        (_err(InvokeServerUnavailableError, 503, headers={"x-should-retry": "false"}), False, True),
        (_err(InvokeBadRequestError, 400, headers={"x-should-retry": "true"}), True, False),
    ],
)
def test_retryable_and_rotatable(error: InvokeError, retry: bool, rotate: bool) -> None:
    assert is_retryable(error) is retry
    assert is_rotatable(error) is rotate


def test_should_retry_header_values() -> None:
    assert should_retry_header(_err(InvokeError, headers={"x-should-retry": "TRUE"})) is True
    assert should_retry_header(_err(InvokeError, headers={"x-should-retry": "false"})) is False
    assert should_retry_header(_err(InvokeError, headers={"x-should-retry": "maybe"})) is None
    assert should_retry_header(_err(InvokeError)) is None


# -- the loop against the simulator ---------------------------------------------------------------


async def _router(rt: ModelRuntime, sleep: FakeSleep, **policy: object) -> PolicyRouter:
    return PolicyRouter(rt, retry=RetryPolicy(**policy), sleep=sleep, cooldowns=Cooldowns(60, 10, 10))  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True])
async def test_retry_after_is_honoured_on_the_same_credential(stream: bool) -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=429, retry_after=1.5), path=CHAT, times=2)
        router = await _router(rt, sleep, max_retries=2)
        out = await router.invoke(openai_target(sim.url, ["sk-a"]), messages(), stream=stream)
        result = out if not stream else await out.collect()
        assert result.message.content == expected()
        assert sleep.calls == [1.5, 1.5]
        assert sim.stats.by_key["sk-a"] == 3
        assert rt.http.acquired_connections() == 0


async def test_retry_budget_spent_raises_the_last_error() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=503), path=CHAT, times=3)
        router = await _router(rt, sleep, max_retries=1, base_delay=1.0, rng=lambda: 0.5)
        with pytest.raises(InvokeServerUnavailableError) as info:
            await router.invoke(openai_target(sim.url, ["sk-a"]), messages(), stream=False)
        assert sleep.calls == [0.5]  # one backoff: uniform(0, 1.0) with rng 0.5
        assert sim.stats.total == 2
        trace = info.value.trace  # type: ignore[attr-defined]
        assert trace.retries == 1 and trace.attempts == 2 and trace.outcome == "error"


async def test_backoff_grows_between_retries() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=500), path=CHAT, times=3)
        router = await _router(rt, sleep, max_retries=3, base_delay=1.0, max_delay=3.0, rng=lambda: 1.0)
        result = await router.invoke(openai_target(sim.url, ["sk-a"]), messages(), stream=False)
        assert result.message.content == expected()
        assert sleep.calls == [1.0, 2.0, 3.0]


async def test_retry_after_beyond_cap_is_not_retried_on_that_credential() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=429, retry_after=120), path=CHAT, key="sk-a", times=None)
        router = await _router(rt, sleep, retry_after_cap=60.0)
        # one credential: fail at once, no sleep
        with pytest.raises(InvokeRateLimitError):
            await router.invoke(openai_target(sim.url, ["sk-a"]), messages(), stream=False)
        assert sleep.calls == [] and sim.stats.by_key["sk-a"] == 1
        # two credentials: rotate to the other one, no sleep
        traces = []
        router = PolicyRouter(rt, retry=RetryPolicy(retry_after_cap=60.0), sleep=sleep, on_trace=traces.append)
        tgt = openai_target(sim.url, ["sk-a", "sk-b"])
        result = await router.invoke(tgt, messages(), stream=False)
        assert result.message.content == expected()
        assert sleep.calls == []
        assert traces[-1].config == "sk-b"
        reasons = [e.detail.get("reason") for e in traces[-1].events if e.kind == "skip"]
        assert "retry-after beyond cap" in reasons
        status = {s.config_id: s for s in await router.states(tgt)}
        assert not status["sk-a"].healthy and status["sk-a"].cooling_remaining > 60  # Retry-After extends the cooldown
        assert "RateLimit" in (status["sk-a"].cooling_reason or "")


async def test_rotation_budget_is_separate_from_retry_budget() -> None:
    """Dead keys are rotated past without eating the retries of the healthy one (Bifrost #5876)."""
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=503), path=CHAT, key="sk-c", times=1)
        traces = []
        router = PolicyRouter(rt, retry=RetryPolicy(max_retries=1, max_rotations=2, rng=lambda: 0.0), sleep=sleep,
                              on_trace=traces.append)
        tgt = openai_target(sim.url, ["invalid-1", "invalid-2", "sk-c"])
        result = await router.invoke(tgt, messages(), stream=False)
        assert result.message.content == expected()
        t = traces[-1]
        assert (t.rotations, t.retries, t.attempts) == (2, 1, 4)
        assert sim.stats.by_key["sk-c"] == 2


async def test_no_rotation_budget_means_auth_error_surfaces() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        router = await _router(rt, sleep, max_rotations=0, max_retries=5)
        with pytest.raises(InvokeAuthorizationError):
            await router.invoke(openai_target(sim.url, ["invalid-1", "sk-b"]), messages(), stream=False)
        assert sim.stats.total == 1 and sleep.calls == []


async def test_x_should_retry_false_stops_retries() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=503, headers={"x-should-retry": "false"}), path=CHAT)
        router = await _router(rt, sleep, max_retries=3)
        with pytest.raises(InvokeServerUnavailableError) as info:
            await router.invoke(openai_target(sim.url, ["sk-a"]), messages(), stream=False)
        assert info.value.headers["x-should-retry"] == "false"
        assert sim.stats.total == 1 and sleep.calls == []


async def test_x_should_retry_true_retries_a_bad_request() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=400, headers={"x-should-retry": "true"}), path=CHAT)
        router = await _router(rt, sleep, max_retries=1, rng=lambda: 0.0)
        result = await router.invoke(openai_target(sim.url, ["sk-a"]), messages(), stream=False)
        assert result.message.content == expected() and sim.stats.total == 2


async def test_bad_request_is_neither_retried_nor_rotated() -> None:
    sleep = FakeSleep()
    async with UpstreamSimulator() as sim, ModelRuntime() as rt:
        sim.faults.push(Fault(status=400, error_type="context_length_exceeded"), path=CHAT)
        router = await _router(rt, sleep)
        with pytest.raises(InvokeContextLengthExceededError):
            await router.invoke(openai_target(sim.url), messages(), stream=False)
        assert sim.stats.total == 1 and sleep.calls == []
