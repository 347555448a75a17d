"""The HTTP client an HTTP department adapter (REST, SOAP) speaks through: httpx's API over aiohttp's connections.

httpx's own transport (httpcore, anyio, h11, all pure Python) costs more CPU per call than the rest of a simple
lookup; aiohttp's pool and C parser under the same ``httpx.AsyncClient`` API cost a fraction of it, and the
adapters keep httpx's requests, responses, auth flows and exceptions::

    client = department_client(verify=context, timeout=httpx.Timeout(2.0), max_connections=10, auth=auth)
    try:
        await client.post(url, content=body)
    except httpx.TimeoutException as exc:
        if not timed_out(exc):          # refused or reset: unreachable, not slow
            ...

A call with nothing for httpx's client machinery to do -- no auth flow, event hooks, query parameters to merge,
cookies, proxies or redirects to follow, and no tracing instrumentation on the client -- skips that machinery
(:class:`DepartmentClient`): the same request goes to the same aiohttp pool with the same headers and timeouts,
and comes back as the same :class:`httpx.Response`, or raises the same httpx exception. Every other call takes
httpx's path.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from json import dumps as json_dumps
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDict

__all__ = ["DepartmentClient", "department_client", "timed_out"]

_CLIENT_DEFAULT: Any = httpx.USE_CLIENT_DEFAULT


class DepartmentClient(httpx.AsyncClient):
    """An :class:`httpx.AsyncClient` over one :class:`AiohttpTransport` that sends a plain call straight to it."""

    def __init__(self, *, transport: AiohttpTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._aiohttp = transport
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _direct(self, params: Any, auth: Any, follow_redirects: Any, kwargs: Mapping[str, Any]) -> bool:
        """Whether a call can skip httpx's client machinery with nothing lost (see the module's docstring)."""
        return (
            all(value is None for value in kwargs.values())  # get() and post() pass cookies=None, extensions=None
            and not params
            and (auth is _CLIENT_DEFAULT or auth is None)
            and self._auth is None
            and follow_redirects is not True
            and not self.follow_redirects
            and not self._event_hooks["request"]
            and not self._event_hooks["response"]
            and not self.cookies
            and not self._mounts
            and not str(self.base_url)
            and not self.params
            and self._transport is self._aiohttp
            # a tracing instrumentation wraps the transport's method to see every call
            and not hasattr(self._aiohttp.handle_async_request, "__wrapped__")
        )

    async def request(  # type: ignore[override]
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: bytes | None = None,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: Any = _CLIENT_DEFAULT,
        follow_redirects: Any = _CLIENT_DEFAULT,
        timeout: Any = _CLIENT_DEFAULT,  # noqa: ASYNC109 - httpx's own parameter
        **kwargs: Any,
    ) -> httpx.Response:
        if not self._direct(params, auth, follow_redirects, kwargs):
            return await super().request(
                method,
                url,
                content=content,
                json=json,
                params=params,
                headers=headers,
                auth=auth,
                follow_redirects=follow_redirects,
                timeout=timeout,
                **kwargs,
            )
        sent = CIMultiDict(self.headers.multi_items())
        if headers:
            sent.update(headers)
        if json is not None:
            content = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            sent.setdefault("Content-Type", "application/json")
        limits = self.timeout if timeout is _CLIENT_DEFAULT else httpx.Timeout(timeout)
        session = self._session()
        with map_aiohttp_exceptions():
            async with session.request(
                method,
                str(url),
                headers=sent,
                data=content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=self._timeout_of(limits),
            ) as answer:
                body = await answer.read()
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode()
        response = _Answer.received(answer.status, answer.raw_headers, body, extensions)
        response.sent = (method, url, sent, content)
        if "set-cookie" in response.headers:
            self.cookies.extract_cookies(response)
        return response

    def _session(self) -> aiohttp.ClientSession:
        transport = self._aiohttp
        if not isinstance(transport.client, aiohttp.ClientSession):
            transport.client = transport.get_client()
        return transport.client

    def _timeout_of(self, limits: httpx.Timeout) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for httpx's, as the transport maps it (one object per distinct setting)."""
        key = (limits.connect, limits.read, limits.pool)
        found = self._timeouts.get(key)
        if found is None:
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                sock_connect=limits.connect, sock_read=limits.read, connect=limits.pool
            )
        return found


class _Answer(httpx.Response):
    """A response to a direct call: its :attr:`request` (what was sent) is built only when something reads it."""

    sent: tuple[str, httpx.URL | str, CIMultiDict[str], bytes | None]

    @classmethod
    def received(cls, status: int, headers: Any, body: bytes, extensions: dict[str, Any]) -> _Answer:
        """The response for a body read whole, as ``httpx.Response(content=body)`` makes it. A body without a
        ``Content-Encoding`` is taken as it is, rather than streamed through httpx's decoders and chunker (which
        would hand back the same bytes); an encoded one is read (decoded) by httpx as before."""
        response = cls(status, headers=headers, stream=httpx.ByteStream(body), extensions=extensions)
        if body:
            response.headers.setdefault("Content-Length", str(len(body)))
        if "content-encoding" in response.headers:
            response.read()
        else:
            response._content = body
            response._num_bytes_downloaded = len(body)  # as httpx counts what came over the wire
            response.is_stream_consumed = response.is_closed = True
        return response

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            method, url, headers, content = self.sent
            self._request = httpx.Request(method, url, headers=list(headers.items()), content=content)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


def department_client(
    *,
    verify: ssl.SSLContext | bool,
    timeout: httpx.Timeout | float,
    max_connections: int,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """A pooled client for one department: at most ``max_connections`` open, all kept alive between calls."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = AiohttpTransport(verify=verify, limits=limits)
    return DepartmentClient(timeout=timeout, verify=verify, auth=auth, transport=transport)


def timed_out(exc: httpx.TimeoutException) -> bool:
    """Whether a timeout is one: httpx-aiohttp reports every aiohttp connection error (refused, reset, a TLS
    handshake refused) as ``ConnectTimeout``; those are a department out of reach, not a slow one."""
    cause = exc.__cause__
    return not isinstance(cause, aiohttp.ClientConnectionError) or isinstance(cause, aiohttp.ServerTimeoutError)
