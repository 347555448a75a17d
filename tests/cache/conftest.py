"""Fixtures for the cache tests: a department stand-in that counts its calls, and caches closed after each test."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pytest
import redis.asyncio as redis

from cache import RecordCache
from gateway.config import CacheConfig
from gateway.errors import SourceError

KEY_SECRET = "a-secret-every-gateway-process-shares"


class Department:
    """The department behind a source: answers from ``records``, counts calls, can be slow or fail, and with a
    ``gate`` answers only once it is set."""

    def __init__(self, records: Mapping[str, list[dict[str, Any]]], *, delay: float = 0.0) -> None:
        self.records = dict(records)
        self.delay = delay
        self.failure: SourceError | None = None
        self.gate: asyncio.Event | None = None
        self.calls: list[list[str]] = []

    async def __call__(self, keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        self.calls.append(list(keys))
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return {key: self.records[key] for key in keys if key in self.records}


@pytest.fixture
def department() -> Callable[..., Department]:
    return Department


@pytest.fixture
async def memory_cache() -> AsyncIterator[Callable[..., RecordCache]]:
    """``memory_cache(**cache_config)``: a memory cache, closed after the test."""
    opened: list[RecordCache] = []

    def make(**config: Any) -> RecordCache:
        cache = RecordCache(CacheConfig(**config))
        opened.append(cache)
        return cache

    yield make
    for cache in opened:
        await cache.aclose()


@pytest.fixture
def encryption_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def redis_namespace() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def redis_cache(
    redis_url: str, redis_client: redis.Redis, redis_namespace: str
) -> AsyncIterator[Callable[..., RecordCache]]:
    """``redis_cache(**cache_config)``: a Redis cache in this test's own namespace, shared by every cache the test
    makes; its keys (entries and leases) are deleted after the test."""
    namespace = redis_namespace
    opened: list[RecordCache] = []

    def make(**config: Any) -> RecordCache:
        config = {"url": redis_url, "namespace": namespace, "key_secret": KEY_SECRET, **config}
        cache = RecordCache(CacheConfig(**config))
        opened.append(cache)
        return cache

    yield make
    for cache in opened:
        await cache.aclose()
    for pattern in (f"{namespace}:*", f"{namespace}#*"):
        async for key in redis_client.scan_iter(match=pattern):
            await redis_client.delete(key)
