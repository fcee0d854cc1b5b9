from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import aiohttp
import msgspec
import pytest
from simhelpers import ANTHROPIC_HEADERS, OPENAI_KEY, jloads, parse_sse

from arun.testing import Fault, SimulatorConfig, UpstreamSimulator
from arun.testing.faults import FaultQueue

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three four five"}]}
STREAM = {**CHAT, "stream": True}
A_STREAM = {"model": "c", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "a b c"}]}
O_STREAM = {"model": "llama3.2", "messages": [{"role": "user", "content": "a b c d"}]}


def test_fault_queue_fifo_scoping_and_times():
    q = FaultQueue()
    f1, f2, f3 = Fault(status=500), Fault(status=429), Fault(status=401)
    q.push(f1, path="/v1/chat", key="k1")
    q.push(f2, path="/v1/chat", times=2)
    q.push(f3, times=None)
    assert q.take("/v1/chat/completions", "k2") is f2
    assert q.take("/v1/chat/completions", "k1") is f1  # first matching rule wins
    assert q.take("/v1/chat/completions", "k1") is f2
    assert q.take("/v1/chat/completions", "k1") is f3
    assert q.take("/api/chat", None) is f3 and q.take("/api/chat", None) is f3  # forever
    q.clear()
    assert q.take("/api/chat", None) is None


async def test_openai_status_bodies(upstream, http):
    url = upstream.url + "/v1/chat/completions"
    upstream.faults.push(Fault(status=429, retry_after=1.5))
    async with http.post(url, json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 429
        assert r.headers["retry-after"] == "1.5" and r.headers["retry-after-ms"] == "1500"
        assert r.headers["x-request-id"]
        err = (await r.json())["error"]
        assert err["code"] == "rate_limit_exceeded" and set(err) == {"message", "type", "param", "code"}
    upstream.faults.push(Fault(status=400, error_type="context_length_exceeded"))
    async with http.post(url, json=CHAT, headers=OPENAI_KEY) as r:
        err = (await r.json())["error"]
        assert r.status == 400 and err["code"] == "context_length_exceeded" and err["param"] == "messages"
    upstream.faults.push(Fault(status=401))
    async with http.post(url, json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "invalid_api_key"
    upstream.faults.push(Fault(status=503, message="busy", headers={"x-should-retry": "true"}))
    async with http.post(url, json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 503 and r.headers["x-should-retry"] == "true"
        err = (await r.json())["error"]
        assert err["type"] == "server_error" and err["message"] == "busy"
    upstream.faults.push(Fault(status=502, body=b"<html>bad gateway</html>"))
    async with http.post(url, json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 502 and await r.read() == b"<html>bad gateway</html>"
    async with http.post(url, json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 200  # faults consumed


async def test_anthropic_ollama_jina_status_bodies(upstream, http):
    for status, typ in ((529, "overloaded_error"), (413, "request_too_large"), (429, "rate_limit_error"),
                        (500, "api_error")):
        upstream.faults.push(Fault(status=status, retry_after=2), path="/v1/messages")
        async with http.post(upstream.url + "/v1/messages", json=A_STREAM, headers=ANTHROPIC_HEADERS) as r:
            assert r.status == status
            assert r.headers["retry-after"] == "2" and r.headers["retry-after-ms"] == "2000"
            d = await r.json()
            assert d["type"] == "error" and d["error"]["type"] == typ and d["request_id"]
    upstream.faults.push(Fault(status=500, message="boom"), path="/api/")
    async with http.post(upstream.url + "/api/chat", json=O_STREAM) as r:
        assert r.status == 500 and await r.json() == {"error": "boom"}
    upstream.faults.push(Fault(status=429), path="/v1/rerank")
    async with http.post(upstream.url + "/v1/rerank", json={"query": "q", "documents": ["d"]},
                         headers={"Authorization": "Bearer k"}) as r:
        assert r.status == 429 and "detail" in await r.json()


async def _read_expect_payload_error(resp: aiohttp.ClientResponse) -> bytes:
    buf = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async for chunk in resp.content.iter_any():
            buf += chunk
    return buf


async def test_disconnect_after_stream(upstream, http):
    upstream.faults.push(Fault(disconnect_after=3))
    async with http.post(upstream.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY) as r:
        assert r.status == 200
        buf = await _read_expect_payload_error(r)
    events = parse_sse(buf)
    assert len(events) == 3 and all(d != "[DONE]" for _, d in events)
    upstream.faults.push(Fault(disconnect_after=1), path="/api/chat")
    async with http.post(upstream.url + "/api/chat", json=O_STREAM) as r:
        buf = await _read_expect_payload_error(r)
    assert len(buf.splitlines()) == 1
    upstream.faults.push(Fault(disconnect_after=2), path="/v1/messages")
    async with http.post(upstream.url + "/v1/messages", json=A_STREAM, headers=ANTHROPIC_HEADERS) as r:
        buf = await _read_expect_payload_error(r)
    assert [n for n, _ in parse_sse(buf)] == ["message_start", "content_block_start"]


async def test_disconnect_non_stream(upstream, http):
    upstream.faults.push(Fault(disconnect_after=0))
    with pytest.raises(aiohttp.ClientError):
        async with http.post(upstream.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=OPENAI_KEY) as r:
            await r.read()
    # the server keeps serving afterwards
    async with http.post(upstream.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=OPENAI_KEY) as r:
        assert r.status == 200


async def test_error_event_after(upstream, http):
    upstream.faults.push(Fault(error_event_after=2))
    async with http.post(upstream.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY) as r:
        events = parse_sse(await r.read())
    assert len(events) == 3
    err = jloads(events[-1][1])
    assert set(err["error"]) == {"message", "type", "param", "code"}
    upstream.faults.push(Fault(error_event_after=1), path="/v1/messages")
    async with http.post(upstream.url + "/v1/messages", json=A_STREAM, headers=ANTHROPIC_HEADERS) as r:
        events = parse_sse(await r.read())
    assert [n for n, _ in events] == ["message_start", "error"]
    assert jloads(events[-1][1]) == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream.faults.push(Fault(error_event_after=1, message="oops"), path="/api/chat")
    async with http.post(upstream.url + "/api/chat", json=O_STREAM) as r:
        lines = (await r.read()).splitlines()
    assert len(lines) == 2 and jloads(lines[-1]) == {"error": "oops"}


async def test_stall_after_triggers_client_idle_timeout(upstream, http):
    upstream.faults.push(Fault(stall_after=2, stall_seconds=5))
    t0 = time.monotonic()
    async with http.post(upstream.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY,
                         timeout=aiohttp.ClientTimeout(sock_read=0.3)) as r:
        with pytest.raises(asyncio.TimeoutError):
            async for _ in r.content.iter_any():
                pass
    assert time.monotonic() - t0 < 3


async def test_stall_after_then_finishes(upstream, http):
    upstream.faults.push(Fault(stall_after=1, stall_seconds=0.3))
    t0 = time.monotonic()
    async with http.post(upstream.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY) as r:
        events = parse_sse(await r.read())
    assert time.monotonic() - t0 >= 0.3
    assert events[-1][1] == "[DONE]"


async def test_first_byte_delay(upstream, http):
    upstream.faults.push(Fault(first_byte_delay=0.3))
    t0 = time.monotonic()
    async with http.post(upstream.url + "/v1/chat/completions", json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 200
    assert time.monotonic() - t0 >= 0.3


async def test_malformed(upstream, http):
    upstream.faults.push(Fault(malformed=True))
    async with http.post(upstream.url + "/v1/chat/completions", json=CHAT, headers=OPENAI_KEY) as r:
        assert r.status == 200
        raw = await r.read()
    with pytest.raises(msgspec.DecodeError):
        jloads(raw)
    upstream.faults.push(Fault(malformed=True))
    async with http.post(upstream.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY) as r:
        events = parse_sse(await r.read())
    assert events[1][1] == "{not json"
    assert events[-1][1] == "[DONE]"


async def test_key_scoped_faults_and_stats(upstream, http):
    upstream.faults.push(Fault(status=429), key="sk-a", times=None)
    codes = []
    for key in ("sk-a", "sk-b", "sk-a"):
        async with http.post(upstream.url + "/v1/chat/completions", json=CHAT,
                             headers={"Authorization": f"Bearer {key}"}) as r:
            codes.append(r.status)
    assert codes == [429, 200, 429]
    async with http.get(upstream.url + "/_sim/stats") as r:
        stats = await r.json()
    assert stats == {"total": 3, "by_path": {"/v1/chat/completions": 3}, "by_key": {"sk-a": 2, "sk-b": 1}}
    assert upstream.stats.total == 3
    upstream.reset()
    assert upstream.stats.total == 0 and len(upstream.requests) == 0
    async with http.post(upstream.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer sk-a"}) as r:
        assert r.status == 200


async def test_control_endpoints(upstream, http):
    fault = {"status": 529, "path": "/v1/messages", "times": 2}
    async with http.post(upstream.url + "/_sim/faults", json=fault) as r:
        assert r.status == 200
    statuses = []
    for _ in range(3):
        async with http.post(upstream.url + "/v1/messages", json=A_STREAM, headers=ANTHROPIC_HEADERS) as r:
            statuses.append(r.status)
            await r.read()
    assert statuses == [529, 529, 200]
    async with http.post(upstream.url + "/_sim/faults", json={"status": 500, "times": None}) as r:
        assert r.status == 200
    async with http.delete(upstream.url + "/_sim/faults") as r:
        assert r.status == 200
    async with http.post(upstream.url + "/api/embed", json={"model": "m", "input": "x"}) as r:
        assert r.status == 200
    async with http.post(upstream.url + "/_sim/reset") as r:
        assert r.status == 200
    async with http.get(upstream.url + "/_sim/stats") as r:
        assert (await r.json())["total"] == 0
    async with http.post(upstream.url + "/_sim/faults", json={"status": "x"}) as r:
        assert r.status == 400
    async with http.post(upstream.url + "/_sim/faults", json={"nonsense": 1}) as r:
        assert r.status == 400
    async with http.post(upstream.url + "/_sim/faults", json={"body": "raw!", "status": 418, "key": "kk"}) as r:
        assert r.status == 200
    async with http.get(upstream.url + "/_sim/faults") as r:
        pending = (await r.json())["faults"]
    assert pending[0]["key"] == "kk" and pending[0]["fault"]["status"] == 418
    async with http.post(upstream.url + "/v1/rerank", json={"query": "q", "documents": []},
                         headers={"Authorization": "Bearer kk"}) as r:
        assert r.status == 418 and await r.read() == b"raw!"


async def test_chunk_delay_paces_stream():
    async with UpstreamSimulator(SimulatorConfig(chunk_delay=0.05)) as sim, aiohttp.ClientSession() as http:
        t0 = time.monotonic()
        async with http.post(sim.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY) as r:
            events = parse_sse(await r.read())
        # 1 role chunk + 6 pieces + finish + [DONE] = 9 events, 8 gaps
        assert len(events) == 9
        assert time.monotonic() - t0 >= 0.35


async def test_close_during_stall_is_prompt():
    sim = await UpstreamSimulator().start()
    sim.faults.push(Fault(stall_after=1, stall_seconds=30))
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(http.post(sim.url + "/v1/chat/completions", json=STREAM, headers=OPENAI_KEY))
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await sim.close()
        assert time.monotonic() - t0 < 5
        try:
            resp = await task
            await resp.read()
        except aiohttp.ClientError:
            pass


@pytest.mark.parametrize("command", [["-m", "arun.testing"], ["-m", "arun.cli", "simulator"]], ids=["module", "arun-simulator"])
def test_cli_prints_ready_and_serves(command):
    env = dict(os.environ)
    with subprocess.Popen([sys.executable, *command, "--port", "0"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, env=env, text=True) as proc:
        try:
            line = proc.stdout.readline().strip()
            assert line.startswith("READY http://127.0.0.1:")
            url = line.split(" ", 1)[1]

            async def hit():
                async with aiohttp.ClientSession() as http:
                    async with http.get(url + "/api/tags") as r:
                        return r.status, await r.json()

            status, body = asyncio.run(hit())
            assert status == 200 and body["models"]
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0


def test_cli_stops_on_sigint():
    import signal

    with subprocess.Popen([sys.executable, "-m", "arun.testing"], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().startswith("READY http://127.0.0.1:")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_plugin_is_import_light():
    code = "import sys, arun.testing.pytest_plugin, arun.testing; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
