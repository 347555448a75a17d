"""Single-flight across gateway processes sharing a Redis: one department call for a key, however many ask.

Within one process, :class:`~cache.store.RecordCache` joins identical loads in flight. Across processes, a load
first takes a short *lease* per entry (``SET <lease> <token> NX PX <cache.lease>``, named by
:meth:`~cache.keys.CacheKeys.lease` from the entry's hashed key, so no ID number appears in it). The process that
holds a key's lease calls the department; the others wait for its answer to be stored, woken by a message on the
namespace's channel (:meth:`~cache.keys.CacheKeys.flight_channel`) and polling the entry in case a message is
missed. A holder releases its leases once its answer is stored, or at once when its call failed -- only leases
still its own (a compare-and-delete script) -- and a waiter whose key's lease is free takes it and calls the
department itself: the holder failed, died, or stored nothing. Nobody waits longer than one lease.

Taking a lease and reading the entry are one round trip, in that order: a holder stores before it releases, so a
process that gets a lease either finds the answer stored or is right to call. Redis failing while leasing is a
miss, as everywhere in the cache: the process calls the department itself::

    flight = Flight(client, keys, lease=5.0, timeout=5.0)
    claim = await flight.claim(cache_keys, token, usable)     # usable: raw text -> a fresh entry, or None
    claim.owned      # call the department for these, then: await flight.landed(claim.owned, token)
    claim.answered   # stored by another process meanwhile
    async for later in flight.awaiting(claim.held, token, usable):
        ...          # answers as they are stored, and keys whose lease was left to take over
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cache.keys import CacheKeys
from cache.records import CachedEntry

__all__ = ["Claim", "Flight"]

logger = logging.getLogger("onewindow.cache")

Usable = Callable[[str, bytes | None], CachedEntry | None]
"""What an entry's stored text is worth to the load waiting for it: a fresh entry, or ``None`` to go on."""

_POLL = 0.25  # seconds between reads of the entries awaited, when no message came; at most a quarter of the lease

# Deletes each lease still holding the token (ARGV[1]): a lease that expired and was taken over is left alone.
_RELEASE = """
local released = 0
for _, lease in ipairs(KEYS) do
  if redis.call('get', lease) == ARGV[1] then
    released = released + redis.call('del', lease)
  end
end
return released
"""


@dataclass
class Claim:
    """Where each entry of a load stands: ``owned`` (this process calls the department), ``answered`` (stored by
    another process) or ``held`` (another process is loading it). ``leased``: the owned keys are under this
    process's leases, to release when done; not so when Redis failed and the process calls regardless."""

    owned: list[str] = field(default_factory=list)
    answered: dict[str, CachedEntry] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    leased: bool = True


class Flight:
    """The leases and announcements of one :class:`~cache.store.RecordCache` on its Redis ``client``."""

    def __init__(
        self,
        client: Any,
        keys: CacheKeys,
        *,
        lease: float,
        timeout: float | None,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.lease = lease
        self.timeout = timeout  # of one Redis round trip: a Redis that hangs is a Redis that fails
        self._on_error = on_error  # counted with the cache's own errors
        self._poll = min(_POLL, lease / 4)

    async def claim(self, cache_keys: Sequence[str], token: str, usable: Usable) -> Claim:
        """Take the free leases of ``cache_keys`` under ``token`` and read the entries, in one round trip."""
        try:
            async with asyncio.timeout(self.timeout), self.client.pipeline(transaction=False) as pipe:
                for cache_key in cache_keys:
                    pipe.set(self.keys.lease(cache_key), token, nx=True, px=max(1, round(self.lease * 1000)))
                pipe.mget(cache_keys)
                *taken, raws = await pipe.execute()
        except Exception as exc:  # a cache that is down is a miss: the department is called
            self._on_error()
            logger.warning("cache lease failed, the department is called: %r", exc)
            return Claim(owned=list(cache_keys), leased=False)
        claim = Claim()
        surplus: list[str] = []  # leases taken on keys another process had just answered
        for cache_key, got, raw in zip(cache_keys, taken, raws, strict=True):
            entry = usable(cache_key, raw)
            if entry is not None:
                claim.answered[cache_key] = entry
                if got:
                    surplus.append(cache_key)
            elif got:
                claim.owned.append(cache_key)
            else:
                claim.held.append(cache_key)
        if surplus:
            await self.release(surplus, token)
        return claim

    async def landed(self, cache_keys: Sequence[str], token: str, *, announce: bool = True) -> None:
        """Release the leases of ``cache_keys`` still held under ``token`` and, with ``announce``, tell the waiting
        processes to read the entries -- after the answers were stored, or at once when the call failed."""
        try:
            async with asyncio.timeout(self.timeout), self.client.pipeline(transaction=False) as pipe:
                pipe.eval(_RELEASE, len(cache_keys), *(self.keys.lease(key) for key in cache_keys), token)
                if announce:  # after the release: a waiter woken by the message finds the lease free
                    pipe.publish(self.keys.flight_channel(), "\n".join(cache_keys))
                await pipe.execute()
        except Exception as exc:  # the leases expire by themselves
            self._on_error()
            logger.warning("cache lease release failed: %r", exc)

    async def release(self, cache_keys: Sequence[str], token: str) -> None:
        """Release the leases of ``cache_keys`` still held under ``token``, announcing nothing."""
        await self.landed(cache_keys, token, announce=False)

    async def awaiting(self, cache_keys: Sequence[str], token: str, usable: Usable) -> AsyncGenerator[Claim, None]:
        """Wait for other processes' answers to ``cache_keys``, yielding a :class:`Claim` of the keys answered or
        taken over each time some are; within one lease every key is one or the other (taken over without a lease
        when another process still holds it then, or when Redis failed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease
        waiting = list(cache_keys)
        pubsub = await self._subscribe()  # first, then read: an answer stored meanwhile is read or announced
        try:
            while waiting:
                claim = await self.claim(waiting, token, usable)
                if claim.held and loop.time() >= deadline:
                    logger.warning("%d cache leases outlived their time, the department is called", len(claim.held))
                    claim.owned, claim.held = claim.owned + claim.held, []  # their release leaves others' leases
                waiting = claim.held
                if claim.owned or claim.answered:
                    yield claim
                if waiting:
                    wait = min(self._poll, max(0.0, deadline - loop.time()))
                    pubsub = await self._notified(pubsub, set(waiting), wait)
        finally:
            if pubsub is not None:
                await self._close(pubsub)

    async def _subscribe(self) -> Any:
        """A subscription to the namespace's announcements, or ``None`` (polling only) when Redis refuses it."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            async with asyncio.timeout(self.timeout):
                await pubsub.subscribe(self.keys.flight_channel())
        except Exception as exc:
            self._on_error()
            logger.warning("cache announcements unavailable, polling: %r", exc)
            await self._close(pubsub)
            return None
        return pubsub

    async def _notified(self, pubsub: Any, waiting: set[str], wait: float) -> Any:
        """Return when an announcement names one of ``waiting``, or after ``wait`` seconds; the subscription, or
        ``None`` once it failed."""
        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        while (left := end - loop.time()) > 0:
            if pubsub is None:
                await asyncio.sleep(left)
                break
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            except Exception as exc:  # the polling goes on
                self._on_error()
                logger.warning("cache announcements lost, polling: %r", exc)
                await self._close(pubsub)
                pubsub = None
                continue
            if message is None or message["type"] != "message":
                continue
            if not waiting.isdisjoint(message["data"].decode("ascii").split("\n")):
                break
        return pubsub

    @staticmethod
    async def _close(pubsub: Any) -> None:
        try:
            await pubsub.aclose()
        except Exception as exc:
            logger.debug("closing a cache subscription failed: %r", exc)
