"""Operator commands of the manager layer, wired into ``arun`` by ``register(subparsers)``.

::

    arun tenants list | create NAME [--id ID]
    arun credentials add TENANT PROVIDER --set KEY=VALUE ... [--model M --model-type T] [--no-validate]
    arun credentials list TENANT [PROVIDER]
    arun credentials delete TENANT PROVIDER [--model M --model-type T]
    arun lb status TENANT PROVIDER MODEL_TYPE MODEL

Every command takes ``--store URL`` (default ``$ARUN_STORE_URL`` or ``~/.arun/arun.db``)
and ``--state URL`` (default ``$ARUN_STATE_URL`` or ``memory://``).  Secrets are only
ever printed obfuscated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["register", "main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None, help="store URL (sqlite:///path.db, postgresql://...)")
    p.add_argument("--state", default=None, help="state URL (memory://, redis://...)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def register(subparsers: Any) -> None:
    """Add ``tenants``, ``credentials`` and ``lb`` to an argparse sub-parser set."""
    t = subparsers.add_parser("tenants", help="list or create tenants")
    ts = t.add_subparsers(dest="tenants_cmd", required=True)
    p = ts.add_parser("list", help="list tenants")
    _common(p)
    p.set_defaults(func=_sync(_tenants_list))
    p = ts.add_parser("create", help="create a tenant (generates its RSA key pair)")
    p.add_argument("name")
    p.add_argument("--id", default=None)
    _common(p)
    p.set_defaults(func=_sync(_tenants_create))

    c = subparsers.add_parser("credentials", help="provider / model credentials of a tenant")
    cs = c.add_subparsers(dest="credentials_cmd", required=True)
    p = cs.add_parser("add", help="validate and store credentials")
    p.add_argument("tenant")
    p.add_argument("provider")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a credential field (repeat)")
    p.add_argument("--model", default=None)
    p.add_argument("--model-type", default="llm")
    p.add_argument("--no-validate", action="store_true", help="store without calling the provider")
    _common(p)
    p.set_defaults(func=_sync(_credentials_add))
    p = cs.add_parser("list", help="providers with status and obfuscated credentials")
    p.add_argument("tenant")
    p.add_argument("provider", nargs="?")
    _common(p)
    p.set_defaults(func=_sync(_credentials_list))
    p = cs.add_parser("delete", help="delete provider (or model) credentials")
    p.add_argument("tenant")
    p.add_argument("provider")
    p.add_argument("--model", default=None)
    p.add_argument("--model-type", default="llm")
    _common(p)
    p.set_defaults(func=_sync(_credentials_delete))

    lb = subparsers.add_parser("lb", help="load balancing over credential configs")
    ls = lb.add_subparsers(dest="lb_cmd", required=True)
    p = ls.add_parser("status", help="each config of a model: enabled, in cooldown, until when, why")
    p.add_argument("tenant")
    p.add_argument("provider")
    p.add_argument("model_type")
    p.add_argument("model")
    p.add_argument("--policy", action="store_true", default=os.environ.get("ARUN_POLICY", "").lower() in ("1", "true", "yes"),
                   help="show the policy view (health, cooling, in flight, EWMA, remaining limit; also ARUN_POLICY=1)")
    _common(p)
    p.set_defaults(func=_sync(_lb_status))


def _sync(fn: Callable[[Any, Any], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from arun.errors import ArunUsageError, CredentialsValidateFailedError
        from arun.manager import ManagerError, ModelManager
        from arun.manager.store import StoreError

        async def go() -> int:
            kwargs: dict[str, Any] = {}
            if getattr(args, "policy", False):
                from arun.manager import PolicyConfig

                kwargs["policy"] = PolicyConfig()
            async with ModelManager.open(args.store, args.state, **kwargs) as manager:
                return await fn(manager, args)

        try:
            return asyncio.run(go())
        except (ManagerError, ArunUsageError, CredentialsValidateFailedError, StoreError) as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2

    return run


def _out(args: argparse.Namespace, data: Any, lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        for line in lines:
            print(line)


async def _tenants_list(m: Any, args: argparse.Namespace) -> int:
    tenants = await m.list_tenants()
    _out(args, [{"id": t.id, "name": t.name, "created_at": t.created_at} for t in tenants],
         [f"{t.id}  {t.name}" for t in tenants] or ["(no tenants)"])  # fmt: skip
    return 0


async def _tenants_create(m: Any, args: argparse.Namespace) -> int:
    t = await m.create_tenant(args.name, tenant_id=args.id)
    _out(args, {"id": t.id, "name": t.name}, [f"created tenant {t.id}  {t.name}"])
    return 0


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item.split('=')[0]!r}")
        out[key] = value
    return out


async def _credentials_add(m: Any, args: argparse.Namespace) -> int:
    creds = _pairs(args.set)
    if args.model:
        shown = await m.save_model_credentials(args.tenant, args.provider, args.model_type, args.model, creds, validate=not args.no_validate)
    else:
        shown = await m.save_provider_credentials(args.tenant, args.provider, creds, validate=not args.no_validate)
    _out(args, shown, [f"saved {args.provider}" + (f" / {args.model}" if args.model else "")] + [f"  {k}: {v}" for k, v in shown.items()])
    return 0


async def _credentials_list(m: Any, args: argparse.Namespace) -> int:
    rows = []
    for st in await m.list_providers(args.tenant):
        if args.provider and st.provider != args.provider:
            continue
        creds = await m.get_provider_credentials(args.tenant, st.provider)
        models = {}
        for mtype, mname in st.custom_models:
            models[f"{mtype}:{mname}"] = await m.get_model_credentials(args.tenant, st.provider, mtype, mname)
        rows.append({"provider": st.provider, "status": st.status, "using": st.using_provider_type, "credentials": creds,
                     "models": models, "quotas": [q.__dict__ for q in st.quotas]})  # fmt: skip
    lines = []
    for r in rows:
        lines.append(f"{r['provider']}  [{r['status']}, {r['using']}]")
        for k, v in (r["credentials"] or {}).items():
            lines.append(f"  {k}: {v}")
        for name, creds in r["models"].items():
            lines.append(f"  model {name}: " + ", ".join(f"{k}={v}" for k, v in (creds or {}).items()))
        for q in r["quotas"]:
            lines.append(f"  quota {q['quota_type']}: {q['used']}/{q['limit']} {q['unit']}")
    _out(args, rows, lines)
    return 0


async def _credentials_delete(m: Any, args: argparse.Namespace) -> int:
    if args.model:
        ok = await m.delete_model_credentials(args.tenant, args.provider, args.model_type, args.model)
    else:
        ok = await m.delete_provider_credentials(args.tenant, args.provider)
    _out(args, {"deleted": ok}, ["deleted" if ok else "nothing to delete"])
    return 0 if ok else 1


async def _lb_status(m: Any, args: argparse.Namespace) -> int:
    views = await m.lb_states(args.tenant, args.provider, args.model_type, args.model)

    def line(v: Any) -> str:
        state = "ok" if not v.in_cooldown else f"cooling {v.ttl:.0f}s (until {time.strftime('%H:%M:%S', time.localtime(v.until)) if v.until else '?'}): {v.reason or ''}"
        return f"{v.id}  {v.name:<16} {'enabled ' if v.enabled else 'disabled'}  {state}"

    if not getattr(m, "policy_enabled", False):
        _out(args, [v.__dict__ for v in views], [line(v) for v in views] or ["(no load-balancing configs)"])
        return 0
    inst = await m.get_model_instance(args.tenant, args.provider, args.model_type, args.model)
    names = inst.policy.names if inst.policy is not None else {}
    rows = []
    for st in await inst.policy_states():
        row = {k: getattr(st, k) for k in st.__slots__}
        row["name"] = names.get(st.config_id, "")
        if row["limit"] is not None and not isinstance(row["limit"], dict):
            row["limit"] = {k: getattr(row["limit"], k) for k in getattr(row["limit"], "__slots__", ())} or str(row["limit"])
        rows.append(row)

    def pline(r: dict[str, Any]) -> str:
        if r["healthy"]:
            state = "healthy"
        else:
            until = time.strftime("%H:%M:%S", time.localtime(r["cooling_until"])) if r["cooling_until"] else "?"
            state = f"cooling {r['cooling_remaining']:.0f}s (until {until}): {r['cooling_reason'] or ''}"
        ewma = f"{r['ewma_ttft'] * 1000:.0f}ms" if r["ewma_ttft"] is not None else "-"
        lim = r["limit"]
        limit = ""
        if isinstance(lim, dict) and "requests_remaining" in lim:
            limit = f"  left {lim['requests_remaining'] if lim['requests_remaining'] is not None else '-'} req / {lim['tokens_remaining'] if lim['tokens_remaining'] is not None else '-'} tok"
        elif lim is not None:
            limit = f"  limit {lim}"
        return f"{r['target']}  {r['config_id']}  {r['name']:<16} {state}  in-flight {r['in_flight']}  ewma {ewma}{limit}"

    _out(args, rows, [pline(r) for r in rows] or ["(no credential configs)"])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m arun.manager.cli``) until ``arun/cli.py`` wires :func:`register`."""
    parser = argparse.ArgumentParser(prog="arun")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
