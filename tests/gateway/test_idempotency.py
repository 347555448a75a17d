"""Idempotency keys (:mod:`gateway.idempotency`): in one process's memory and in Redis, shared by processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.errors import IdempotencyConflict
from gateway.idempotency import IdempotencyStore, MemoryIdempotency, RedisIdempotency, fingerprint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[IdempotencyStore, IdempotencyStore]]:
    """Two stores that should see the same keys: one memory store twice, or two Redis clients (two processes)."""
    if request.param == "memory":
        store = MemoryIdempotency(ttl=60)
        yield store, store
        return
    url = request.getfixturevalue("redis_url")
    namespace = f"s17-workflow-test-{uuid.uuid4().hex[:8]}"
    first, second = RedisIdempotency(url, namespace, 60), RedisIdempotency(url, namespace, 60)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_first_result_answers_every_replay(stores: tuple[IdempotencyStore, IdempotencyStore]) -> None:
    one, other = stores
    digest = fingerprint("rateCase", {"caseNumber": "BJ1", "score": 5})
    assert await one.begin("clerk", "k1", digest) is None
    with pytest.raises(IdempotencyConflict, match="not finished"):
        await other.begin("clerk", "k1", digest)
    await one.finish("clerk", "k1", digest, '{"caseNumber": "BJ1"}')
    assert await other.begin("clerk", "k1", digest) == '{"caseNumber": "BJ1"}'
    with pytest.raises(IdempotencyConflict, match="different input"):
        await other.begin("clerk", "k1", fingerprint("rateCase", {"caseNumber": "BJ1", "score": 4}))
    # keys are the caller's own: another clerk's k1 is another key
    assert await other.begin("other-clerk", "k1", digest) is None


async def test_a_failed_first_request_frees_its_key(stores: tuple[IdempotencyStore, IdempotencyStore]) -> None:
    one, other = stores
    digest = fingerprint("receiveApplication", {"applicant": "x"})
    assert await one.begin("clerk", "k2", digest) is None
    await one.release("clerk", "k2")
    assert await other.begin("clerk", "k2", digest) is None


async def test_keys_in_memory_expire_with_the_clock() -> None:
    clock = Clock()
    store = MemoryIdempotency(ttl=60, clock=clock)
    digest = fingerprint("a", {})
    assert await store.begin("clerk", "k", digest) is None
    await store.finish("clerk", "k", digest, "{}")
    clock.now += 59
    assert await store.begin("clerk", "k", digest) == "{}"
    clock.now += 2
    assert await store.begin("clerk", "k", digest) is None
