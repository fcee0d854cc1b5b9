"""arun through the manager layer: a tenant, credentials stored encrypted in SQLite, and load
balancing (round robin with cooldowns, in-memory state) over 3 credentials of the same model,
called as ``ModelInstance.invoke_llm`` — what a multi-tenant service runs.  Chat and stream only."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from benchmarks.clients.arun_client import consume, version  # noqa: F401 - the worker reports version
from benchmarks.common import API_KEY, CHAT_MODEL, PROMPT

KEYS = [f"{API_KEY}-lb-{i}" for i in range(3)]


class Client:
    def __init__(self, url: str, spec: dict[str, Any]) -> None:
        self.base = url.rstrip("/")
        self.spec = spec

    def creds(self, key: str) -> dict[str, str]:
        return {"openai_api_key": key, "openai_api_base": self.base}

    async def start(self) -> None:
        from arun import UserPromptMessage
        from arun.manager import ModelManager

        self.dir = tempfile.mkdtemp(prefix="arun-bench-")
        self.m = ModelManager(store=f"sqlite:///{self.dir}/arun.db", state="memory://",
                              master_key=os.urandom(32))
        await self.m.start()
        m = self.m
        t = await m.create_tenant("bench")
        await m.save_provider_credentials(t.id, "openai", self.creds(KEYS[0]), validate=False)
        await m.add_lb_config(t.id, "openai", "llm", CHAT_MODEL, "__inherit__")
        for i, key in enumerate(KEYS[1:], start=1):
            await m.add_lb_config(t.id, "openai", "llm", CHAT_MODEL, f"key{i}", self.creds(key),
                                  validate=False)
        await m.enable_load_balancing(t.id, "openai", "llm", CHAT_MODEL)
        self.inst = await m.get_model_instance(t.id, "openai", "llm", CHAT_MODEL)
        if not self.inst.load_balancing or len(self.inst.policy.route.target.configs) != 3:
            raise RuntimeError("load balancing over 3 credentials is not active")
        self.messages = [UserPromptMessage(content=PROMPT)]

    async def close(self) -> None:
        await self.m.aclose()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def stream(self) -> tuple[str, float | None, int, int]:
        return await consume(await self.inst.invoke_llm(self.messages, stream=True))

    async def chat(self) -> tuple[str, int]:
        res = await self.inst.invoke_llm(self.messages, stream=False)
        return res.message.content or "", res.usage.completion_tokens
