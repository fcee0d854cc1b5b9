"""Per-key limits and budgets hold across two ``arun serve`` processes sharing PostgreSQL and Redis.

Two real gateway processes (``python -m arun.cli serve --config``) on their own ports, one
PostgreSQL database (store: keys, credentials, spend log) and one Redis (state: limits,
budgets, cooldowns), in front of the upstream simulator.  200 concurrent requests, half to
each process: a key with ``rpm: 50`` gets exactly 50 answers (the rest 429 with Retry-After),
and a key with a budget of 20 requests' worth ends within one request's price of it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from gateway_harness import REDIS, redis_or_skip
from rawhttp import Raw, request
from store_fixtures import fresh_pg_database

from arun.gateway.auth import from_e7, hash_key, new_key
from arun.manager.store import open_store

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

HELLO = [{"role": "user", "content": "Hello there friend"}]


class Proc:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.err = tempfile.TemporaryFile()  # the access log: a file, read at the end (a pipe could fill up)
        self.p = subprocess.Popen([sys.executable, "-m", "arun.cli", "serve", "--config", str(config), "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=self.err, text=True, env=env)  # fmt: skip
        self.url = ""

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    async def ready(self) -> str:
        assert self.p.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, self.p.stdout.readline)
        if not line.startswith("READY "):
            raise AssertionError(f"gateway did not start: {line!r} {self.stderr()[-2000:]}")
        self.url = line.split(" ", 1)[1].strip()
        return self.url

    async def stop(self) -> tuple[int, str]:
        """SIGTERM, then wait without blocking the event loop (the simulator runs on it)."""
        self.p.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self.p.wait), 60)
        except asyncio.TimeoutError:
            self.p.kill()
            await loop.run_in_executor(None, self.p.wait)
        log = self.stderr()
        self.close()
        return self.p.returncode, log

    def close(self) -> None:
        if self.p.stdout is not None:
            self.p.stdout.close()
        self.err.close()


async def _fire(urls: list[str], key: str, n: int, max_tokens: int) -> list[Raw]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as http:
        async def one(i: int) -> Raw:
            return await request("POST", urls[i % len(urls)] + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                 json={"model": "gpt-4o", "messages": HELLO, "max_tokens": max_tokens}, session=http)  # fmt: skip

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _estimate_e7(max_tokens: int) -> int:
    """What the gateway reserves for one request: its prompt estimate and max_tokens at gpt-4o's prices."""
    from arun.entities.messages import UserPromptMessage
    from arun.gateway.auth import to_e7
    from arun.policy.router import estimate_prompt_tokens
    from arun.pricing import rates
    from arun.runtime import ModelRuntime

    async with ModelRuntime() as rt:
        schema = await rt.get_model_instance("openai", "llm").get_model_schema("gpt-4o")
    rate_in, rate_out = rates(schema)
    prompt = estimate_prompt_tokens([UserPromptMessage(content=HELLO[0]["content"])], None)
    return to_e7(rate_in.total(prompt) + rate_out.total(max_tokens))


async def test_rpm_and_budget_across_two_processes(upstream, tmp_path):
    redis_client = await redis_or_skip()
    prefix = f"arun-gw-test-{uuid.uuid4().hex[:8]}:"
    rpm_key, budget_key, free_key = new_key(), new_key(), new_key()
    async with fresh_pg_database() as pg_url:
        env = dict(os.environ, ARUN_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(), PYTHONUNBUFFERED="1")
        # one request's real price, measured through a gateway first (key without limits)
        config: dict[str, Any] = {
            "store": pg_url, "state": f"{REDIS}?prefix={prefix}", "tenant": {"id": "t2p", "name": "t2p"},
            "providers": {"openai": {"credentials": {"openai_api_key": "sk-upstream-2proc-0001", "openai_api_base": upstream.url}}},
            "aliases": {"gpt-4o": "openai/gpt-4o"},
            "keys": [{"name": "free", "key": free_key}, {"name": "rpm", "key": rpm_key, "rpm": 50}],
            "policy": {"max_retries": 0, "cool_lone_credential": False}, "spend_flush_interval": 0.2, "key_cache_ttl": 60,
        }  # fmt: skip
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        first = Proc(path, env)
        procs = [first]
        try:
            url1 = await first.ready()
            (probe,) = await _fire([url1], free_key, 1, 16)
            assert probe.status_code == 200, probe.text
            code, err = await first.stop()
            assert code == 0, err[-2000:]
            store = await open_store(pg_url)
            try:
                (row,) = await store.list_spend()
                price = row.price_e7
                assert price > 0
                budget = 20 * price
                config["keys"].append({"name": "budget", "key": budget_key, "budget": str(from_e7(budget))})
                path.write_text(yaml.safe_dump(config))
                procs = [Proc(path, env)]
                urls = [await procs[0].ready()]
                procs.append(Proc(path, env))  # the second starts once the first applied the configuration
                urls.append(await procs[1].ready())
                assert urls[0] != urls[1]
                # both processes warm (tenant, model instance, upstream connection) before the bursts, so
                # that neither takes the whole shared rpm while the other is still loading
                warm = await _fire(urls, free_key, 2, 16)
                assert [r.status_code for r in warm] == [200, 200], [r.text for r in warm]

                # -- rpm 50 under 200 concurrent requests, half to each process
                upstream.stats.reset()
                answers = await _fire(urls, rpm_key, 200, 16)
                ok = [r for r in answers if r.status_code == 200]
                limited = [r for r in answers if r.status_code == 429]
                assert len(ok) == 50 and len(limited) == 150, sorted({r.status_code for r in answers})
                assert all(r.json()["error"]["code"] == "rate_limit_exceeded" and int(r.headers["retry-after"]) >= 1 for r in limited)
                assert {r.url.split("/v1/")[0] for r in ok} == set(urls)  # both processes served
                assert upstream.stats.total == 50

                # -- a budget of 20 requests' worth under 200 concurrent requests, then one by one until refused
                upstream.stats.reset()
                answers = await _fire(urls, budget_key, 200, 16)
                burst = [r for r in answers if r.status_code == 200]
                refused = [r for r in answers if r.status_code == 429]
                assert burst and len(burst) + len(refused) == 200
                assert all(r.json()["error"]["code"] == "budget_exceeded" and r.headers["x-should-retry"] == "false" for r in refused)
                more = 0
                while True:  # settled requests free their reservations: spend the rest
                    (r,) = await _fire(urls[more % 2 :] + urls[: more % 2], budget_key, 1, 16)
                    if r.status_code != 200:
                        assert r.json()["error"]["code"] == "budget_exceeded"
                        break
                    more += 1
                    assert more <= 40
                served = len(burst) + more
                assert upstream.stats.total == served
            finally:
                await store.close()
        finally:
            logs = ""
            for p in procs:
                if p.p.poll() is None:
                    code, err = await p.stop()
                    assert code == 0, err[-2000:]
                    logs += err
                else:
                    p.close()
        # the processes' access logs: one JSON line per request, no key in them
        assert logs.count('"route":"/v1/chat/completions"') >= 400
        for secret in (rpm_key, budget_key, free_key, "sk-upstream-2proc-0001"):
            assert secret not in logs
        store = await open_store(pg_url)
        try:
            rec = await store.get_virtual_key_by_hash(hash_key(budget_key))
            rows = [r for r in await store.list_spend(key_id=rec.id, limit=10_000) if r.outcome == "ok"]
            spent = sum(r.price_e7 for r in rows)
            assert len(rows) == served and rec.spent_e7 == spent  # every served request logged and charged once
            # never beyond the budget by more than one request's price; refused only once the rest could not
            # hold one request's estimate (admission reserves the estimate: prompt estimate + max_tokens)
            estimate = await _estimate_e7(16)
            assert price < estimate
            assert budget - estimate < spent <= budget + price, (budget, spent, price, estimate)
            usage = await redis_client.hmget(f"{prefix}gw:budget:{rec.id}", ["spent", "reserved"])
            assert int(usage[0]) == spent and int(usage[1]) == 0  # the shared counter agrees, nothing left reserved
        finally:
            await store.close()
            keys = [k async for k in redis_client.scan_iter(prefix + "*")]
            if keys:
                await redis_client.delete(*keys)
            await redis_client.aclose()
