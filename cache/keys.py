"""Cache keys that carry no personal data in clear.

A key is ``<namespace>:<source>:<query>:<hmac(key)>``, or ``<namespace>:<source>:<query>:<hmac(scope)>:<hmac(key)>``
for a source cached per caller (``vary_by_caller``). The HMAC-SHA256 is keyed with ``cache.key_secret``, so an
ID number cannot be recovered from Redis by hashing candidate numbers. Namespace, source and query stay readable
(percent-encoded, so that no name holds a ``:`` or a glob character) to let an operator -- and
:meth:`CacheKeys.source_pattern` -- find a source's entries.

With Redis, a load in flight holds a *lease* named after its entry's key (:meth:`CacheKeys.lease`), and loads
that completed are announced on one channel per namespace (:meth:`CacheKeys.flight_channel`). Both live beside the
namespace, not under it (``<namespace>#lease:...``; ``#`` never appears in a percent-encoded name), so that scanning
a namespace or invalidating a source finds entries only.

Processes sharing a Redis must share the secret, so with Redis it is required; in memory a random secret per
process does::

    >>> keys = CacheKeys("onewindow", b"s3cret-shared-by-all-gateways")
    >>> keys.entry("civil_affairs", "marriage", "110101199003074518")[:45]
    'onewindow:civil_affairs:marriage:e12a89e96d64'
    >>> keys.lease(keys.entry("civil_affairs", "marriage", "110101199003074518"))[:51]
    'onewindow#lease:civil_affairs:marriage:e12a89e96d64'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import quote

from gateway.config import CacheConfig
from gateway.errors import ConfigError

__all__ = ["MIN_KEY_SECRET_LENGTH", "CacheKeys"]

MIN_KEY_SECRET_LENGTH = 16


def _segment(name: str) -> str:
    return quote(name, safe="")


class CacheKeys:
    """Builds the cache keys of one gateway (one namespace, one secret)."""

    def __init__(self, namespace: str, secret: bytes) -> None:
        if not secret:
            raise ValueError("a key secret must not be empty")
        self.namespace = namespace
        self._secret = secret

    @classmethod
    def from_config(cls, config: CacheConfig) -> CacheKeys:
        """Keys for ``config``; :class:`ConfigError` naming ``cache.key_secret`` when Redis has none (or too short)."""
        if config.key_secret is None:
            if not config.url.startswith("memory://"):
                raise ConfigError(
                    "cache.key_secret",
                    "is required for a shared cache (every gateway process using it must have the same secret)",
                )
            return cls(config.namespace, secrets.token_bytes(32))
        secret = config.key_secret.get_secret_value()
        if len(secret) < MIN_KEY_SECRET_LENGTH:
            raise ConfigError("cache.key_secret", f"must be at least {MIN_KEY_SECRET_LENGTH} characters")
        return cls(config.namespace, secret.encode("utf-8"))

    def digest(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under the secret, as hex."""
        return hmac.new(self._secret, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def entry(self, source: str, query: str, key: str, scope: str | None = None) -> str:
        """The cache key of one (source, query, key), per caller when ``scope`` is given."""
        parts = [_segment(self.namespace), _segment(source), _segment(query)]
        if scope is not None:
            # a domain prefix keeps a caller's scope from ever hashing like an entity key
            parts.append("s" + self.digest("\x00scope\x00" + scope))
        parts.append(self.digest(key))
        return ":".join(parts)

    def source_pattern(self, source: str, key: str | None = None) -> str:
        """A glob (Redis ``SCAN MATCH`` and :func:`fnmatch.fnmatchcase` alike) for a source's entries of ``key``,
        over every query and caller, or for all its entries when ``key`` is ``None``."""
        prefix = f"{_segment(self.namespace)}:{_segment(source)}:"
        return prefix + ("*" if key is None else "*:" + self.digest(key))

    def lease(self, cache_key: str) -> str:
        """The Redis key of the lease on loading ``cache_key`` (an entry's key): held by one gateway process at a
        time, it carries the same hashes and no more."""
        prefix = _segment(self.namespace) + ":"
        if not cache_key.startswith(prefix):
            raise ValueError("not a cache key of this namespace")
        return f"{_segment(self.namespace)}#lease:{cache_key[len(prefix) :]}"

    def flight_channel(self) -> str:
        """The Redis channel on which a process announces the entries it has just stored."""
        return f"{_segment(self.namespace)}#flight"
