"""``arun serve --demo``: the gateway over the built-in upstream simulator, with a demo tenant and key.

No provider key and no network: the simulator speaks OpenAI, Anthropic and Jina on a local
socket; the gateway in front of it is the same code ``arun serve --config`` runs.  The store
is a fresh SQLite file in a temporary folder (unless ``--store`` names one) and the key is
new at every start and printed once.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["demo_config", "run_demo"]

#: client-facing aliases of the demo (every route has a model)
DEMO_ALIASES = {
    "gpt-4o": "openai/gpt-4o",
    "gpt-4o-mini": "openai/gpt-4o-mini",
    "claude-sonnet-4": "anthropic/claude-sonnet-4-20250514",
    "text-embedding-3-small": "openai/text-embedding-3-small",
    "jina-reranker-v2": "jina/jina-reranker-v2-base-multilingual",
    "whisper-1": "openai/whisper-1",
    "tts-1": "openai/tts-1",
    "omni-moderation-latest": "openai/omni-moderation-latest",
}


def demo_config(upstream_url: str, key: str, *, host: str = "127.0.0.1", port: int = 8000, store: str | None = None,
                state: str | None = None, **overrides: Any) -> Any:  # fmt: skip
    """A :class:`GatewayConfig` whose providers are the simulator at ``upstream_url``."""
    from arun.gateway.config import GatewayConfig

    if store is None:
        store = f"sqlite:///{Path(tempfile.mkdtemp(prefix='arun-serve-demo-')) / 'arun.db'}"
    raw: dict[str, Any] = {
        "host": host, "port": port, "store": store, "state": state or "memory://",
        "tenant": {"id": "demo", "name": "demo"},
        "providers": {
            "openai": {"credentials": {"openai_api_key": "sk-demo-upstream-0001", "openai_api_base": upstream_url}},
            "anthropic": {"credentials": {"anthropic_api_key": "sk-ant-demo-upstream", "anthropic_api_url": upstream_url}},
            "jina": {"credentials": {"api_key": "jina_demo_upstream", "base_url": upstream_url + "/v1"}},
        },
        "aliases": dict(DEMO_ALIASES),
        "keys": [{"name": "demo", "key": key}],
    }  # fmt: skip
    raw.update(overrides)
    return GatewayConfig.model_validate(raw)


def _banner(url: str, key: str, sim: str) -> str:
    return f"""
arun gateway (demo) on {url}   upstream simulator on {sim}

  demo key: {key}

  from openai import OpenAI
  client = OpenAI(base_url="{url}/v1", api_key="{key}")
  client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "Hello"}}])

  models: {", ".join(DEMO_ALIASES)} (or provider/model); GET {url}/v1/models
  also:   POST {url}/v1/messages (Anthropic clients), {url}/metrics, {url}/health/ready
  Ctrl-C stops (in-flight streams finish first).
"""


async def _main(host: str, port: int, store: str | None, state: str | None) -> None:
    from arun.gateway.app import Gateway, run_gateway
    from arun.gateway.auth import new_key
    from arun.testing import UpstreamSimulator

    key = new_key()
    async with UpstreamSimulator() as sim:
        cfg = demo_config(sim.url, key, host=host, port=port, store=store, state=state, shutdown_grace=5.0)
        gw = Gateway(cfg)

        def ready(bound: int) -> None:
            print(_banner(f"http://{host}:{bound}", key, sim.url), flush=True)
            print(f"READY http://{host}:{bound}", flush=True)

        await run_gateway(gw, host, port, ready=ready)


def run_demo(*, host: str = "127.0.0.1", port: int = 8000, store: str | None = None, state: str | None = None) -> int:
    from arun.gateway.cli import configure_logging

    configure_logging()
    asyncio.run(_main(host, port, store, state))
    return 0
