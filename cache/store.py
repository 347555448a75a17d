"""The record cache in front of every department call: freshness windows, stale serving and single-flight.

A source's :class:`~gateway.config.CachePolicy` gives the windows of RFC 5861: an answer is *fresh* for ``ttl``
(``negative_ttl`` for a key the department does not know); for ``stale_while_revalidate`` more it is served
marked stale while one background call refreshes it; for ``stale_if_error`` more it is served marked stale when
the department fails. Keys still missing go to the department in one call, and identical calls in flight in this
process are made once (*single-flight*): a hundred requests for one person cost the department one call.

The cache lives in memory (``memory://``) or in Redis (``redis://host:port/db``), which every gateway process
shares -- a value cached or invalidated by one is seen by all. With Redis, single-flight holds across the processes
too (:mod:`cache.flight`): before calling the department for a key, a process takes a short lease on it
(``cache.lease``); a process finding the lease held waits for the holder's answer to be stored and reads it
(counted as ``coalesced_remote``), and calls the department itself only if the holder fails, dies or stores
nothing -- so a burst for one uncached person across every process costs the department one call. A cache that
fails (Redis down) is logged and read as a miss, and a lease that cannot be taken is no lease: the departments
still answer::

    cache = RecordCache(config.cache)
    found = await cache.fetch("civil_affairs", "marriage", ["110101199003074518"], source.cache, call)
    found["110101199003074518"].records    # what the department said, from the cache or not
    await cache.invalidate("civil_affairs", "110101199003074518")
    await cache.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from aiocache import SimpleMemoryCache
from aiocache.serializers import StringSerializer

from adapters.base import Record
from cache.codec import CodecError, EntryCodec
from cache.flight import Claim, Flight
from cache.keys import CacheKeys
from cache.records import CachedEntry, Fetched, Stamp
from gateway.config import CacheConfig, CachePolicy
from gateway.errors import ConfigError, SourceError

__all__ = ["CacheStats", "Call", "CoalescedLoad", "RecordCache"]

logger = logging.getLogger("onewindow.cache")

Call = Callable[[Sequence[str]], Awaitable[Mapping[str, Sequence[Record]]]]
"""The department call the cache makes for missing keys: records per key; a key it does not know is absent."""

_Slot = tuple[str, str, str | None, str]  # (source, query, scope, key) of one in-flight load
_DELETE_CHUNK = 500


CoalescedLoad = Literal["local", "remote"]
"""Whose load a coalesced key was answered by: one in flight in this process, or another process's (Redis)."""


@dataclass
class CacheStats:
    """Counters since start: per key, ``hits`` (fresh), ``negative_hits`` (fresh *not found*), ``stale_hits``
    (served stale, while revalidating or on error), ``misses`` (had to be loaded), ``coalesced`` (joined a load
    already in flight in this process) and ``coalesced_remote`` (answered by another process's load, with Redis);
    ``calls`` to departments; ``errors`` of the cache backend itself."""

    hits: int = 0
    stale_hits: int = 0
    misses: int = 0
    calls: int = 0
    negative_hits: int = 0
    coalesced: int = 0
    coalesced_remote: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Windows:
    ttl: float
    negative_ttl: float
    stale_while_revalidate: float
    stale_if_error: float

    def fresh_for(self, entry: CachedEntry) -> float:
        return self.ttl if entry.found else self.negative_ttl

    def kept_for(self, entry: CachedEntry) -> float:
        """How long the backend keeps an entry: long enough to serve it stale in either window."""
        return self.fresh_for(entry) + max(self.stale_while_revalidate, self.stale_if_error)


@dataclass(frozen=True)
class _Load:
    """One load started by a fetch: what it calls, how long its answers keep, and its keys' futures."""

    source: str
    query: str
    scope: str | None
    call: Call
    windows: _Windows
    cache_keys: Mapping[str, str]
    futures: Mapping[str, asyncio.Future[CachedEntry]]
    background: bool


def _fail(load: _Load, keys: Sequence[str], exc: BaseException) -> None:
    """Settle the futures of ``keys`` still pending with ``exc`` (cancelled when the load was)."""
    for key in keys:
        future = load.futures[key]
        if future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters read it; a refresh nobody awaits must not warn


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(cache_key: str, entry: CachedEntry, fresh_for: float) -> Stamp | None:
    """The stamp of a value stored as ``entry.text``: fresh until ``fresh_for`` after the department answered."""
    if entry.text is None:
        return None
    return Stamp(cache_key, entry.text, entry.fetched_at.timestamp() + fresh_for)


def _backend_factory(url: str) -> Callable[[], Any]:
    """Checks ``cache.url`` and returns what opens its aiocache backend (values are stored as the codec's text)."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return lambda: SimpleMemoryCache(serializer=StringSerializer(), timeout=None)  # in-process: nothing to wait for
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError("cache.url", f"{url.split('://')[0]!r} is not a cache (use memory:// or redis://)")
    try:
        from aiocache.backends.redis import RedisCache
    except ImportError:
        raise ConfigError("cache.url", "a Redis cache needs the redis extra: pip install 'onewindow[redis]'") from None
    try:
        db = int(parts.path.strip("/") or 0)
        port = parts.port or 6379
    except ValueError:
        raise ConfigError("cache.url", "expected redis://[:password@]host[:port][/db]") from None
    return lambda: RedisCache(
        serializer=StringSerializer(),
        endpoint=parts.hostname or "127.0.0.1",
        port=port,
        db=db,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
    )


class RecordCache:
    """The gateway's record cache, built from the ``cache`` section; open for the life of the app::

        cache = RecordCache(CacheConfig())              # memory, per-process key secret

        async def call(keys):                           # the department
            return {k: [{"id": k}] for k in keys if k != "unknown"}

        found = await cache.fetch("civil_affairs", "marriage", ["A1", "unknown"], CachePolicy(), call)
        found["unknown"].records                        # ()
        await cache.aclose()

    Construction checks the configuration (:class:`ConfigError` naming ``cache.url``, ``cache.key_secret`` or
    ``cache.encryption_key``) and connects to nothing: Redis is reached on first use.
    """

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        open_backend = _backend_factory(config.url)
        self.keys = CacheKeys.from_config(config)
        self.codec = EntryCodec.from_config(config)
        self.shared = not config.url.startswith("memory://")
        self.stats = CacheStats()
        self._backend = open_backend()  # last: nothing to close when the configuration is wrong
        self._flight = (
            Flight(
                self._backend.client, self.keys, lease=config.lease, timeout=self._backend.timeout, on_error=self._error
            )
            if self.shared
            else None
        )
        self._inflight: dict[_Slot, asyncio.Future[CachedEntry]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_coalesced: Callable[[str, CoalescedLoad], None] | None = None
        """Told the source of each key answered by a load it did not start (the gateway's metrics)."""

    def _error(self) -> None:
        self.stats.errors += 1

    def _coalesced(self, source: str, load: CoalescedLoad) -> None:
        if load == "local":
            self.stats.coalesced += 1
        else:
            self.stats.coalesced_remote += 1
        if self.on_coalesced is not None:
            self.on_coalesced(source, load)

    async def __aenter__(self) -> RecordCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the loads and refreshes still running, then close the backend."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.shared:
            await self._backend.client.aclose()  # aiocache's close() calls redis' deprecated close()
        else:
            await self._backend.close()

    # -- reading -------------------------------------------------------------------------------------------------

    async def fetch(
        self,
        source: str,
        query: str,
        keys: Sequence[str],
        policy: CachePolicy,
        call: Call,
        *,
        scope: str | None = None,
    ) -> dict[str, Fetched]:
        """What ``source`` says about each of ``keys`` under ``query``, from the cache when ``policy`` allows.

        Missing and expired keys are loaded with one ``call`` (keys already being loaded in this process are
        awaited instead). A key absent from the call's answer is *not found*: ``Fetched(records=())``, cached for
        ``negative_ttl``. When ``call`` raises a :class:`SourceError`, keys with a value inside ``stale_if_error``
        are served stale; the error is raised only if some key has none. ``scope`` (the caller) is required when
        the policy has ``vary_by_caller``, and ignored otherwise.
        """
        wanted = list(dict.fromkeys(keys))
        if policy.never_cache:
            self.stats.misses += len(wanted)
            self.stats.calls += 1
            found = await call(wanted)
            at = _now()
            return {key: Fetched(records=tuple(found.get(key, ())), fetched_at=at) for key in wanted}
        if policy.vary_by_caller and scope is None:
            raise ValueError(f"{source}.{query} is cached per caller (vary_by_caller): a scope is required")
        scope = scope if policy.vary_by_caller else None
        windows = _Windows(
            ttl=policy.ttl or self.config.ttl,
            negative_ttl=policy.negative_ttl or self.config.negative_ttl,
            stale_while_revalidate=policy.stale_while_revalidate,
            stale_if_error=policy.stale_if_error,
        )
        cache_keys = {key: self.keys.entry(source, query, key, scope) for key in wanted}
        raws = await self._read_raw([cache_keys[k] for k in wanted])
        cached = {key: self._decode(cache_keys[key], raw) for key, raw in zip(wanted, raws, strict=True)}

        now = _now()
        result: dict[str, Fetched] = {}
        to_load: list[str] = []
        to_refresh: list[str] = []
        for key in wanted:
            entry = cached[key]
            if entry is None:
                to_load.append(key)
                continue
            age, fresh_for = entry.age(now), windows.fresh_for(entry)
            if age <= fresh_for:
                result[key] = entry.to_fetched(now, stamp=_stamp(cache_keys[key], entry, fresh_for))
                if entry.found:
                    self.stats.hits += 1
                else:
                    self.stats.negative_hits += 1
            elif age <= fresh_for + windows.stale_while_revalidate:
                result[key] = entry.to_fetched(now, stale=True)
                self.stats.stale_hits += 1
                to_refresh.append(key)
            else:
                to_load.append(key)

        if to_refresh:
            self._join_or_load(source, query, scope, to_refresh, call, windows, cache_keys, background=True)
        if to_load:
            self.stats.misses += len(to_load)
            loads = self._join_or_load(source, query, scope, to_load, call, windows, cache_keys, background=False)
            # asyncio.wait, not gather: a caller that gives up does not cancel a load others are waiting for
            await asyncio.wait(set(loads.values()))
            now = _now()
            error: BaseException | None = None
            for key in to_load:
                future = loads[key]
                exc = future.exception()
                if exc is None:
                    loaded = future.result()
                    stamp = _stamp(cache_keys[key], loaded, windows.fresh_for(loaded))
                    result[key] = loaded.to_fetched(now, stamp=stamp, cached=False)
                    continue
                entry = cached[key]
                usable = entry is not None and entry.age(now) <= windows.fresh_for(entry) + windows.stale_if_error
                if isinstance(exc, SourceError) and entry is not None and usable:
                    result[key] = entry.to_fetched(now, stale=True)
                    self.stats.stale_hits += 1
                elif error is None:
                    error = exc
            if error is not None:
                raise error
        return {key: result[key] for key in wanted}

    async def _read_raw(self, cache_keys: list[str]) -> list[str | None]:
        try:
            raws: list[str | None] = await self._backend.multi_get(cache_keys)
        except Exception as exc:  # a cache that is down is a miss, not a failed request
            self.stats.errors += 1
            logger.warning("cache read failed, treated as a miss: %r", exc)
            return [None] * len(cache_keys)
        return raws

    def _decode(self, cache_key: str, raw: str | bytes | None) -> CachedEntry | None:
        return None if raw is None else self.codec.decode(raw, key=cache_key)

    async def unchanged(self, stamps: Sequence[Stamp]) -> bool:
        """Whether every entry still holds the text it was read with (not invalidated, refreshed or expired).
        One read of the backend; a backend that fails answers no."""
        if not stamps:
            return True
        try:
            raws = await self._backend.multi_get([stamp.cache_key for stamp in stamps])
        except Exception as exc:
            self.stats.errors += 1
            logger.warning("cache read failed: %r", exc)
            return False
        return all(raw == stamp.text for raw, stamp in zip(raws, stamps, strict=True))

    # -- loading -------------------------------------------------------------------------------------------------

    def _join_or_load(
        self,
        source: str,
        query: str,
        scope: str | None,
        keys: list[str],
        call: Call,
        windows: _Windows,
        cache_keys: Mapping[str, str],
        *,
        background: bool,
    ) -> dict[str, asyncio.Future[CachedEntry]]:
        """A future per key: the load already in flight for it, or one new load (one ``call``) for the rest."""
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[CachedEntry]] = {}
        mine: list[str] = []
        for key in keys:
            slot = (source, query, scope, key)
            future = self._inflight.get(slot)
            if future is None:
                future = self._inflight[slot] = loop.create_future()
                mine.append(key)
            elif not background:
                self._coalesced(source, "local")
            futures[key] = future
        if mine:
            # The load is the cache's task, not the caller's: it outlives a caller that is cancelled
            load = _Load(source, query, scope, call, windows, cache_keys, futures, background)
            task = loop.create_task(self._load(load, mine), name=f"onewindow.cache.load {source}.{query}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return futures

    async def _load(self, load: _Load, keys: list[str]) -> None:
        """Settle the futures of ``keys``: from the department or, with Redis, from another process's load."""
        try:
            if self._flight is None:
                await self._call(load, keys, token=None)
            else:
                await self._load_shared(load, keys, self._flight)
        except BaseException as exc:
            _fail(load, keys, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            for key in keys:
                slot = (load.source, load.query, load.scope, key)
                if self._inflight.get(slot) is load.futures[key]:
                    del self._inflight[slot]

    async def _load_shared(self, load: _Load, keys: list[str], flight: Flight) -> None:
        """Call the department for the keys whose lease this process takes; wait for the others' answers, taking
        over a key whose lease its holder leaves without storing one."""
        token = secrets.token_hex(16)
        by_cache_key = {load.cache_keys[key]: key for key in keys}

        def usable(cache_key: str, raw: bytes | None) -> CachedEntry | None:
            entry = self._decode(cache_key, raw)
            return entry if entry is not None and entry.age(_now()) <= load.windows.fresh_for(entry) else None

        def settle(claim: Claim, group: asyncio.TaskGroup) -> None:
            for cache_key, entry in claim.answered.items():
                future = load.futures[by_cache_key[cache_key]]
                if not future.done():
                    future.set_result(entry)
                self._coalesced(load.source, "remote")
            if claim.owned:
                owned = [by_cache_key[cache_key] for cache_key in claim.owned]
                group.create_task(self._call(load, owned, token=token if claim.leased else None))

        async def await_others(held: list[str], group: asyncio.TaskGroup) -> None:
            async with contextlib.aclosing(flight.awaiting(held, token, usable)) as claims:
                async for claim in claims:
                    settle(claim, group)

        claim = await flight.claim(list(by_cache_key), token, usable)
        async with asyncio.TaskGroup() as group:
            settle(claim, group)
            if claim.held:
                group.create_task(await_others(claim.held, group))

    async def _call(self, load: _Load, keys: list[str], *, token: str | None) -> None:
        """One department call for ``keys``, its answers stored; with ``token``, the leases held under it are
        released after (at once when the call fails, so that waiting processes take over)."""
        try:
            self.stats.calls += 1
            found = await load.call(keys)
            at = _now()
            entries = {
                key: self._encoded(
                    load.cache_keys[key],
                    CachedEntry(tuple(found[key]), at) if key in found else CachedEntry.not_found(at),
                )
                for key in keys
            }
            for key in keys:
                if not load.futures[key].done():
                    load.futures[key].set_result(entries[key])
            # the futures stay in flight until stored, so a fetch arriving meanwhile reuses them
            await self._write([(load.cache_keys[key], entries[key]) for key in keys], load.windows)
        except Exception as exc:
            _fail(load, keys, exc)
            if load.background:
                logger.warning("background refresh of %s.%s failed: %s", load.source, load.query, exc)
        finally:
            if token is not None and self._flight is not None:
                await self._flight.landed([load.cache_keys[key] for key in keys], token)

    def _encoded(self, cache_key: str, entry: CachedEntry) -> CachedEntry:
        """``entry`` with the text it is stored as (none when a record holds a value the codec cannot carry)."""
        try:
            return dataclasses.replace(entry, text=self.codec.encode(entry, key=cache_key))
        except CodecError as exc:
            logger.warning("entry %s is not cached: %s", cache_key, exc)
            return entry

    async def _write(self, items: list[tuple[str, CachedEntry]], windows: _Windows) -> None:
        by_expiry: dict[float, list[tuple[str, str]]] = {}
        for cache_key, entry in items:
            if entry.text is not None:
                by_expiry.setdefault(windows.kept_for(entry), []).append((cache_key, entry.text))
        for expiry, pairs in by_expiry.items():
            try:
                await self._backend.multi_set(pairs, ttl=float(expiry))
            except Exception as exc:  # not cached this time; the answer itself is fine
                self.stats.errors += 1
                logger.warning("cache write failed: %r", exc)

    # -- invalidation --------------------------------------------------------------------------------------------

    async def invalidate(self, source: str, key: str | None = None) -> int:
        """Drop ``source``'s entries for ``key`` (every query and caller), or all of its entries when ``key`` is
        ``None``; return how many were dropped. With Redis, every gateway process sharing it sees the change.

        A load already in flight stores its answer when it completes, as it would have a moment later.
        """
        pattern = self.keys.source_pattern(source, key)
        if not self.shared:
            names = [name for name in list(await self._backend.raw("keys")) if fnmatchcase(name, pattern)]
            dropped = 0
            for name in names:
                dropped += int(await self._backend.delete(name))
            return dropped
        found: list[bytes] = []
        cursor = 0
        while True:
            cursor, batch = await self._backend.raw("scan", cursor, match=pattern, count=1000)
            found.extend(batch)
            if not cursor:
                break
        dropped = 0
        for start in range(0, len(found), _DELETE_CHUNK):
            dropped += int(await self._backend.raw("delete", *found[start : start + _DELETE_CHUNK]))
        return dropped
