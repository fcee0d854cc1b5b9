"""``arun serve``, ``arun keys create|list|revoke`` and ``arun spend``, wired in by ``register(subparsers)``.

::

    arun serve --demo [--port 8000]                     # the built-in simulator behind the gateway
    arun serve --config gateway.yaml [--port N] [--workers 4]
    arun keys create --tenant default --name ci [--models gpt-4o,openai/gpt-4o-mini] [--rpm 60] [--tpm 100000]
                     [--budget 5.00] [--currency USD]   # prints the key once
    arun keys list [--tenant T]
    arun keys revoke KEY_ID
    arun spend [--key ID] [--tenant T] [--since 1h|2026-12-01] [--limit 50] [--summary]

Every command takes ``--store URL`` (default ``$ARUN_STORE_URL`` or ``~/.arun/arun.db``) and
``--json``.  Keys are stored hashed; only ``keys create`` ever prints one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from arun.manager.cli import _out  # --json or the lines, as every manager command prints

__all__ = ["register"]


def register(subparsers: Any) -> None:
    s = subparsers.add_parser("serve", help="serve the OpenAI/Anthropic-compatible gateway (arun serve --help)")
    s.add_argument("--config", default=None, help="gateway.yaml (see docs/gateway.example.yaml)")
    s.add_argument("--demo", action="store_true", help="serve over the built-in simulator, with a demo key")
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--store", default=None, help="store URL (overrides the config)")
    s.add_argument("--state", default=None, help="state URL (overrides the config)")
    s.add_argument("--workers", type=int, default=None, help="processes sharing the port (needs a redis:// state)")
    s.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=_serve)

    k = subparsers.add_parser("keys", help="the gateway's virtual keys")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    p = ks.add_parser("create", help="create a key (printed once; stored hashed)")
    p.add_argument("--tenant", default="default")
    p.add_argument("--name", default="")
    p.add_argument("--models", default=None, help="comma-separated model names (aliases or provider/model); default all")
    p.add_argument("--rpm", type=int, default=None)
    p.add_argument("--tpm", type=int, default=None)
    p.add_argument("--budget", default=None, help="in currency, e.g. 5.00")
    p.add_argument("--currency", default="USD")
    _common(p)
    p.set_defaults(func=_sync(_keys_create))
    p = ks.add_parser("list", help="keys with their limits, budget and spend (never the keys)")
    p.add_argument("--tenant", default=None)
    _common(p)
    p.set_defaults(func=_sync(_keys_list))
    p = ks.add_parser("revoke", help="revoke a key (gateways stop accepting it within their key cache TTL)")
    p.add_argument("key_id")
    _common(p)
    p.set_defaults(func=_sync(_keys_revoke))

    sp = subparsers.add_parser("spend", help="the gateway's spend log")
    sp.add_argument("--key", default=None, help="a key id")
    sp.add_argument("--tenant", default=None)
    sp.add_argument("--since", default=None, help="ISO date/time, or 30m / 12h / 7d ago")
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--summary", action="store_true", help="totals per key, provider and model")
    _common(sp)
    sp.set_defaults(func=_sync(_spend))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store URL (sqlite:///path.db, postgresql://...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _sync(fn: Callable[[Any, argparse.Namespace], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from arun.errors import ArunError
        from arun.manager.core import default_store_url
        from arun.manager.store import open_store

        async def go() -> int:
            store = await open_store(args.store or default_store_url())
            try:
                return await fn(store, args)
            finally:
                await store.close()

        try:
            return asyncio.run(go())
        except (ArunError, ValueError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2

    return run


async def _keys_create(store: Any, args: argparse.Namespace) -> int:
    from arun.gateway.auth import KeyRing

    if await store.get_tenant(args.tenant) is None:
        print(f"error: tenant {args.tenant!r} not found (arun tenants list; the gateway creates its configured tenant)",
              file=sys.stderr)  # fmt: skip
        return 2
    budget = None
    if args.budget is not None:
        try:
            budget = Decimal(args.budget)
        except InvalidOperation:
            print("error: --budget must be an amount like 5.00", file=sys.stderr)
            return 2
    for name, value in (("rpm", args.rpm), ("tpm", args.tpm)):
        if value is not None and value < 1:
            print(f"error: --{name} must be a positive integer", file=sys.stderr)
            return 2
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    key, rec = await KeyRing(store).create(args.tenant, name=args.name, models=models, rpm=args.rpm, tpm=args.tpm,
                                           budget=budget, currency=args.currency)  # fmt: skip
    _out(args, {"id": rec.id, "key": key, "tenant": rec.tenant_id, "name": rec.name},
         [f"created key {rec.id} ({rec.name or 'unnamed'}) for tenant {rec.tenant_id}", f"  {key}",
          "  (shown once: the store keeps only its SHA-256)"])  # fmt: skip
    return 0


def _key_row(rec: Any) -> dict[str, Any]:
    from arun.gateway.auth import from_e7

    return {
        "id": rec.id, "name": rec.name, "tenant": rec.tenant_id, "hint": rec.key_hint, "models": rec.models,
        "rpm": rec.rpm, "tpm": rec.tpm, "budget": str(from_e7(rec.budget_e7)) if rec.budget_e7 is not None else None,
        "spent": str(from_e7(rec.spent_e7)), "currency": rec.currency,
        "revoked_at": rec.revoked_at.isoformat() if rec.revoked_at else None, "created_at": rec.created_at,
    }  # fmt: skip


async def _keys_list(store: Any, args: argparse.Namespace) -> int:
    rows = [_key_row(r) for r in await store.list_virtual_keys(args.tenant)]
    lines = [
        f"{r['id']}  {r['hint']:<14} {r['name'] or '-':<12} tenant={r['tenant']} models={','.join(r['models']) if r['models'] else '*'}"
        f" rpm={r['rpm'] or '-'} tpm={r['tpm'] or '-'} budget={r['budget'] or '-'} spent={r['spent']} {r['currency']}"
        + ("  REVOKED" if r["revoked_at"] else "")
        for r in rows
    ] or ["(no keys)"]
    _out(args, rows, lines)
    return 0


async def _keys_revoke(store: Any, args: argparse.Namespace) -> int:
    ok = await store.revoke_virtual_key(args.key_id)
    _out(args, {"revoked": ok}, ["revoked" if ok else "no such key, or already revoked"])
    return 0 if ok else 1


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"s": timedelta(seconds=n), "m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]
        return datetime.now(timezone.utc) - delta
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


async def _spend(store: Any, args: argparse.Namespace) -> int:
    from arun.gateway.auth import from_e7

    since = _since(args.since)
    if args.summary:
        rows = await store.spend_summary(key_id=args.key, tenant_id=args.tenant, since=since)
        for r in rows:
            r["price"] = str(from_e7(r.pop("price_e7") or 0))
        lines = [
            f"{r['key_id']}  {r['provider'] or '-'}/{r['model'] or '-'}  requests={r['requests']} failed={r['failed']}"
            f" cache_hits={r['cache_hits']} tokens={r['prompt_tokens']}+{r['completion_tokens']} price={r['price']} {r['currency'] or ''}"
            for r in rows
        ] or ["(no spend)"]
        _out(args, rows, lines)
        return 0
    recs = await store.list_spend(key_id=args.key, tenant_id=args.tenant, since=since, limit=args.limit)
    data = []
    for r in recs:
        data.append({
            "id": r.id, "at": r.created_at, "key": r.key_id, "tenant": r.tenant_id, "route": r.route, "provider": r.provider,
            "model": r.model, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "price": str(from_e7(r.price_e7)), "currency": r.currency, "latency_ms": r.latency_ms, "ttft_ms": r.ttft_ms,
            "outcome": r.outcome, "status": r.status, "error": r.error, "cache_hit": r.cache_hit, "stream": r.stream,
        })  # fmt: skip
    lines = [
        f"{d['at']:%Y-%m-%d %H:%M:%S}  {d['key']}  {d['route']:<24} {d['provider'] or '-'}/{d['model'] or '-'}"
        f"  {d['prompt_tokens']}+{d['completion_tokens']} tok  {d['price']} {d['currency'] or ''}  {d['latency_ms']} ms"
        f"  {d['outcome']} {d['status']}" + ("  cache" if d["cache_hit"] else "") + ("  stream" if d["stream"] else "")
        for d in data
    ] or ["(no spend)"]
    total = sum((Decimal(d["price"]) for d in data), Decimal(0))
    if data and not args.json:
        lines.append(f"{len(data)} requests, {total} total")
    _out(args, data, lines)
    return 0


# -- serve ----------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from arun.errors import ArunError
    from arun.gateway.config import GatewayConfig, load_config

    if args.demo and args.config:
        print("error: --demo and --config are exclusive", file=sys.stderr)
        return 2
    try:
        if args.demo:
            from arun.gateway.demo import run_demo

            return run_demo(host=args.host or "127.0.0.1", port=8000 if args.port is None else args.port,
                            store=args.store, state=args.state)  # fmt: skip
        config = load_config(args.config) if args.config else GatewayConfig()
        updates = {k: v for k, v in (("host", args.host), ("port", args.port), ("store", args.store),
                                     ("state", args.state), ("workers", args.workers)) if v is not None}  # fmt: skip
        if updates:
            config = config.model_copy(update=updates)
        if config.workers > 1 and not args.reuse_port:
            return _supervise(args, config)
        if args.reuse_port:
            config = config.model_copy(update={"workers": 2})  # bind with SO_REUSEPORT beside the siblings
        from arun.gateway.app import serve

        configure_logging()
        return serve(config, announce=lambda port: print(f"READY http://{config.host}:{port}", flush=True))
    except ArunError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def configure_logging() -> None:
    """Log lines (the access log's JSON lines included) to stderr at ``$ARUN_LOG_LEVEL`` (INFO).

    The event loop only puts records on a bounded queue; a thread writes them.  A slow or full
    stderr (a pipe nobody reads) then costs dropped lines, never a blocked gateway.
    """
    import logging
    import logging.handlers
    import queue

    class _Dropping(logging.handlers.QueueHandler):
        dropped = 0

        def enqueue(self, record: logging.LogRecord) -> None:
            try:
                self.queue.put_nowait(record)
            except queue.Full:
                _Dropping.dropped += 1

    level = getattr(logging, os.environ.get("ARUN_LOG_LEVEL", "INFO").upper(), logging.INFO)
    q: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=10_000)
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(logging.Formatter("%(message)s"))
    listener = logging.handlers.QueueListener(q, out, respect_handler_level=False)
    listener.start()
    import atexit

    atexit.register(listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [_Dropping(q)]
    root.setLevel(level)


def _supervise(args: argparse.Namespace, config: Any) -> int:
    """``--workers N``: N processes on one port (SO_REUSEPORT), sharing limits, budgets and state through Redis."""
    import signal

    if not config.state.startswith(("redis://", "rediss://", "unix://")):
        print("error: --workers > 1 needs a shared state (--state redis://...): otherwise every worker would apply"
              " each key's limits and budget on its own", file=sys.stderr)  # fmt: skip
        return 2
    if config.port == 0:
        print("error: --workers > 1 needs a fixed --port", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "arun.cli", "serve", "--reuse-port", "--host", config.host, "--port", str(config.port),
           "--state", config.state]  # fmt: skip
    if args.config:
        cmd += ["--config", args.config]
    if config.store:
        cmd += ["--store", config.store]
    procs = [subprocess.Popen(cmd, env=dict(os.environ)) for _ in range(config.workers)]

    def forward(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [p.wait() for p in procs]
    return max(codes) if codes else 0
