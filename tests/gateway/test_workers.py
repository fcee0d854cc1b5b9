"""``arun serve --workers N``: N processes on one port, refused without a shared state."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml
from gateway_harness import redis_or_skip
from rawhttp import request

from arun.gateway.auth import new_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_workers_need_a_shared_state(tmp_path):
    r = subprocess.run([sys.executable, "-m", "arun.cli", "serve", "--workers", "2", "--port", "8999",
                        "--store", f"sqlite:///{tmp_path}/w.db"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "needs a shared state" in r.stderr


@pytest.mark.redis
async def test_two_workers_serve_one_port(upstream, tmp_path):
    await (await redis_or_skip()).aclose()  # the workers share this Redis
    key = new_key()
    port = _free_port()
    cfg = {
        "store": f"sqlite:///{tmp_path}/w.db", "state": f"redis://127.0.0.1:6379/0?prefix=arun-w-{uuid.uuid4().hex[:8]}:",
        "tenant": {"id": "w", "name": "w"}, "aliases": {"gpt-4o": "openai/gpt-4o"}, "keys": [{"name": "w", "key": key}],
        "providers": {"openai": {"credentials": {"openai_api_key": "sk-upstream-workers-01", "openai_api_base": upstream.url}}},
    }  # fmt: skip
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    err = tempfile.TemporaryFile()
    sup = subprocess.Popen([sys.executable, "-m", "arun.cli", "serve", "--config", str(path), "--workers", "2", "--port", str(port)],
                           stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
    loop = asyncio.get_running_loop()
    try:
        assert sup.stdout is not None
        lines = [await loop.run_in_executor(None, sup.stdout.readline) for _ in range(2)]
        assert all(line.startswith(f"READY http://127.0.0.1:{port}") for line in lines), (lines, err.seek(0) or err.read())
        answers = [await request("POST", f"http://127.0.0.1:{port}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                 json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}) for _ in range(8)]  # fmt: skip
        assert [a.status for a in answers] == [200] * 8
    finally:
        sup.send_signal(signal.SIGTERM)
        code = await loop.run_in_executor(None, sup.wait)
        if sup.stdout is not None:
            sup.stdout.close()
        err.close()
    assert code == 0
