"""API keys against real databases: a SQLite file and a schema of its own on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from auth.apikeys import ApiKeyConfig, ApiKeyRefused, ApiKeyStatus, ApiKeyStore, RefusalReason
from auth.principal import PrincipalKind
from gateway.config import parse_config
from gateway.errors import ConfigError, InvalidCredentials
from tests.auth.databases import fresh_postgres_schema
from tests.auth.samples import API_KEY, CIVIL_AFFAIRS, COUNTER_A07
from tests.conftest import unused_port


@dataclass
class Database:
    url: str
    schema: str | None
    file: Path | None = None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty SQLite file, or a fresh schema on the PostgreSQL server, dropped afterwards."""
    if request.param == "sqlite":
        file = tmp_path / "keys.db"
        yield Database(f"sqlite+aiosqlite:///{file}", None, file)
        return
    url: str = request.getfixturevalue("postgres_url")
    async with fresh_postgres_schema(url, "ow_keys") as (schema, _):
        yield Database(url, schema)


MakeStore = Callable[..., Awaitable[ApiKeyStore]]


@pytest.fixture
def make_store(database: Database, exit_stack: contextlib.AsyncExitStack) -> MakeStore:
    """Open stores on the test database (each its own process, as far as caching goes); closed afterwards."""

    async def make(**config: Any) -> ApiKeyStore:
        store = ApiKeyStore(ApiKeyConfig(url=database.url, schema=database.schema, **config))
        return await exit_stack.enter_async_context(store)

    return make


def _secret(key: str) -> str:
    match = API_KEY.fullmatch(key)
    assert match is not None, key
    return match[2]


async def _refusal(store: ApiKeyStore, presented: str) -> ApiKeyRefused:
    with pytest.raises(ApiKeyRefused) as refused:
        await store.authenticate(presented)
    assert isinstance(refused.value, InvalidCredentials)
    return refused.value


async def test_a_created_key_authenticates_to_its_principal(make_store: MakeStore) -> None:
    store = await make_store()
    info, key = await store.create(
        subject="hall-3-window-7",
        kind=PrincipalKind.CLERK,
        label="counter A-07",
        department="Civil Affairs Bureau",
        window="A-07",
        roles=["case_handler", "case_handler", "supervisor"],
        scopes=["person:read"],
        expires_in=90 * 86400,
    )
    match = API_KEY.fullmatch(key)
    assert match is not None
    assert match[1] == info.key_id
    assert len(match[2]) >= 43  # 32 random bytes, urlsafe

    principal = await store.authenticate(key)

    assert principal == COUNTER_A07
    assert principal.expires_at == pytest.approx(info.expires_at.timestamp(), abs=1e-3)
    assert principal.expires_at == pytest.approx(time.time() + 90 * 86400, abs=60)
    assert info.roles == ("case_handler", "supervisor")


async def test_keys_are_told_apart(make_store: MakeStore) -> None:
    store = await make_store()
    _, clerk = await store.create(subject="window-1", kind=PrincipalKind.CLERK)
    _, integrator = await store.create(subject="tax-sync", kind=PrincipalKind.INTEGRATOR)
    assert (await store.authenticate(clerk)).subject == "window-1"
    assert (await store.authenticate(integrator)).kind is PrincipalKind.INTEGRATOR


async def test_a_wrong_secret_or_unknown_id_is_refused_alike(make_store: MakeStore) -> None:
    store = await make_store(cache_ttl=0)
    info, key = await store.create(subject="tax-sync", kind=PrincipalKind.INTEGRATOR)
    _, other = await store.create(subject="other", kind=PrincipalKind.INTEGRATOR)
    wrong_secret = f"owk_{info.key_id}_{_secret(other)}"
    unknown_id = f"owk_{'0' * 16}_{_secret(key)}"

    wrong = await _refusal(store, wrong_secret)
    unknown = await _refusal(store, unknown_id)

    assert wrong.reason is RefusalReason.WRONG_SECRET
    assert unknown.reason is RefusalReason.UNKNOWN
    assert wrong.message == unknown.message == "invalid API key"  # the caller cannot probe for key ids
    assert key not in wrong.message


async def test_a_wrong_secret_is_refused_while_the_key_is_cached(make_store: MakeStore) -> None:
    store = await make_store(cache_ttl=60)
    info, key = await store.create(subject="tax-sync", kind=PrincipalKind.INTEGRATOR)
    await store.authenticate(key)
    secret = _secret(key)
    flipped = ("B" if secret[0] == "A" else "A") + secret[1:]

    refusal = await _refusal(store, f"owk_{info.key_id}_{flipped}")

    assert refusal.reason is RefusalReason.WRONG_SECRET


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "owk_",
        "Bearer owk_0123456789abcdef_" + "a" * 43,
        "owk_0123456789ABCDEF_" + "a" * 43,  # key ids are lower-case hex
        "owk_0123456789abcdef_" + "a" * 10,  # a short secret
        "owk_0123456789abcdef_" + "a" * 43 + "!",
        "owk_0123456789abcdef_" + "a" * 10_000,
    ],
)
async def test_a_malformed_key_is_refused(make_store: MakeStore, presented: str) -> None:
    store = await make_store()
    refusal = await _refusal(store, presented)
    assert refusal.reason is RefusalReason.MALFORMED


async def test_an_expired_key_is_refused(make_store: MakeStore) -> None:
    store = await make_store(cache_ttl=0)
    _, key = await store.create(subject="temp", kind=PrincipalKind.SERVICE, expires_in=0.05)
    await asyncio.sleep(0.1)

    refusal = await _refusal(store, key)

    assert refusal.reason is RefusalReason.EXPIRED
    assert refusal.message == "API key expired"


async def test_a_key_expires_even_while_cached(make_store: MakeStore) -> None:
    store = await make_store(cache_ttl=60)
    _, key = await store.create(subject="temp", kind=PrincipalKind.SERVICE, expires_in=0.5)
    await store.authenticate(key)
    await asyncio.sleep(0.55)

    assert (await _refusal(store, key)).reason is RefusalReason.EXPIRED


async def test_a_revoked_key_is_refused_at_once_by_the_store_that_revoked_it(make_store: MakeStore) -> None:
    store = await make_store(cache_ttl=60)
    info, key = await store.create(subject="tax-sync", kind=PrincipalKind.INTEGRATOR)
    await store.authenticate(key)

    assert await store.revoke(info.key_id) is True

    refusal = await _refusal(store, key)
    assert refusal.reason is RefusalReason.REVOKED
    assert refusal.message == "API key revoked"


async def test_revocation_bites_elsewhere_within_cache_ttl(make_store: MakeStore) -> None:
    gateway = await make_store(cache_ttl=0.5)
    admin = await make_store()
    info, key = await admin.create(subject="tax-sync", kind=PrincipalKind.INTEGRATOR)
    await gateway.authenticate(key)

    assert await admin.revoke(info.key_id)
    assert (await gateway.authenticate(key)).subject == "tax-sync"  # remembered: the documented bound
    await asyncio.sleep(0.55)

    assert (await _refusal(gateway, key)).reason is RefusalReason.REVOKED


async def test_the_cache_is_bounded_least_recently_used_first(make_store: MakeStore) -> None:
    gateway = await make_store(cache_ttl=60, cache_size=1)
    admin = await make_store()
    first, first_key = await admin.create(subject="first", kind=PrincipalKind.SERVICE)
    second, second_key = await admin.create(subject="second", kind=PrincipalKind.SERVICE)
    await gateway.authenticate(first_key)
    await gateway.authenticate(second_key)  # pushes the first out

    await admin.revoke(first.key_id)
    await admin.revoke(second.key_id)

    assert (await _refusal(gateway, first_key)).reason is RefusalReason.REVOKED
    assert (await gateway.authenticate(second_key)).subject == "second"


async def test_revoking_an_unknown_key_says_so(make_store: MakeStore) -> None:
    store = await make_store()
    info, _ = await store.create(subject="tax-sync", kind=PrincipalKind.INTEGRATOR)
    assert await store.revoke("0" * 16) is False
    assert await store.revoke("not a key id'; --") is False
    assert await store.revoke(info.key_id) is True
    assert await store.revoke(info.key_id) is True  # still revoked, first time kept
    [listed] = await store.list()
    assert listed.status() is ApiKeyStatus.REVOKED


async def test_list_shows_each_key_and_its_status(make_store: MakeStore) -> None:
    store = await make_store()
    active, active_key = await store.create(subject="a", kind=PrincipalKind.CLERK, label="counter", scopes=["x"])
    expired, _ = await store.create(subject="b", kind=PrincipalKind.SERVICE, expires_in=0.01)
    revoked, _ = await store.create(subject="c", kind=PrincipalKind.INTEGRATOR)
    await store.revoke(revoked.key_id)
    await asyncio.sleep(0.05)

    listed = await store.list()

    assert [(i.key_id, i.status()) for i in listed] == [
        (active.key_id, ApiKeyStatus.ACTIVE),
        (expired.key_id, ApiKeyStatus.EXPIRED),
        (revoked.key_id, ApiKeyStatus.REVOKED),
    ]
    assert listed[0].label == "counter"
    assert listed[0].scopes == ("x",)
    assert listed[2].revoked_at is not None
    secret = _secret(active_key)
    assert not any(secret in repr(info) for info in listed)
    assert not {"secret", "secret_sha256", "hash"} & {f.name for f in dataclasses.fields(listed[0])}


async def test_last_use_is_recorded_but_not_on_every_request(make_store: MakeStore) -> None:
    store = await make_store(cache_ttl=0)
    _, key = await store.create(subject="a", kind=PrincipalKind.CLERK)
    [before] = await store.list()
    await store.authenticate(key)
    [first] = await store.list()
    await store.authenticate(key)
    [second] = await store.list()

    assert before.last_used_at is None
    assert first.last_used_at is not None
    assert second.last_used_at == first.last_used_at


async def test_the_secret_is_stored_nowhere(database: Database, make_store: MakeStore) -> None:
    store = await make_store()
    created = [await store.create(subject=f"s{n}", kind=PrincipalKind.INTEGRATOR) for n in range(3)]
    for _, key in created:
        await store.authenticate(key)
    await store.aclose()

    values = await _every_stored_value(database)

    for info, key in created:
        secret = _secret(key)
        assert info.key_id in values  # the scan reached the keys' rows
        assert hashlib.sha256(secret.encode()).hexdigest() in values
        assert not any(secret in value for value in values)
        if database.file is not None:
            assert secret.encode() not in database.file.read_bytes()


async def _every_stored_value(database: Database) -> list[str]:
    engine = create_async_engine(database.url)

    def read(conn: Connection) -> list[str]:
        metadata = MetaData(schema=database.schema)
        metadata.reflect(conn)
        assert metadata.tables
        return [str(value) for table in metadata.sorted_tables for row in conn.execute(select(table)) for value in row]

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_citizens_get_no_api_keys(make_store: MakeStore) -> None:
    store = await make_store()
    with pytest.raises(ValueError, match="citizens"):
        await store.create(subject="someone", kind=PrincipalKind.CITIZEN)
    assert await store.list() == []


async def test_a_shared_engine_is_left_open(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    try:
        async with ApiKeyStore(ApiKeyConfig(url="sqlite+aiosqlite:///unused.db"), engine=engine) as store:
            _, key = await store.create(subject="a", kind=PrincipalKind.CLERK)
            await store.authenticate(key)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM onewindow_api_keys"))).scalar() == 1
    finally:
        await engine.dispose()
    assert not (tmp_path / "unused.db").exists()


async def test_an_unreachable_store_fails_at_start_up() -> None:
    store = ApiKeyStore(ApiKeyConfig(url=f"postgresql+asyncpg://postgres@127.0.0.1:{unused_port()}/test"))
    with pytest.raises(ConfigError) as failed:
        await store.open()
    assert failed.value.path == "auth.api_keys"
    assert "cannot open the API key store" in failed.value.message


def test_configuration_is_checked_where_it_is_written() -> None:
    sources = {"civil_affairs": CIVIL_AFFAIRS}
    keys = {"url": "postgresql+asyncpg://onewindow@db/onewindow", "schema": "auth", "cache_ttl": "2s"}
    config = parse_config({"sources": sources, "auth": {"api_keys": keys}}, {})
    assert config.auth.api_keys == ApiKeyConfig(
        url="postgresql+asyncpg://onewindow@db/onewindow", db_schema="auth", cache_ttl=2.0
    )
    assert config.auth.api_keys.default_expiry == 365 * 86400

    with pytest.raises(ConfigError, match=r"auth\.api_keys\.url"):
        parse_config({"sources": sources, "auth": {"api_keys": {"url": "not a url"}}}, {})
    with pytest.raises(ConfigError, match=r"auth\.api_keys\.cache_ttl"):
        parse_config({"sources": sources, "auth": {"api_keys": {"cache_ttl": "soon"}}}, {})


async def test_stores_opening_an_empty_database_together_create_its_table_once(make_store: MakeStore) -> None:
    # Gateway processes started together (serve --workers) open the store at the same moment.
    stores = await asyncio.gather(*(make_store() for _ in range(4)))
    _, key = await stores[0].create(subject="counter-a07", kind=PrincipalKind.SERVICE)
    principals = await asyncio.gather(*(store.authenticate(key) for store in stores))
    assert {p.subject for p in principals} == {"counter-a07"}
