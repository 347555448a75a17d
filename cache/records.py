"""What the cache hands back for one key, and the form it keeps between calls.

:class:`Fetched` is what one department said about one key and when; the source layer and the GraphQL layer
read it. :class:`CachedEntry` is what the cache stores: the records, when they were fetched, and whether the
department knew the key at all (a *not found* is cached too, for the shorter ``negative_ttl``)::

    >>> import datetime as dt
    >>> at = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)
    >>> entry = CachedEntry(records=({"XM": "Li Hua"},), fetched_at=at)
    >>> entry.to_fetched(now=at + dt.timedelta(seconds=90), stale=True)
    Fetched(records=({'XM': 'Li Hua'},), fetched_at=datetime.datetime(2026, 1, 5, 9, 30, tzinfo=datetime.timezone.utc), stale=True, age=90.0)
"""  # noqa: E501

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.base import Record

__all__ = ["CachedEntry", "Fetched", "Stamp"]


@dataclass(frozen=True, slots=True)
class Stamp:
    """The stored entry a value was read from, and until when it is fresh (POSIX seconds).

    Anything built from cached values (a whole response, see :mod:`cache.responses`) stays right while every
    entry it read is still stored unchanged and fresh: an invalidation, a refresh or an expiry changes or drops
    the stored text, in this process or, with Redis, in any other.
    """

    cache_key: str
    text: str
    fresh_until: float


@dataclass(frozen=True)
class Fetched:
    """What one department said about one key, and when.

    ``stale`` is true when the value was served past its freshness (while it is being refreshed, or because the
    department failed); ``age`` is then how many seconds old it was. ``records`` is empty when the department
    does not know the key.

    >>> import datetime as dt
    >>> Fetched(records=(), fetched_at=dt.datetime(2026, 1, 5, tzinfo=dt.UTC)).stale
    False
    """

    records: Sequence[Record]
    fetched_at: dt.datetime
    stale: bool = False
    age: float = 0.0
    # Set for a fresh value stored in the cache (read from it, or just loaded and stored); none when stale or when
    # the value is not cached.
    stamp: Stamp | None = field(default=None, repr=False, compare=False)
    # Whether the value was read from the cache rather than asked of the department in this call.
    cached: bool = field(default=False, repr=False, compare=False)


@dataclass(frozen=True)
class CachedEntry:
    """One key's answer as the cache keeps it. ``found`` is false for a cached *not found* (the sentinel).

    >>> import datetime as dt
    >>> CachedEntry.not_found(dt.datetime(2026, 1, 5, tzinfo=dt.UTC)).found
    False
    """

    records: tuple[Record, ...]
    fetched_at: dt.datetime
    found: bool = True
    # The stored form, once this entry was read from or encoded for the backend.
    text: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def not_found(cls, fetched_at: dt.datetime) -> CachedEntry:
        """The sentinel stored for a key the department does not know."""
        return cls(records=(), fetched_at=fetched_at, found=False)

    def age(self, now: dt.datetime) -> float:
        """Seconds since the department answered (never negative, whatever the clocks of other processes)."""
        return max(0.0, (now - self.fetched_at).total_seconds())

    def to_fetched(
        self, now: dt.datetime, *, stale: bool = False, stamp: Stamp | None = None, cached: bool = True
    ) -> Fetched:
        """The shape the source layer reads; ``age`` is filled in only for a stale value."""
        return Fetched(
            records=self.records,
            fetched_at=self.fetched_at,
            stale=stale,
            age=self.age(now) if stale else 0.0,
            stamp=stamp,
            cached=cached,
        )
