"""Plain HTTP for the cases no SDK covers (no key, a broken body, the raw SSE bytes): aiohttp, a core dependency."""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str = ""

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return _json.loads(self.body)


async def request(method: str, url: str, *, json: Any = None, content: bytes | None = None,
                  headers: dict[str, str] | None = None, session: aiohttp.ClientSession | None = None) -> Raw:  # fmt: skip
    own = session is None
    s = session or aiohttp.ClientSession()
    try:
        async with s.request(method, url, json=json, data=content, headers=headers) as resp:
            return Raw(resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read(), url)
    finally:
        if own:
            await s.close()
