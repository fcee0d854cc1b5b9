"""The manager CLI commands (``register(subparsers)``) and ModelManager.open on the embedded store."""

from __future__ import annotations

import argparse
import json
import logging

from arun.manager import ModelManager
from arun.manager.cli import main, register


def test_register_adds_commands():
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["lb", "status", "t", "openai", "llm", "gpt-4o-mini", "--store", "sqlite://", "--state", "memory://"])
    assert args.store == "sqlite://" and callable(args.func)


def test_cli_tenants_credentials_lb(tmp_path, capsys):
    store = ["--store", f"sqlite:///{tmp_path}/cli.db", "--state", "memory://"]
    assert main(["tenants", "create", "acme", "--id", "t-1", *store]) == 0
    assert main(["tenants", "list", "--json", *store]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("["):])[0]["id"] == "t-1"
    key = "sk-cli-0123456789abcd"
    assert main(["credentials", "add", "t-1", "openai", "--set", f"openai_api_key={key}", "--set", "openai_api_base=http://127.0.0.1:9", "--no-validate", *store]) == 0
    assert main(["credentials", "list", "t-1", "openai", *store]) == 0
    out = capsys.readouterr().out
    assert key not in out and "sk-cli************cd" in out and "[active, custom]" in out
    assert main(["lb", "status", "t-1", "openai", "llm", "gpt-4o-mini", *store]) == 0
    assert "no load-balancing configs" in capsys.readouterr().out
    assert main(["credentials", "delete", "t-1", "openai", *store]) == 0
    assert main(["credentials", "list", "t-1", "nope", "--json", *store]) == 0
    assert main(["tenants", "list", *store]) == 0
    assert main(["credentials", "list", "no-such-tenant", *store]) == 2
    assert "TenantNotFoundError" in capsys.readouterr().err


async def test_open_embedded_default_and_no_secret_in_logs(tmp_path, upstream, caplog, monkeypatch):
    monkeypatch.delenv("ARUN_MASTER_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    key = "sk-logcheck-0123456789"
    url = f"sqlite:///{tmp_path}/home/.arun/arun.db"
    async with ModelManager.open(url) as m:
        t = await m.create_tenant("acme")
        await m.save_provider_credentials(t.id, "openai", {"openai_api_key": key, "openai_api_base": upstream.url})
        inst = await m.get_model_instance(t.id, "openai", "llm", "gpt-4o-mini")
        assert key not in repr(inst) and key not in repr(m) and key not in str(inst.credentials)
    assert (tmp_path / "home/.arun/arun.db.key").exists()
    # reopen: the generated master key still decrypts
    m2 = await ModelManager.open(url)
    try:
        assert (await m2.get_provider_credentials(t.id, "openai", obfuscated=False))["openai_api_key"] == key
    finally:
        await m2.aclose()
    assert key not in caplog.text


def test_cli_lb_status_policy_view(tmp_path, capsys):
    store = ["--store", f"sqlite:///{tmp_path}/cli.db", "--state", "memory://"]
    assert main(["tenants", "create", "acme", "--id", "t-1", *store]) == 0
    key = "sk-cli-0123456789abcd"
    assert main(["credentials", "add", "t-1", "openai", "--set", f"openai_api_key={key}", "--set", "openai_api_base=http://127.0.0.1:9",
                 "--set", "rpm=5", "--no-validate", *store]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["lb", "status", "t-1", "openai", "llm", "gpt-4o-mini", "--policy", *store]) == 0
    out = capsys.readouterr().out
    assert "openai/gpt-4o-mini" in out and "healthy" in out and "left 5 req" in out and key not in out
    assert main(["lb", "status", "t-1", "openai", "llm", "gpt-4o-mini", "--policy", "--json", *store]) == 0
    out = capsys.readouterr().out
    (row,) = json.loads(out[out.index("["):])
    assert row["healthy"] and row["name"] == "current" and row["limit"]["rpm"] == 5
