"""``arun serve``: an OpenAI- and Anthropic-compatible gateway over the manager and policy layers.

::

    arun serve --demo --port 8000             # over the built-in simulator, a demo key printed
    arun serve --config gateway.yaml          # real providers (docs/gateway.example.yaml)
    arun keys create --tenant default --name ci --models gpt-4o --rpm 60 --budget 5.00
    arun spend --key <id>

Modules: ``config`` (gateway.yaml), ``app`` (the web application, per-request bookkeeping,
graceful shutdown), ``openai_routes`` / ``anthropic_routes``, ``translate`` (wire shapes <->
entities), ``streaming`` (committed streams as SSE), ``errors`` (Invoke*Error -> status and
body), ``auth`` (virtual keys), ``budgets``, ``spend``, ``cache``, ``metrics``, ``cli``,
``demo``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from arun.gateway.app import Gateway, create_app, serve
    from arun.gateway.config import GatewayConfig, load_config

__all__ = ["Gateway", "GatewayConfig", "create_app", "load_config", "serve"]


def __getattr__(name: str) -> Any:
    if name in ("Gateway", "create_app", "serve"):
        from arun.gateway import app

        return getattr(app, name)
    if name in ("GatewayConfig", "load_config"):
        from arun.gateway import config

        return getattr(config, name)
    raise AttributeError(name)
