"""Bad input and every failure class -> the OpenAI error body, the right status and headers, as the SDK expects.

Also: nothing the gateway logs (access log, warnings, tracebacks) holds a key.
"""

from __future__ import annotations

import json
import logging

import openai
import pytest
from rawhttp import Raw, request

from arun.gateway.auth import KeyRing
from arun.testing import Fault

HELLO = [{"role": "user", "content": "Hello there friend"}]


def error_body(resp: Raw) -> dict:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def raw_post(gateway, path: str, content: bytes, headers: dict[str, str] | None = None) -> Raw:
    hdrs = {"Authorization": f"Bearer {gateway.key}", "Content-Type": "application/json", **(headers or {})}
    return await request("POST", gateway.base + path, content=content, headers=hdrs)


async def test_missing_wrong_and_revoked_keys_are_401(gateway):
    missing = await request("POST", gateway.base + "/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    assert missing.status_code == 401 and error_body(missing)["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await gateway.openai(key="sk-arun-wrong-wrong-wrong-wrong-wrong-000").chat.completions.create(model="gpt-4o", messages=HELLO)
    ring = KeyRing(gateway.gw.manager.store)
    key, rec = await ring.create(gateway.gw.tenant_id, name="temp")
    client = gateway.openai(key=key)
    assert (await client.chat.completions.create(model="gpt-4o", messages=HELLO)).choices
    assert await gateway.gw.manager.store.revoke_virtual_key(rec.id)  # as `arun keys revoke` does, from outside
    with pytest.raises(openai.AuthenticationError) as revoked:
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert revoked.value.status_code == 401 and key not in str(revoked.value.body)


async def test_unknown_model_is_404_and_scope_is_403(gateway):
    for name in ("nope/nothing", "no-such-alias", "openai/missing-model"):
        with pytest.raises(openai.NotFoundError) as info:
            await gateway.openai().chat.completions.create(model=name, messages=HELLO)
        assert info.value.status_code == 404 and info.value.code == "model_not_found" and info.value.param == "model"
    key, _ = await KeyRing(gateway.gw.manager.store).create(gateway.gw.tenant_id, models=["gpt-4o"])
    scoped = gateway.openai(key=key)
    assert (await scoped.chat.completions.create(model="gpt-4o", messages=HELLO)).choices
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await scoped.chat.completions.create(model="claude-sonnet-4", messages=HELLO)
    assert denied.value.status_code == 403 and denied.value.code == "model_not_allowed"
    models = {m.id for m in (await scoped.models.list()).data}
    assert models == {"gpt-4o", "openai/gpt-4o"}  # the alias in the scope covers its target
    assert (await scoped.chat.completions.create(model="openai/gpt-4o", messages=HELLO)).choices


async def test_malformed_json_oversized_body_and_wrong_content_type(make_gateway):
    gateway = await make_gateway(max_body_bytes=4096)
    resp = await raw_post(gateway, "/chat/completions", b'{"model": "gpt-4o", "messages": [')
    assert resp.status_code == 400 and error_body(resp)["code"] == "invalid_json"
    resp = await raw_post(gateway, "/chat/completions", json.dumps({"model": "gpt-4o", "messages": "hi"}).encode())
    err = error_body(resp)
    assert resp.status_code == 400 and err["param"] == "messages"
    big = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 10_000}]}).encode()
    resp = await raw_post(gateway, "/chat/completions", big)
    assert resp.status_code == 413 and error_body(resp)["code"] == "request_too_large"
    resp = await raw_post(gateway, "/chat/completions", b"model=gpt-4o", {"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415 and error_body(resp)["code"] == "unsupported_media_type"
    resp = await raw_post(gateway, "/no/such/route", b"{}")
    assert resp.status_code == 404 and error_body(resp)["code"] == "unknown_route"
    resp = await request("GET", gateway.base + "/chat/completions", headers={"Authorization": f"Bearer {gateway.key}"})
    assert resp.status_code == 405 and error_body(resp)["code"] == "method_not_allowed"
    assert gateway.sim.stats.total == 0  # none of it reached the upstream


async def test_upstream_failures_map_to_their_status(gateway):
    client = gateway.openai()
    sim = gateway.sim
    cases = [
        (Fault(status=400, error_type="context_length_exceeded"), openai.BadRequestError, 400, "context_length_exceeded"),
        (Fault(status=401), openai.AuthenticationError, 401, "invalid_api_key"),
        (Fault(status=403), openai.PermissionDeniedError, 403, None),
        (Fault(status=503), openai.InternalServerError, 503, None),
        (Fault(status=529), openai.InternalServerError, 529, None),
        (Fault(status=429, error_type="insufficient_quota"), openai.RateLimitError, 429, "insufficient_quota"),
    ]
    for fault, cls, status, code in cases:
        sim.faults.push(fault, path="/v1/chat/completions")
        with pytest.raises(cls) as info:
            await client.chat.completions.create(model="gpt-4o", messages=HELLO)
        assert info.value.status_code == status, fault
        if code:
            assert info.value.code == code
        assert set(info.value.body) == {"message", "type", "param", "code"}
    assert info.value.response.headers["x-should-retry"] == "false"  # an exhausted quota is not retried


async def test_429_with_retry_after_passes_through(gateway):
    gateway.sim.faults.push(Fault(status=429, retry_after=120), path="/v1/chat/completions")
    with pytest.raises(openai.RateLimitError) as info:
        await gateway.openai().chat.completions.create(model="gpt-4o", messages=HELLO)
    headers = info.value.response.headers
    assert info.value.status_code == 429 and headers["retry-after"] == "120" and headers["retry-after-ms"] == "120000"
    assert info.value.code == "rate_limit_exceeded"


async def test_key_rpm_limit_is_429_with_retry_after(gateway):
    key, _ = await KeyRing(gateway.gw.manager.store).create(gateway.gw.tenant_id, rpm=2)
    client = gateway.openai(key=key)
    for _ in range(2):
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert int(info.value.response.headers["retry-after"]) >= 1 and info.value.code == "rate_limit_exceeded"
    assert gateway.sim.stats.total == 2


async def test_budget_exceeded_is_429_not_retried(gateway):
    from decimal import Decimal

    key, _rec = await KeyRing(gateway.gw.manager.store).create(gateway.gw.tenant_id, budget=Decimal("0.0001"))
    client = gateway.openai(key=key)
    with pytest.raises(openai.RateLimitError) as info:  # the estimate (prompt + 512 tokens of gpt-4o) does not fit
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert info.value.code == "budget_exceeded" and info.value.response.headers["x-should-retry"] == "false"
    assert gateway.sim.stats.total == 0


async def test_nothing_logged_holds_a_key(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    client = gateway.openai()
    await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    stream = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    async for _ in stream:
        pass
    gateway.sim.faults.push(Fault(status=401), path="/v1/chat/completions")
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.AuthenticationError):
        await gateway.openai(key="sk-arun-unknownunknownunknownunknown00").chat.completions.create(model="gpt-4o", messages=HELLO)
    await raw_post(gateway, "/chat/completions", b"{broken")
    access = [r for r in caplog.records if r.name == "arun.gateway.access"]
    assert len(access) >= 5
    line = json.loads(access[0].getMessage())
    assert line["key"] and line["route"] and line["status"] == 200 and line["model"] == "gpt-4o"
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in (gateway.key, "sk-arun-unknownunknownunknownunknown00", "sk-demo-upstream-0001"):
        assert secret not in text
