"""API keys for counter terminals and integrators: long-lived credentials that end in a :class:`Principal`.

A key reads ``owk_<key_id>_<secret>``. The key id is public (it names the key in listings, logs and the
``onewindow keys revoke`` command); the secret is 32 random bytes, shown once when the key is created and never
stored: the table keeps only its SHA-256, which is the right hash for a high-entropy random secret (a slow password
hash buys nothing against guessing 256 bits and would cost every request)::

    >>> async def issue(store: ApiKeyStore) -> str:
    ...     info, key = await store.create(subject="hall-3-window-7", kind=PrincipalKind.CLERK, window="A-07")
    ...     return key                          # give it to the terminal; it cannot be shown again
    >>> async def check(store: ApiKeyStore, key: str) -> Principal:
    ...     return await store.authenticate(key)  # Principal(subject="hall-3-window-7", via="api_key", ...)

A verified key is remembered in-process for ``cache_ttl``, so a revocation takes at most that long to bite in a
gateway process other than the one that revoked it.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import ConfigDict
from pydantic import Field as ConfigField
from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from auth.ddl import serialise_schema_changes
from auth.principal import Principal, PrincipalKind
from auth.traced import StoreTracing
from gateway.durations import DatabaseUrl, Duration, DurationOrZero, Strict
from gateway.errors import AuthError, ConfigError, InvalidCredentials

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_EXPIRY",
    "KEY_PREFIX",
    "LAST_USED_RESOLUTION",
    "ApiKeyConfig",
    "ApiKeyInfo",
    "ApiKeyRefused",
    "ApiKeyStatus",
    "ApiKeyStore",
    "RefusalReason",
]

KEY_PREFIX = "owk_"
DEFAULT_CACHE_TTL = 5.0
DEFAULT_CACHE_SIZE = 10_000
DEFAULT_EXPIRY = 365 * 86400.0
LAST_USED_RESOLUTION = 60.0  # seconds; last_used_at is a hint for audits, not a per-request write
_KEY_ID_BYTES = 8
_SECRET_BYTES = 32
_KEY = re.compile(rf"{KEY_PREFIX}([0-9a-f]{{{_KEY_ID_BYTES * 2}}})_([A-Za-z0-9_-]{{43,128}})")
_SAFE_KEY_ID = re.compile(r"[0-9a-f]{1,64}")
_DDL_LOCK = 0x6F6E_6577_6B65_7973  # "onewkeys": serialises the key table's creation by gateways starting together
_TABLE = "onewindow_api_keys"


class ApiKeyConfig(Strict):
    """Where API keys live and how long a verified key is trusted without asking the database again.

    ``cache_ttl`` bounds how long a revoked key keeps working in a gateway process that did not revoke it
    (``0`` asks the database on every request). ``default_expiry`` applies when a key is created without one.
    ``schema`` puts the table in a PostgreSQL schema other than the connection's default.

    >>> ApiKeyConfig(url="postgresql+asyncpg://onewindow@db/onewindow", cache_ttl="2s").cache_ttl
    2.0
    """

    # ``schema`` in YAML; ``db_schema`` in Python, where ``schema`` would shadow a BaseModel method.
    model_config = ConfigDict(populate_by_name=True)

    url: DatabaseUrl = "sqlite+aiosqlite:///onewindow-keys.db"
    db_schema: str | None = ConfigField(default=None, alias="schema")
    cache_ttl: DurationOrZero = DEFAULT_CACHE_TTL
    cache_size: int = ConfigField(default=DEFAULT_CACHE_SIZE, ge=0)
    default_expiry: Duration = DEFAULT_EXPIRY


class ApiKeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class RefusalReason(StrEnum):
    """Why a presented key was refused; kept on :class:`ApiKeyRefused` for logs, not told to an unknown caller."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    WRONG_SECRET = "wrong_secret"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ApiKeyRefused(InvalidCredentials):
    """An API key was refused. The message says only what the key's holder may learn: a caller without the right
    secret hears "invalid API key" whether or not the key id exists; ``reason`` tells the logs which it was."""

    def __init__(self, reason: RefusalReason, message: str = "invalid API key") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What is known about a key, without its secret or hash.

    >>> info = ApiKeyInfo("3f2a9c0d1e2b4a5c", "window A-07", "hall-3", PrincipalKind.CLERK, None, "A-07", (), (),
    ...                   created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), expires_at=dt.datetime(2025, 1, 1,
    ...                   tzinfo=dt.UTC))
    >>> info.status(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    <ApiKeyStatus.ACTIVE: 'active'>
    """

    key_id: str
    label: str | None
    subject: str
    kind: PrincipalKind
    department: str | None
    window: str | None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None

    def status(self, at: dt.datetime | None = None) -> ApiKeyStatus:
        if self.revoked_at is not None:
            return ApiKeyStatus.REVOKED
        if self.expires_at <= (at or _now()):
            return ApiKeyStatus.EXPIRED
        return ApiKeyStatus.ACTIVE


class _ApiKeyRow(SQLModel, table=True):
    __tablename__: ClassVar[str] = _TABLE

    key_id: str = Field(primary_key=True, max_length=64)
    secret_sha256: str = Field(max_length=64)
    label: str | None = Field(default=None, max_length=200)
    subject: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=32)
    department: str | None = Field(default=None, max_length=200)
    window: str | None = Field(default=None, max_length=64)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_used_at: dt.datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


@dataclass(frozen=True, slots=True)
class _Verified:
    secret_sha256: bytes
    principal: Principal
    fetched_at: float  # time.monotonic()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).hexdigest().encode("ascii")


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def _info(row: _ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        label=row.label,
        subject=row.subject,
        kind=PrincipalKind(row.kind),
        department=row.department,
        window=row.window,
        roles=tuple(row.roles),
        scopes=tuple(row.scopes),
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
        revoked_at=None if row.revoked_at is None else _utc(row.revoked_at),
        last_used_at=None if row.last_used_at is None else _utc(row.last_used_at),
    )


class ApiKeyStore:
    """API keys in a SQL database (SQLite or PostgreSQL), checked per request with a short in-process cache.

    >>> async def example() -> None:
    ...     async with ApiKeyStore(ApiKeyConfig(url="sqlite+aiosqlite:///keys.db")) as store:
    ...         info, key = await store.create(subject="tax-bureau-sync", kind=PrincipalKind.INTEGRATOR,
    ...                                        scopes=["person:read"], expires_in=90 * 86400)
    ...         assert (await store.authenticate(key)).subject == "tax-bureau-sync"
    ...         await store.revoke(info.key_id)

    Only verified keys are cached (by key id, together with the secret's hash, so a wrong secret for a cached key
    is still refused); refused keys are never cached, so guessing cannot fill memory. ``engine`` shares an engine
    the caller owns: :meth:`aclose` disposes only an engine the store created (and traces only that one).
    """

    tracing: StoreTracing | None = None
    """Set before :meth:`open` when tracing is on: each statement the store runs becomes a client span (the key id
    a placeholder, never its value); ``None`` otherwise."""

    def __init__(self, config: ApiKeyConfig, *, engine: AsyncEngine | None = None) -> None:
        self.config = config
        self._given = engine
        self._created: AsyncEngine | None = None
        self._engine: AsyncEngine | None = None
        self._verified: OrderedDict[str, _Verified] = OrderedDict()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect and create the table if it is missing; a store that cannot be opened fails at start-up."""
        engine = self._given
        if engine is None:
            try:
                engine = self._created = create_async_engine(self.config.url)
                if self.tracing is not None:
                    self.tracing.engine(engine)
            except ImportError as exc:
                raise ConfigError(
                    "auth.api_keys.url", f"the database driver {exc.name} is not installed (onewindow[postgres])"
                ) from exc
            except SQLAlchemyError as exc:
                raise ConfigError("auth.api_keys.url", _reason(exc)) from exc
        if self.config.db_schema is not None:
            engine = engine.execution_options(schema_translate_map={None: self.config.db_schema})
        self._engine = engine
        try:
            async with engine.begin() as conn:
                # Gateway processes starting together (serve --workers): one creates the table, the others find it.
                await serialise_schema_changes(conn, _DDL_LOCK)
                await conn.run_sync(SQLModel.metadata.create_all, tables=[SQLModel.metadata.tables[_TABLE]])
        except (SQLAlchemyError, OSError) as exc:
            await self.aclose()
            raise ConfigError("auth.api_keys", f"cannot open the API key store: {_reason(exc)}") from exc

    async def aclose(self) -> None:
        created, self._created, self._engine = self._created, None, None
        self._verified.clear()
        if created is not None:
            await created.dispose()

    def _session(self) -> AsyncSession:
        if self._engine is None:
            raise RuntimeError("ApiKeyStore.open() was not awaited")
        return AsyncSession(self._engine, expire_on_commit=False)

    async def create(
        self,
        *,
        subject: str,
        kind: PrincipalKind,
        label: str | None = None,
        department: str | None = None,
        window: str | None = None,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        expires_in: float | None = None,
    ) -> tuple[ApiKeyInfo, str]:
        """Create a key; return what is stored about it and the key itself, which is not kept anywhere."""
        if not subject.strip():
            raise ValueError("an API key needs a subject")
        if kind is PrincipalKind.CITIZEN:
            raise ValueError("API keys are for terminals, integrators and services; citizens sign in themselves")
        lifetime = self.config.default_expiry if expires_in is None else expires_in
        if lifetime <= 0:
            raise ValueError("an API key's lifetime must be positive")
        key_id, secret = secrets.token_hex(_KEY_ID_BYTES), secrets.token_urlsafe(_SECRET_BYTES)
        now = _now()
        row = _ApiKeyRow(
            key_id=key_id,
            secret_sha256=_digest(secret).decode("ascii"),
            label=label,
            subject=subject.strip(),
            kind=kind.value,
            department=department,
            window=window,
            roles=sorted(set(roles)),
            scopes=sorted(set(scopes)),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=lifetime),
        )
        async with _translating("cannot create the API key"), self._session() as session:
            session.add(row)
            await session.commit()
        return _info(row), f"{KEY_PREFIX}{key_id}_{secret}"

    async def list(self) -> builtins.list[ApiKeyInfo]:
        """Every key, oldest first, revoked and expired ones included."""
        async with _translating("cannot list API keys"), self._session() as session:
            rows = await session.exec(select(_ApiKeyRow).order_by(col(_ApiKeyRow.created_at), col(_ApiKeyRow.key_id)))
            return [_info(row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; ``False`` when no key has this id. Revoking twice keeps the first time."""
        if not _SAFE_KEY_ID.fullmatch(key_id):
            return False
        async with _translating("cannot revoke the API key"), self._session() as session:
            row = await session.get(_ApiKeyRow, key_id)
            if row is None:
                return False
            if row.revoked_at is None:
                row.revoked_at = _now()
                await session.commit()
        self._verified.pop(key_id, None)  # in this process it bites at once; elsewhere within cache_ttl
        return True

    async def authenticate(self, presented: str) -> Principal:
        """The principal a key stands for; :class:`ApiKeyRefused` (an :class:`InvalidCredentials`) otherwise."""
        match = _KEY.fullmatch(presented)
        if match is None:
            raise ApiKeyRefused(RefusalReason.MALFORMED, "malformed API key")
        key_id, digest = match[1], _digest(match[2])
        verified = self._cached(key_id)
        if verified is None:
            verified = await self._fetch(key_id, digest)
        elif not hmac.compare_digest(verified.secret_sha256, digest):
            raise ApiKeyRefused(RefusalReason.WRONG_SECRET)
        expires_at = verified.principal.expires_at
        if expires_at is not None and expires_at <= time.time():
            self._verified.pop(key_id, None)
            raise ApiKeyRefused(RefusalReason.EXPIRED, "API key expired")
        return verified.principal

    def _cached(self, key_id: str) -> _Verified | None:
        verified = self._verified.get(key_id)
        if verified is None:
            return None
        if time.monotonic() - verified.fetched_at >= self.config.cache_ttl:
            del self._verified[key_id]
            return None
        self._verified.move_to_end(key_id)
        return verified

    async def _fetch(self, key_id: str, digest: bytes) -> _Verified:
        async with _translating(None), self._session() as session:
            row = await session.get(_ApiKeyRow, key_id)
            if row is None:
                raise ApiKeyRefused(RefusalReason.UNKNOWN)
            if not hmac.compare_digest(row.secret_sha256.encode("ascii"), digest):
                raise ApiKeyRefused(RefusalReason.WRONG_SECRET)
            if row.revoked_at is not None:
                raise ApiKeyRefused(RefusalReason.REVOKED, "API key revoked")
            now = _now()
            if _utc(row.expires_at) <= now:
                raise ApiKeyRefused(RefusalReason.EXPIRED, "API key expired")
            if row.last_used_at is None or (now - _utc(row.last_used_at)).total_seconds() >= LAST_USED_RESOLUTION:
                row.last_used_at = now
                await session.commit()
            verified = _Verified(digest, self._principal(row), time.monotonic())
        if self.config.cache_ttl > 0 and self.config.cache_size > 0:
            self._verified[key_id] = verified
            while len(self._verified) > self.config.cache_size:
                self._verified.popitem(last=False)
        return verified

    @staticmethod
    def _principal(row: _ApiKeyRow) -> Principal:
        try:
            kind = PrincipalKind(row.kind)
        except ValueError:
            raise ApiKeyRefused(RefusalReason.UNKNOWN, "invalid API key") from None
        return Principal(
            subject=row.subject,
            kind=kind,
            via="api_key",
            department=row.department,
            window=row.window,
            roles=frozenset(row.roles),
            scopes=frozenset(row.scopes),
            expires_at=_utc(row.expires_at).timestamp(),
        )


@contextlib.asynccontextmanager
async def _translating(doing: str | None) -> AsyncIterator[None]:
    """Turn a database failure into an :class:`AuthError`: with its cause for an operator (``doing`` says what
    failed), or only the fact for a client presenting a key (``doing`` is ``None``)."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        if doing is None:
            raise AuthError("API keys cannot be checked right now") from exc
        raise AuthError(f"{doing}: {_reason(exc)}") from exc
