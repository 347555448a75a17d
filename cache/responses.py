"""Whole answers to hot documents: the same caller asking the same thing again is answered without executing.

Window software asks for the applicant at the counter several times while a case is handled; front ends poll the
same documents. When every value of an answer came fresh from the record cache, the answer itself is kept, per
caller and request (principal, method, document, variables, negotiated media type), together with the
:class:`~cache.records.Stamp` of every record it was built from. It is served again only while

- every stamp is still fresh and its record is stored unchanged in the record cache (an invalidation, a refresh or
  an expiry, in this process or -- with Redis -- in any other, ends it), and
- the disclosures it carries are audited anew for the new request (see :mod:`gateway.app`).

Authorization and masking ran when the answer was built, for this caller only: the key holds the whole principal,
so no caller ever receives an answer built for another. Answers with errors, stale values, values not from the
cache, time-dependent fields or roots other than the applicant lookups are never kept (the view decides)::

    responses = ResponseCache(config.cache.responses, records)
    key = responses.key(principal, [b"POST", body])
    hit = await responses.lookup(key)              # None, or an answer still right
    responses.store(key, CachedResponse(body, headers, stamps, disclosures))
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cachetools import LRUCache

from auth.audit import AuditEntry
from auth.principal import Principal
from cache.records import Stamp
from cache.store import RecordCache
from gateway.config import ResponseCacheConfig
from gateway.metrics import GatewayMetrics

__all__ = ["CachedResponse", "ResponseCache", "ResponseCacheStats"]

_COUNTERS = {"hit": "hits", "miss": "misses", "expired": "expired", "changed": "changed"}

# What one kept answer costs beyond its body and the texts of its stamps (key, object headers, bookkeeping).
_OVERHEAD = 512


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """One kept answer: its bytes and headers, the records it was built from, and what it disclosed (the audit
    entries of the request that built it; a hit writes them again under its own request id, time and client)."""

    body: bytes
    headers: tuple[tuple[str, str], ...]
    stamps: tuple[Stamp, ...]
    disclosures: tuple[AuditEntry, ...] = ()

    @property
    def fresh_until(self) -> float:
        return min(stamp.fresh_until for stamp in self.stamps)

    def size(self) -> int:
        return len(self.body) + sum(len(s.text) + len(s.cache_key) for s in self.stamps) + _OVERHEAD

    def disclosed_again(
        self, *, request_id: str, client: str | None, client_request_id: str | None = None
    ) -> list[AuditEntry]:
        """The disclosures of this answer, as the request now served makes them: now, its ids, its client."""
        at = dt.datetime.now(dt.UTC)
        return [
            dataclasses.replace(e, at=at, request_id=request_id, client_request_id=client_request_id, client=client)
            for e in self.disclosures
        ]


@dataclass
class ResponseCacheStats:
    """Counters since start: ``hits``; ``misses`` (nothing kept); ``expired`` and ``changed`` (kept, but a record
    went past its freshness or changed); ``stored`` answers."""

    hits: int = 0
    misses: int = 0
    expired: int = 0
    changed: int = 0
    stored: int = 0


class ResponseCache:
    """Answers kept in this process, bounded by ``config.max_bytes`` (least recently used go first)."""

    def __init__(
        self, config: ResponseCacheConfig, records: RecordCache, *, metrics: GatewayMetrics | None = None
    ) -> None:
        self.config = config
        self.records = records
        self.metrics = metrics
        self.stats = ResponseCacheStats()
        self._entries: LRUCache[bytes, CachedResponse] = LRUCache(
            maxsize=max(config.max_bytes, 1), getsizeof=CachedResponse.size
        )

    @staticmethod
    def key(principal: Principal, parts: Iterable[bytes]) -> bytes:
        """The key of one caller's request: every attribute of the principal that policy reads, then ``parts``."""
        digest = hashlib.blake2b(digest_size=20)
        identity = (
            principal.via,
            principal.subject,
            str(principal.kind),
            principal.department,
            principal.window,
            sorted(principal.roles),
            sorted(principal.scopes),
            principal.id_number,
        )
        digest.update(repr(identity).encode())
        for part in parts:
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.digest()

    async def lookup(self, key: bytes) -> CachedResponse | None:
        """The answer kept under ``key`` if it is still right: fresh, and built from records stored unchanged."""
        entry = self._entries.get(key)
        if entry is None:
            result = "miss"
        elif time.time() > entry.fresh_until:
            result = "expired"
        elif not await self.records.unchanged(entry.stamps):
            result = "changed"
        else:
            result = "hit"
        setattr(self.stats, _COUNTERS[result], getattr(self.stats, _COUNTERS[result]) + 1)
        if self.metrics is not None:
            self.metrics.response_cache(result)
        if result == "hit":
            return entry
        if entry is not None:
            self._drop(key)
        return None

    def store(self, key: bytes, entry: CachedResponse) -> bool:
        """Keep ``entry`` if it is worth keeping: built from at least one record, fresh, not too large."""
        if not entry.stamps or time.time() >= entry.fresh_until:
            return False
        if entry.size() > min(self.config.max_entry_bytes, self._entries.maxsize):
            return False
        self._entries[key] = entry
        self.stats.stored += 1
        return True

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: bytes) -> None:
        self._entries.pop(key, None)


def stamps_of(stamps: Sequence[Stamp]) -> tuple[Stamp, ...]:
    """``stamps`` without repeats (one record read by several fields is validated once)."""
    return tuple({(s.cache_key, s.text): s for s in stamps}.values())
