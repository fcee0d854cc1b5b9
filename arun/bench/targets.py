"""Where the load goes: a provider model through the runtime, a tenant's model through the
manager (load balancing, limits, retries and fallbacks included), or the built-in simulator.

Credentials come from ``--credentials FILE`` (a YAML or JSON mapping of the provider's
credential fields) and ``ARUN_BENCH_CRED_<FIELD>`` variables (the field name upper-cased;
variables win over the file).  They are secrets: nothing here prints or stores them.

The simulator runs in a child process (``python -m arun.testing``) so the CPU the bench
reports is the client's alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from arun.bench.errors import BenchUsageError
from arun.errors import ModelTypeNotSupportedError, ProviderNotFoundError

__all__ = [
    "ENV_PREFIX",
    "SIMULATED",
    "SIMULATED_DEFAULT_MODELS",
    "TargetSpec",
    "Target",
    "load_credentials",
    "endpoint_urls",
    "is_local_url",
    "open_target",
    "simulator_process",
]

ENV_PREFIX = "ARUN_BENCH_CRED_"

#: Credentials that point a provider at the simulator (``{url}`` is its base URL).
SIMULATED: dict[str, dict[str, str]] = {
    "openai": {"openai_api_key": "sk-bench-simulated", "openai_api_base": "{url}"},
    "openai_api_compatible": {"api_key": "sk-bench-simulated", "endpoint_url": "{url}/v1"},
    "anthropic": {"anthropic_api_key": "sk-ant-bench-simulated", "anthropic_api_url": "{url}"},
    "ollama": {"base_url": "{url}"},
    "jina": {"api_key": "jina_bench_simulated", "base_url": "{url}/v1"},
}
#: (provider, model) used with ``--simulator`` when none is named, per model type.
SIMULATED_DEFAULT_MODELS = {
    "llm": ("openai", "gpt-4o-mini"),
    "text-embedding": ("openai", "text-embedding-3-small"),
    "rerank": ("jina", "jina-reranker-v2-base-multilingual"),
}


def load_credentials(path: str | None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The credential fields of ``path`` (YAML/JSON mapping) overlaid with ``ARUN_BENCH_CRED_*``."""
    creds: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BenchUsageError(f"--credentials {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BenchUsageError(f"--credentials {path}: cannot read it ({type(exc).__name__})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise BenchUsageError(f"--credentials {path}{where}: not YAML or JSON") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise BenchUsageError(f"--credentials {path}: expected a mapping of credential fields (field: value)")
        creds.update(data)
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            creds[name[len(ENV_PREFIX):].lower()] = value
    return creds


def endpoint_urls(credentials: Mapping[str, Any]) -> list[str]:
    """Every credential value that is an http(s) URL (base URLs, endpoint URLs)."""
    return [v for v in credentials.values() if isinstance(v, str) and v.strip().lower().startswith(("http://", "https://"))]


def is_local_url(url: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@asynccontextmanager
async def simulator_process(reply_words: int | None, chunk_delay: float) -> AsyncIterator[str]:
    """Run the upstream simulator in a child process; yields its base URL."""
    argv = [sys.executable, "-m", "arun.testing", "--chunk-delay", str(chunk_delay)]
    if reply_words is not None:
        argv += ["--reply-words", str(reply_words)]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        except asyncio.TimeoutError:
            line = b""
        if not line.startswith(b"READY "):
            err = (await proc.stderr.read()).decode("utf-8", "replace").strip().splitlines()[-3:]
            raise BenchUsageError("the built-in simulator did not start: " + (" | ".join(err) or "no output"))
        yield line.split(None, 1)[1].decode().strip()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:  # pragma: no cover - a wedged child
                proc.kill()
                await proc.wait()


@dataclass
class TargetSpec:
    """What the command line asked for."""

    model_type: str  # "llm" | "text-embedding" | "rerank"
    provider: str | None
    model: str | None
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    tenant: str | None = None
    store: str | None = None
    state: str | None = None
    policy: bool = False
    simulator: bool = False
    sim_reply_words: int | None = None
    sim_chunk_delay: float = 0.0
    pool_size: int = 0  # connections the run may hold at once


@dataclass
class Target:
    """An opened target: call :meth:`llm`, :meth:`embed` or :meth:`rerank`."""

    provider: str
    model: str
    model_type: str
    model_obj: Any  # the runtime's model-type instance (schema, token counting)
    credentials: Mapping[str, Any] = field(repr=False)
    instance: Any = None  # arun.manager ModelInstance with --tenant
    simulated: bool = False
    schema: Any = None
    source: str = "credentials"

    @property
    def label(self) -> str:
        via = f"tenant {self.instance.tenant_id} via the manager" if self.instance is not None else self.source
        return f"{self.provider}/{self.model} ({via})"

    @property
    def local(self) -> bool:
        urls = endpoint_urls(self.credentials)
        return self.simulated or (bool(urls) and all(is_local_url(u) for u in urls))

    @property
    def policy(self) -> bool:
        return self.instance is not None and getattr(self.instance, "policy", None) is not None

    async def llm(self, messages: Sequence[Any], params: Mapping[str, Any], stream: bool, callbacks: Sequence[Any] | None) -> Any:
        if self.instance is not None:
            return await self.instance.invoke_llm(messages, params, stream=stream, callbacks=callbacks)
        return await self.model_obj.invoke(
            self.model, self.credentials, messages, params, None, None, stream, None, callbacks=callbacks
        )

    async def embed(self, texts: Sequence[str], fanout: int | None) -> Any:
        options = {"max_concurrency": fanout} if fanout else {}
        if self.instance is not None:
            return await self.instance.invoke_text_embedding(texts, **options)
        return await self.model_obj.invoke(self.model, self.credentials, texts, **options)

    async def rerank(self, query: str, docs: Sequence[str], top_n: int | None) -> Any:
        if self.instance is not None:
            return await self.instance.invoke_rerank(query, docs, None, top_n)
        return await self.model_obj.invoke(self.model, self.credentials, query, docs, None, top_n)

    async def count_tokens(self, payload: Any) -> int | None:
        """The model's own count of a prompt (message list) or of a list of texts; None if it has none."""
        try:
            if self.model_type == "llm":
                return int(await self.model_obj.get_num_tokens(self.model, self.credentials, payload))
            if self.model_type == "text-embedding":
                return int(sum(await self.model_obj.get_num_tokens(self.model, self.credentials, payload)))
        except Exception:  # noqa: BLE001 - no tokenizer for this model: the caller estimates
            return None
        return None


def _runtime(pool_size: int) -> Any:
    from arun import HttpConfig, ModelRuntime

    config = HttpConfig.from_env()
    if pool_size > config.limit:
        config = replace(config, limit=pool_size)
    return ModelRuntime(http=config)


@asynccontextmanager
async def open_target(spec: TargetSpec) -> AsyncIterator[Target]:
    """Open the runtime or manager (and the simulator when asked); close everything on exit."""
    provider, model = spec.provider, spec.model
    if spec.simulator:
        if spec.tenant:
            raise BenchUsageError("--simulator cannot be combined with --tenant (the tenant's stored credentials name the endpoint)")
        default_provider, default_model = SIMULATED_DEFAULT_MODELS[spec.model_type]
        if provider is None:
            provider, model = default_provider, model or default_model
        if provider not in SIMULATED:
            raise BenchUsageError(f"--provider {provider!r}: the simulator speaks for {', '.join(SIMULATED)} only")
    if provider is None:
        raise BenchUsageError("--provider is required (or --simulator to use the built-in simulator)")
    if not model:
        raise BenchUsageError("--model is required")
    async with AsyncExitStack() as stack:
        creds = dict(spec.credentials)
        source = "credentials from --credentials / ARUN_BENCH_CRED_*"
        if spec.simulator:
            url = await stack.enter_async_context(simulator_process(spec.sim_reply_words, spec.sim_chunk_delay))
            creds.update({k: v.format(url=url) for k, v in SIMULATED[provider].items()})
            source = f"built-in simulator at {url}"
        instance: Any = None
        try:
            if spec.tenant:
                from arun.manager import ModelManager, PolicyConfig

                manager = await stack.enter_async_context(
                    ModelManager.open(spec.store, spec.state, runtime=await stack.enter_async_context(_runtime(spec.pool_size)),
                                      policy=PolicyConfig() if spec.policy else None)
                )
                instance = await manager.get_model_instance(spec.tenant, provider, spec.model_type, model)
                model_obj = instance.model_type_instance
                creds = dict(instance.credentials or {})
            else:
                rt = await stack.enter_async_context(_runtime(spec.pool_size))
                model_obj = rt.get_model_instance(provider, spec.model_type)
        except ProviderNotFoundError:
            from arun.runtime.model_runtime import discover_providers

            raise BenchUsageError(f"--provider {provider!r}: unknown provider (known: {', '.join(discover_providers())})") from None
        except ModelTypeNotSupportedError:
            raise BenchUsageError(f"--provider {provider!r} has no {spec.model_type} models") from None
        schema = await model_obj.get_model_schema(model, creds)
        if schema is None:
            raise BenchUsageError(
                f"--model {model!r}: provider {provider!r} has no {spec.model_type} model of that name"
                + (" (see `arun providers`)" if not creds else " (see `arun providers`, and check the credentials)")
            )
        yield Target(provider, model, spec.model_type, model_obj, creds, instance, spec.simulator, schema, source)
