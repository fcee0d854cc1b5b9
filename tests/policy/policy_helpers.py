"""Shared helpers of the policy tests (imported by module name; no conftest needed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arun import UserPromptMessage
from arun.policy.retry import RetryPolicy
from arun.policy.router import Cooldowns, CredentialConfig, Target

KEYS = ["sk-a", "sk-b", "sk-c"]
CHAT = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"


def messages(text: str = "hello there") -> list[Any]:
    return [UserPromptMessage(content=text)]


def expected(text: str = "hello there") -> str:
    return "Echo: " + text


def openai_target(url: str, keys: list[str] = KEYS, *, strategy: Any = "round_robin", limits: Any = None,
                  model: str = "gpt-4o-mini", weights: list[float] | None = None) -> Target:
    configs = [
        CredentialConfig(k, {"openai_api_key": k, "openai_api_base": url}, weight=(weights[i] if weights else 1.0), limits=limits)
        for i, k in enumerate(keys)
    ]
    return Target("openai", model, configs, strategy=strategy)


def anthropic_target(url: str, keys: Sequence[str] = ("ant-a",), model: str = "claude-3-5-haiku-20241022") -> Target:
    configs = [CredentialConfig(k, {"anthropic_api_key": k, "anthropic_api_url": url}) for k in keys]
    return Target("anthropic", model, configs)


FAST = RetryPolicy(base_delay=0.001, max_delay=0.005)
SHORT_COOL = Cooldowns(rate_limit=0.05, auth=0.05, connection=0.05)


class FakeSleep:
    """Records sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
