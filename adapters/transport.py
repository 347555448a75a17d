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
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["department_client", "timed_out"]


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
    return httpx.AsyncClient(timeout=timeout, verify=verify, auth=auth, transport=transport)


def timed_out(exc: httpx.TimeoutException) -> bool:
    """Whether a timeout is one: httpx-aiohttp reports every aiohttp connection error (refused, reset, a TLS
    handshake refused) as ``ConnectTimeout``; those are a department out of reach, not a slow one."""
    cause = exc.__cause__
    return not isinstance(cause, aiohttp.ClientConnectionError) or isinstance(cause, aiohttp.ServerTimeoutError)
