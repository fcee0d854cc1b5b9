"""The runtime's pooled HTTP client: one aiohttp session, explicit timeouts, typed errors.

Providers never open sessions: they call :meth:`HttpClient.request` (whole body)
or :meth:`HttpClient.stream` (an async-context-managed response read chunk by
chunk).  aiohttp and OS errors are translated here, once, into the
``Invoke*Error`` tree; HTTP error statuses are translated by the protocol
family's ``error_mapper`` from the status, headers and body.

Timeouts: ``connect`` (TCP + TLS), ``first_byte`` (request sent -> response
headers), ``idle`` (between two body reads).  There is no total timeout: a long
stream that keeps producing is never cut.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from arun.errors import (
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
    InvokeStreamInterruptedError,
    InvokeTimeoutError,
    NotStartedError,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpConfig", "HttpClient", "HttpResponse", "StreamResponse", "ErrorMapper"]

ErrorMapper = Callable[[int, Mapping[str, str], bytes], InvokeError]


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class HttpConfig:
    """Pool and timeout settings; every field can also come from ``ARUN_HTTP_*`` variables."""

    connect_timeout: float = 10.0
    first_byte_timeout: float = 300.0
    idle_timeout: float = 300.0
    limit: int = 1000
    limit_per_host: int = 0
    keepalive_timeout: float = 60.0

    @classmethod
    def from_env(cls) -> HttpConfig:
        return cls(
            connect_timeout=_env_float("ARUN_HTTP_CONNECT_TIMEOUT", cls.connect_timeout),
            first_byte_timeout=_env_float("ARUN_HTTP_FIRST_BYTE_TIMEOUT", cls.first_byte_timeout),
            idle_timeout=_env_float("ARUN_HTTP_IDLE_TIMEOUT", cls.idle_timeout),
            limit=int(_env_float("ARUN_HTTP_POOL_LIMIT", cls.limit)),
            limit_per_host=int(_env_float("ARUN_HTTP_POOL_LIMIT_PER_HOST", cls.limit_per_host)),
            keepalive_timeout=_env_float("ARUN_HTTP_KEEPALIVE", cls.keepalive_timeout),
        )


class HttpResponse:
    """A fully read response."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def translate_transport_error(exc: BaseException) -> InvokeError:
    """Map an aiohttp / OS / timeout exception to the Invoke error tree."""
    import aiohttp

    if isinstance(exc, InvokeError):
        return exc
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError on 3.11+
        return InvokeTimeoutError(f"Timeout Error: {type(exc).__name__} {exc}".rstrip())
    if isinstance(exc, aiohttp.ClientPayloadError):
        return InvokeStreamInterruptedError(f"Stream Interrupted: the upstream closed the response early ({exc})")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvokeBadRequestError(f"Bad Request Error: invalid URL {exc}")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return InvokeConnectionError(f"Connection Error: {type(exc).__name__}: {exc}")
    return InvokeConnectionError(f"Connection Error: {type(exc).__name__}: {exc}")


def _transport_errors() -> tuple[type[BaseException], ...]:
    import asyncio

    import aiohttp

    return (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)


class StreamResponse:
    """A streaming response: ``await read_chunk()`` until it returns ``b""``; always closed by ``async with``."""

    __slots__ = ("_resp", "_content", "_errors", "status", "headers")

    def __init__(self, resp: aiohttp.ClientResponse, errors: tuple[type[BaseException], ...]) -> None:
        self._resp = resp
        self._content = resp.content
        self._errors = errors
        self.status = resp.status
        self.headers = resp.headers

    async def read_chunk(self) -> bytes:
        try:
            return await self._content.readany()
        except self._errors as exc:
            self.close()
            raise translate_transport_error(exc) from exc

    def close(self) -> None:
        """Drop the connection (an unread body cannot go back to the pool)."""
        resp = self._resp
        if not resp.closed:
            resp.close()

    def release(self) -> None:
        """Give the connection back after the body was read to its end."""
        self._resp.release()

    async def __aenter__(self) -> StreamResponse:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self._content.at_eof():
            self.release()
        else:
            self.close()


def _read_on_with_idle_timeout(resp: aiohttp.ClientResponse, idle: float) -> None:
    """The headers arrived under the first-byte timeout: the body is read under the idle one."""
    conn = resp.connection
    protocol = conn.protocol if conn is not None else None
    if protocol is None or resp.content.is_eof():
        return  # the whole body is already here
    protocol.read_timeout = idle
    protocol.start_timeout()  # re-arm now: the next read may be slow (first token after the headers)


class HttpClient:
    """One pooled ``aiohttp.ClientSession`` owned by the runtime."""

    def __init__(self, config: HttpConfig | None = None) -> None:
        self.config = config or HttpConfig.from_env()
        self._session: aiohttp.ClientSession | None = None
        self._errors: tuple[type[BaseException], ...] = ()
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def start(self) -> None:
        if self._session is not None:
            return
        import aiohttp

        cfg = self.config
        connector = aiohttp.TCPConnector(
            limit=cfg.limit,
            limit_per_host=cfg.limit_per_host,
            keepalive_timeout=cfg.keepalive_timeout,
            ttl_dns_cache=300,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout, sock_read=cfg.idle_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True)
        self._errors = _transport_errors()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise NotStartedError("the runtime is not started: use `async with ModelRuntime() as rt:`")
        return self._session

    def acquired_connections(self) -> int:
        """Connections currently checked out of the pool (0 when every response was released)."""
        connector = self._session.connector if self._session is not None else None
        return len(getattr(connector, "_acquired", ())) if connector is not None else 0

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], data: Any, first_byte: float | None
    ) -> Awaitable[aiohttp.ClientResponse]:
        """The awaitable response.  aiohttp's read timeout starts once the request is sent and
        restarts on every read, so it is the first-byte timeout as well as the idle one: when the
        two are equal (the default) there is no timer and no coroutine of our own per call."""
        cfg = self.config
        first_byte = first_byte or cfg.first_byte_timeout
        if first_byte == cfg.idle_timeout:
            return self.session.request(method, url, headers=headers, data=data)
        return self._send_first_byte(method, url, headers, data, first_byte)

    async def _send_first_byte(
        self, method: str, url: str, headers: Mapping[str, str], data: Any, first_byte: float
    ) -> aiohttp.ClientResponse:
        resp = await self.session.request(
            method, url, headers=headers, data=data, timeout=self._first_byte_timeouts(first_byte)
        )
        _read_on_with_idle_timeout(resp, self.config.idle_timeout)
        return resp

    def _first_byte_timeouts(self, first_byte: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(first_byte)
        if timeout is None:
            import aiohttp

            timeout = self._timeouts[first_byte] = aiohttp.ClientTimeout(
                total=None, sock_connect=self.config.connect_timeout, sock_read=first_byte
            )
        return timeout

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: Any = None,
        error_mapper: ErrorMapper,
        first_byte_timeout: float | None = None,
    ) -> HttpResponse:
        """Send a request and read the whole body; a non-2xx status raises ``error_mapper(...)``."""
        try:
            resp = await self._send(method, url, headers, data, first_byte_timeout)
        except self._errors as exc:
            raise translate_transport_error(exc) from exc
        try:
            body = await resp.read()
        except self._errors as exc:
            resp.close()
            raise translate_transport_error(exc) from exc
        finally:
            resp.release()
        if resp.status >= 300:
            raise error_mapper(resp.status, resp.headers, body)
        return HttpResponse(resp.status, resp.headers, body)

    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: Any = None,
        error_mapper: ErrorMapper,
        first_byte_timeout: float | None = None,
    ) -> StreamResponse:
        """Open a streaming response; a non-2xx status reads the error body and raises ``error_mapper(...)``."""
        try:
            resp = await self._send(method, url, headers, data, first_byte_timeout)
        except self._errors as exc:
            raise translate_transport_error(exc) from exc
        if resp.status >= 300:
            try:
                body = await resp.read()
            except self._errors:
                body = b""
            finally:
                resp.release()
            raise error_mapper(resp.status, resp.headers, body)
        return StreamResponse(resp, self._errors)
