"""OneWindow's record cache: what departments said, kept for a while, served stale when they fail.

See :mod:`cache.store` for the windows and single-flight, :mod:`cache.flight` for single-flight across processes
sharing Redis, :mod:`cache.keys` for keys without personal data in clear, and :mod:`cache.codec` for the JSON
(never pickle) and AES-GCM values::

    async with RecordCache(config.cache) as cache:
        found = await cache.fetch(source, query, keys, config.sources[source].cache, call)
"""

from __future__ import annotations

from cache.codec import CodecError, EntryCodec, dumps_value, loads_value
from cache.keys import CacheKeys
from cache.records import CachedEntry, Fetched, Stamp
from cache.store import CacheStats, Call, RecordCache

__all__ = [
    "CacheKeys",
    "CacheStats",
    "CachedEntry",
    "Call",
    "CodecError",
    "EntryCodec",
    "Fetched",
    "RecordCache",
    "Stamp",
    "dumps_value",
    "loads_value",
]
