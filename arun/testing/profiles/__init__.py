"""Simulator profiles: one provider's wire quirks on top of the protocol it speaks.

A request to ``<sim.url>/p/<profile>/<any base path>/<endpoint>`` is answered by the protocol
handler whose endpoint the path ends with (``/chat/completions``, ``/embeddings``, ``/rerank``
...), with the profile's hooks applied: DeepSeek's keep-alive comments and ``reasoning_content``,
OpenRouter's processing comments, Azure's empty first chunk, MiniMax's ``base_resp`` errors in a
200 body, Groq's ``x_groq`` usage, other error bodies and rerank shapes.  Faults and stats use
the handler's canonical path (``/v1/chat/completions``), so the same fault helpers work.

Each provider's profile is a module of this package that defines ``PROFILE``; the registry
finds them by listing the package, so adding a profile touches no shared file.  Every hook
names the source of the quirk it reproduces (``Profile.sources``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from arun.testing.simulator import Ctx

__all__ = ["Profile", "profiles", "get_profile"]

Events = list[bytes]


@dataclass(frozen=True)
class Profile:
    name: str
    #: where each quirk comes from (docs page, SDK file, issue thread)
    sources: tuple[str, ...] = ()
    #: streamed chat: rewrite the framed SSE events (``data: ...\n\n`` items, ``[DONE]`` last)
    chat_events: Callable[[Ctx, dict[str, Any], Events], Events] | None = None
    #: non-streamed chat: rewrite the response object; may return bytes for a raw body
    chat_body: Callable[[Ctx, dict[str, Any], dict[str, Any]], dict[str, Any] | bytes] | None = None
    #: the provider's error body for a status: ``(status, json object)``
    error_body: Callable[[Ctx, int, str | None, str | None], tuple[int, Any]] | None = None
    #: the provider's in-stream error event (framed bytes)
    stream_error: Callable[[Ctx], bytes] | None = None
    #: embeddings / rerank / other endpoints: rewrite the response object
    response_body: Callable[[Ctx, str, dict[str, Any]], dict[str, Any]] | None = None
    #: extra endpoints: ``(method, path suffix, handler, parse, canonical path)``; matched before the defaults
    routes: tuple[tuple[str, str, Callable[[Ctx], Awaitable[web.StreamResponse]], str | None, str], ...] = ()
    #: response headers added to every answer (rate-limit headers of that provider, ...)
    headers: dict[str, str] = field(default_factory=dict)
    #: model-form values a test case of one model type fills in (model type value -> field -> value),
    #: e.g. the uid of a model the simulated cluster has launched
    form: dict[str, dict[str, str]] = field(default_factory=dict)


_REGISTRY: dict[str, Profile] | None = None


def profiles() -> dict[str, Profile]:
    global _REGISTRY
    if _REGISTRY is None:
        found: dict[str, Profile] = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            profile = getattr(module, "PROFILE", None)
            if isinstance(profile, Profile):
                found[profile.name] = profile
        _REGISTRY = found
    return _REGISTRY


def get_profile(name: str) -> Profile | None:
    return profiles().get(name)
