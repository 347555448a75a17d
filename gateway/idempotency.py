"""Idempotency keys of the case workflow's mutations: the same key and input answer the first result again.

A client sends each action with a key of its choosing (a UUID per click of "receive"); a retry after a lost answer
sends the same key and gets the first answer, and nothing is written twice. The key is remembered with a
fingerprint of the input: the same key with another input is refused (``IDEMPOTENCY_CONFLICT``), as is a key whose
first request has not finished. A first request that failed leaves the key free for a retry.

Keys are scoped to the caller (two clerks' keys never meet) and stored hashed, in Redis when the cache is Redis
(every gateway process sees them), in this process's memory otherwise (the demo, one process)::

    store = MemoryIdempotency(ttl=86400)
    first = await store.begin("clerk-1", "k-1", fingerprint)     # None: go ahead, then finish() or release()
    await store.finish("clerk-1", "k-1", fingerprint, '{"caseNumber": ...}')
    again = await store.begin("clerk-1", "k-1", fingerprint)     # '{"caseNumber": ...}': answer it again
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache

from gateway.errors import ConfigError, IdempotencyConflict

__all__ = ["IdempotencyStore", "MemoryIdempotency", "RedisIdempotency", "fingerprint"]

MAX_KEY_LENGTH = 200
# Keys remembered by one process; the oldest go first beyond this (a hall's day is far fewer actions).
_MEMORY_KEYS = 100_000
_PENDING = None


def fingerprint(action: str, given: dict[str, Any]) -> str:
    """A digest of an action and its input, independent of key order.

    >>> fingerprint("rate", {"score": 5, "caseNumber": "BJ1"}) == fingerprint("rate", {"caseNumber": "BJ1", "score": 5})
    True
    """
    text = json.dumps([action, given], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _slot(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()


def _stored(raw: str | bytes, fingerprint: str) -> str:
    """The first result kept under a key, or the conflict it is."""
    record = json.loads(raw)
    if record["fingerprint"] != fingerprint:
        raise IdempotencyConflict("this idempotency key was used for a different input; use a new key")
    if record["result"] is _PENDING:
        raise IdempotencyConflict("the first request with this idempotency key has not finished; retry shortly")
    result: str = record["result"]
    return result


class IdempotencyStore(ABC):
    """Where keys and first results are kept, for ``ttl`` seconds."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl

    @abstractmethod
    async def begin(self, scope: str, key: str, fingerprint: str) -> str | None:
        """Claim ``key`` for this input: ``None`` when claimed now, the first result when it is known. Raises
        :class:`IdempotencyConflict` for another input, or while the first request runs."""

    @abstractmethod
    async def finish(self, scope: str, key: str, fingerprint: str, result: str) -> None:
        """Keep ``result`` as the answer to every later request with this key and input."""

    @abstractmethod
    async def release(self, scope: str, key: str) -> None:
        """The first request failed: the key may be used again."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryIdempotency(IdempotencyStore):
    """One process's keys, bounded and expiring (``clock``: seconds, injectable)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ttl)
        self._records: TTLCache[str, str] = TTLCache(_MEMORY_KEYS, ttl, timer=clock)

    async def begin(self, scope: str, key: str, fingerprint: str) -> str | None:
        slot = _slot(scope, key)
        raw = self._records.get(slot)
        if raw is not None:
            return _stored(raw, fingerprint)
        self._records[slot] = json.dumps({"fingerprint": fingerprint, "result": _PENDING})
        return None

    async def finish(self, scope: str, key: str, fingerprint: str, result: str) -> None:
        self._records[_slot(scope, key)] = json.dumps({"fingerprint": fingerprint, "result": result})

    async def release(self, scope: str, key: str) -> None:
        self._records.pop(_slot(scope, key), None)


class RedisIdempotency(IdempotencyStore):
    """Keys in Redis, shared by every gateway process: a claim is ``SET NX`` with the key's time to live."""

    def __init__(self, url: str, namespace: str, ttl: float) -> None:
        super().__init__(ttl)
        try:
            from redis.asyncio import Redis
        except ImportError:
            raise ConfigError("cache.url", "the workflow on Redis needs the redis extra: 'onewindow[redis]'") from None
        self._client = Redis.from_url(url)
        self._prefix = f"{namespace}:idempotency:"

    async def begin(self, scope: str, key: str, fingerprint: str) -> str | None:
        name = self._prefix + _slot(scope, key)
        pending = json.dumps({"fingerprint": fingerprint, "result": _PENDING})
        for _ in range(2):  # the first holder may expire between our SET and GET
            if await self._client.set(name, pending, nx=True, ex=max(1, round(self.ttl))):
                return None
            raw = await self._client.get(name)
            if raw is not None:
                return _stored(raw, fingerprint)
        raise IdempotencyConflict("the idempotency key could not be claimed; retry")

    async def finish(self, scope: str, key: str, fingerprint: str, result: str) -> None:
        record = json.dumps({"fingerprint": fingerprint, "result": result})
        await self._client.set(self._prefix + _slot(scope, key), record, ex=max(1, round(self.ttl)))

    async def release(self, scope: str, key: str) -> None:
        await self._client.delete(self._prefix + _slot(scope, key))

    async def aclose(self) -> None:
        await self._client.aclose()
