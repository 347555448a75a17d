"""How cached entries are written: JSON with exact types (never pickle), optionally sealed with AES-GCM.

JSON has no Decimal, date or datetime, and department records are full of them (amounts, birth dates, the time a
licence was issued). They are written as one-key tagged objects -- ``{"$decimal": "12.50"}``,
``{"$date": "1990-03-07"}``, ``{"$datetime": "2026-01-05T09:30:00+08:00"}``, ``{"$time": "09:30:00"}`` -- and a
record that itself has keys starting with ``$`` is wrapped as ``{"$dict": {...}}`` so it is never mistaken for a
tag. Anything else that JSON cannot carry exactly (a set, bytes, a non-string mapping key) is refused with
:class:`CodecError` and simply not cached.

With ``cache.encryption_key`` set, each value is sealed with AES-256-GCM, its cache key bound in as associated
data (a value copied under another key does not open), and written as ``aesgcm:<base64(nonce + ciphertext)>``.
A value that does not open -- tampered, another key, written unencrypted by a misconfigured process -- is logged
and read as a miss, never raised to the caller::

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> codec = EntryCodec()
    >>> entry = CachedEntry(({"fee": Decimal("12.50")},), dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    >>> codec.decode(codec.encode(entry, key="k"), key="k") == entry
    True
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cache.records import CachedEntry
from gateway.config import CacheConfig
from gateway.errors import ConfigError

__all__ = ["ENCRYPTED_PREFIX", "CodecError", "EntryCodec", "dumps_value", "loads_value"]

logger = logging.getLogger("onewindow.cache")

ENCRYPTED_PREFIX = "aesgcm:"
_FORMAT_VERSION = 1
_NONCE_BYTES = 12
_KEY_BYTES = 32


class CodecError(ValueError):
    """A value cannot be written exactly as JSON (it is then not cached), or a stored value cannot be read."""


# -- JSON with exact types ---------------------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    # bool before int, datetime before date: both are subclasses
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CodecError(f"a mapping key must be a string, not {type(key).__name__}")
            out[key] = _to_json(item)
        return {"$dict": out} if any(k.startswith("$") for k in out) else out
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    raise CodecError(f"{type(value).__name__} cannot be cached exactly as JSON")


_TAGS: dict[str, Any] = {
    "$decimal": Decimal,
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$time": dt.time.fromisoformat,
}


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$dict" and isinstance(inner, dict):
            return {k: _from_json(v) for k, v in inner.items()}
        if tag in _TAGS and isinstance(inner, str):
            return _TAGS[tag](inner)
    if any(k.startswith("$") for k in value):
        raise CodecError(f"unknown tag in {sorted(value)}")
    return {k: _from_json(v) for k, v in value.items()}


def dumps_value(value: Any) -> str:
    """``value`` as JSON text that :func:`loads_value` turns back into an equal value of the same types.

    >>> dumps_value({"born": dt.date(1990, 3, 7)})
    '{"born":{"$date":"1990-03-07"}}'
    """
    return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))


def loads_value(text: str) -> Any:
    """The inverse of :func:`dumps_value`; :class:`CodecError` when ``text`` is not such JSON.

    >>> loads_value('{"fee":{"$decimal":"12.50"}}')
    {'fee': Decimal('12.50')}
    """
    try:
        return _from_json(json.loads(text))
    except (ValueError, TypeError, ArithmeticError) as exc:  # JSONDecodeError, bad ISO strings, bad decimals
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"not a cached value: {exc}") from exc


# -- entries -----------------------------------------------------------------------------------------------------


def _encryption_key(config: CacheConfig) -> bytes | None:
    if config.encryption_key is None:
        return None
    try:
        key = base64.b64decode(config.encryption_key.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("cache.encryption_key", "is not base64") from None
    if len(key) != _KEY_BYTES:
        raise ConfigError("cache.encryption_key", f"must be {_KEY_BYTES} bytes (base64), not {len(key)}")
    return key


class EntryCodec:
    """Turns a :class:`CachedEntry` into the text stored under a cache key, and back.

    ``key`` (the cache key) is bound into an encrypted value, so it must be the one the value is stored under.

    >>> sealed = EntryCodec(encryption_key=bytes(32))
    >>> at = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    >>> sealed.encode(CachedEntry.not_found(at), key="k").startswith("aesgcm:")
    True
    """

    def __init__(self, encryption_key: bytes | None = None) -> None:
        if encryption_key is not None and len(encryption_key) != _KEY_BYTES:
            raise ValueError(f"an encryption key is {_KEY_BYTES} bytes")
        self._aead = AESGCM(encryption_key) if encryption_key is not None else None

    @classmethod
    def from_config(cls, config: CacheConfig) -> EntryCodec:
        """The codec ``config`` asks for; :class:`ConfigError` naming ``cache.encryption_key`` when it is bad."""
        return cls(_encryption_key(config))

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def encode(self, entry: CachedEntry, *, key: str) -> str:
        """The stored form of ``entry``; :class:`CodecError` when a record holds a value JSON cannot carry."""
        document = {
            "v": _FORMAT_VERSION,
            "at": entry.fetched_at.isoformat(),
            "found": entry.found,
            "records": _to_json(list(entry.records)),
        }
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        if self._aead is None:
            return text
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), key.encode("utf-8"))
        return ENCRYPTED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decode(self, raw: str | bytes, *, key: str) -> CachedEntry | None:
        """The entry stored as ``raw`` under ``key``, or ``None`` (logged) when it cannot be trusted or read."""
        try:
            stored = text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if self._aead is not None:
                text = self._open(text, key)
            elif text.startswith(ENCRYPTED_PREFIX):
                raise CodecError("the value is encrypted but this gateway has no cache.encryption_key")
            document = json.loads(text)
            if not isinstance(document, dict) or document.get("v") != _FORMAT_VERSION:
                raise CodecError("not a cache entry of this version")
            records = _from_json(document["records"])
            fetched_at = dt.datetime.fromisoformat(document["at"])
            found = document["found"]
            if not isinstance(records, list) or not isinstance(found, bool) or fetched_at.tzinfo is None:
                raise CodecError("malformed cache entry")
            return CachedEntry(records=tuple(records), fetched_at=fetched_at, found=found, text=stored)
        except (CodecError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
            # the key is hashed, so it is safe to log; the value is not logged
            logger.warning("cache entry %s is unreadable, treated as a miss: %s", key, exc)
            return None

    def _open(self, text: str, key: str) -> str:
        assert self._aead is not None
        if not text.startswith(ENCRYPTED_PREFIX):
            raise CodecError("the value is not encrypted but cache.encryption_key is set")
        try:
            blob = base64.b64decode(text[len(ENCRYPTED_PREFIX) :], validate=True)
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], key.encode("utf-8"))
        except (binascii.Error, InvalidTag, ValueError):
            raise CodecError("the value does not open with this encryption key (tampered or another key)") from None
        return plain.decode("utf-8")
