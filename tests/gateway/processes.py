"""Helpers of the tests that run gateway processes (``serve --workers``, the scale tests): waiting for what a
process says, which process answered, and forgetting what a test left in the shared Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import redis.asyncio as redis

from gateway.middleware.rate_limit import budget_key

__all__ = ["STARTUP", "forget", "rate_limit_secret", "served_pid", "until"]

STARTUP = 60.0  # seconds gateway processes may take to come up (each imports the gateway and opens every source)


async def until(done: Callable[[], bool], what: str, output: Callable[[], str] | None = None) -> None:
    """Wait until ``done()``; fail naming ``what`` (and what the processes said) after :data:`STARTUP` seconds."""
    deadline = time.monotonic() + STARTUP
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} took too long" + (f"; the gateway said:\n{output()}" if output else ""))
        await asyncio.sleep(0.05)


async def served_pid(client: httpx.AsyncClient) -> int:
    """The pid of the gateway process that answered ``/healthz``."""
    pid: int = (await client.get("/healthz")).json()["pid"]
    return pid


def rate_limit_secret(namespace: str) -> str:
    """The rate limit key secret of a test's ``namespace``."""
    return f"{namespace}-rate-limit-key-secret-0123456789"


async def forget(redis_url: str, namespace: str, subject: str) -> None:
    """Delete the test's cache entries and its principal's rate limit counters from Redis."""
    client = redis.Redis.from_url(redis_url)
    try:
        budget = budget_key(f"development:{subject}", rate_limit_secret(namespace).encode())
        for pattern in (f"{namespace}:*", f"*{budget}*"):
            async for key in client.scan_iter(match=pattern):
                await client.delete(key)
    finally:
        await client.aclose()
