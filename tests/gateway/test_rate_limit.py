"""Rate limits against the real gateway (``create_app``) and real credentials: OIDC tokens from a real OAuth2
server, API keys from a real key store, the gateway's own CAS session tokens.

The budget follows the authenticated principal, whatever carried its credential; refused credentials count only
against the client address. Each client gets its own address (``httpx.ASGITransport(client=...)``), so the two
budgets can be told apart. Budgets are a few requests a minute: no test waits for a window to pass.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from auth.apikeys import ApiKeyConfig, ApiKeyStore
from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionTokens
from gateway.app import create_app
from gateway.config import parse_config
from tests.oauth2_server import OAuth2MockServer, start_oauth2_mock_server

AUDIENCE = "onewindow"
SESSION_SECRET = "test-session-secret-with-enough-entropy-0123456789"
VIEWER = {"query": "{ viewer { subject via } }"}
ALICE = ("203.0.113.7", 40000)
MALLORY = ("198.51.100.9", 40000)

# One OAuth2 server for the module (starting Node takes a good part of a second); the tests share its event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def oauth2() -> AsyncIterator[OAuth2MockServer]:
    async with start_oauth2_mock_server() as running:
        yield running


@dataclass
class Gateway:
    app: Starlette
    keys: ApiKeyStore
    sessions: SessionTokens
    oauth2: OAuth2MockServer
    _jti: Iterator[int]

    def client(self, address: tuple[str, int] = ALICE) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=address)
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")

    async def oidc_token(self, subject: str) -> str:
        """A fresh token (its own ``jti``) for ``subject`` from the trusted issuer."""
        claims = {"sub": subject, "aud": AUDIENCE, "jti": f"token-{next(self._jti)}"}
        return await self.oauth2.token(claims)

    async def api_key(self, subject: str) -> str:
        return (await self.keys.create(subject=subject, kind=PrincipalKind.INTEGRATOR))[1]

    def session(self, subject: str, window: str = "A-07") -> str:
        principal = Principal(subject, PrincipalKind.CLERK, "cas", department="民政局", window=window)
        return self.sessions.issue(principal)[0]


MakeGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest_asyncio.fixture(loop_scope="module")
async def make_gateway(oauth2: OAuth2MockServer, tmp_path: Path) -> AsyncIterator[MakeGateway]:
    """Start the gateway (its lifespan, without a server socket) with the given budgets."""

    @contextlib.asynccontextmanager
    async def make(*, per_principal: str | None, per_client: str | None = None) -> AsyncIterator[Gateway]:
        keys_url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
        config = parse_config(
            {
                "security": {"production": True, "rate_limit": per_principal, "rate_limit_per_client": per_client},
                "sources": {
                    "hrss": {
                        "kind": "rest",
                        "department": "HRSS",
                        "base_url": "http://127.0.0.1:1",
                        "queries": {"q": {"path": "/x/{key}"}},
                        "provides": {"Person.name": {"value": "n"}},
                    }
                },
                "auth": {
                    "issuers": {
                        "province": {"issuer": oauth2.issuer, "audience": AUDIENCE, "claims": {"default_kind": "clerk"}}
                    },
                    "sessions": {"secret": SESSION_SECRET},
                    "api_keys": {"url": keys_url, "cache_ttl": 0},
                    "audit": {"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"},
                },
            },
            {},
        )
        app = create_app(config)
        async with ApiKeyStore(ApiKeyConfig(url=keys_url)) as keys, app.router.lifespan_context(app):
            yield Gateway(app, keys, SessionTokens(config.auth.sessions), oauth2, itertools.count())

    yield make


async def ask(client: httpx.AsyncClient, **headers: str) -> int:
    response = await client.post("/graphql", json=VIEWER, headers=headers)
    if response.status_code == 429:
        assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 0 < int(response.headers["retry-after"]) <= 60
    return response.status_code


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_every_token_of_one_subject_spends_one_budget(make_gateway: MakeGateway) -> None:
    async with make_gateway(per_principal="5/minute") as gw, gw.client() as http:
        tokens = [await gw.oidc_token("zhang.wei") for _ in range(3)]
        assert len(set(tokens)) == 3
        # two requests with each of three tokens: six requests of one principal against a budget of five
        statuses = [await ask(http, **bearer(token)) for token in tokens for _ in range(2)]
        assert statuses == [200] * 5 + [429]
        assert await ask(http, **bearer(await gw.oidc_token("zhang.wei"))) == 429  # a fourth token changes nothing


async def test_an_api_key_spends_one_budget_whichever_header_carries_it(make_gateway: MakeGateway) -> None:
    async with make_gateway(per_principal="5/minute") as gw, gw.client() as http:
        key = await gw.api_key("tax-bureau-sync")
        carriers = [
            {"x-api-key": key},
            {"authorization": f"ApiKey {key}"},
            {"x-api-key": key},
            {"authorization": f"Bearer {key}"},
            {"x-api-key": key},
            {"authorization": f"ApiKey {key}"},
        ]
        assert [await ask(http, **headers) for headers in carriers] == [200] * 5 + [429]
        assert await ask(http, **{"x-api-key": key}) == 429


async def test_two_keys_of_one_subject_spend_one_budget(make_gateway: MakeGateway) -> None:
    async with make_gateway(per_principal="4/minute") as gw, gw.client() as http:
        first, second = await gw.api_key("tax-bureau-sync"), await gw.api_key("tax-bureau-sync")
        statuses = [await ask(http, **{"x-api-key": key}) for key in (first, second, first, second, second)]
        assert statuses == [200] * 4 + [429]


async def test_sessions_of_one_cas_user_spend_one_budget(make_gateway: MakeGateway) -> None:
    async with make_gateway(per_principal="3/minute") as gw, gw.client() as http:
        # logged in at two counters: two different session tokens for one CAS user
        at_a07, at_b02 = gw.session("wang.fang", "A-07"), gw.session("wang.fang", "B-02")
        assert at_a07 != at_b02
        statuses = [await ask(http, **bearer(token)) for token in (at_a07, at_b02, at_a07, at_b02)]
        assert statuses == [200] * 3 + [429]


async def test_different_principals_have_separate_budgets(make_gateway: MakeGateway) -> None:
    async with make_gateway(per_principal="2/minute") as gw, gw.client() as http:
        zhang = await gw.oidc_token("zhang.wei")
        assert [await ask(http, **bearer(zhang)) for _ in range(3)] == [200, 200, 429]
        # another subject of the same issuer, the same name from CAS, and a key: none of them is zhang.wei@province
        assert await ask(http, **bearer(await gw.oidc_token("li.na"))) == 200
        assert await ask(http, **bearer(gw.session("zhang.wei"))) == 200
        assert await ask(http, **{"x-api-key": await gw.api_key("zhang.wei")}) == 200
        assert await ask(http, **bearer(zhang)) == 429
        assert await ask(http, **bearer(await gw.oidc_token("zhang.wei"))) == 429


async def test_refused_credentials_count_against_the_client_address_only(make_gateway: MakeGateway) -> None:
    async with (
        make_gateway(per_principal="3/minute", per_client="7/minute") as gw,
        gw.client(MALLORY) as mallory,
        gw.client(ALICE) as alice,
    ):
        # Tokens that name zhang.wei without proving it: signed with another key, for the trusted issuer; an unknown
        # API key; garbage; no credentials. A limiter keyed on what a token claims would charge zhang.wei for them.
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(
            {"iss": gw.oauth2.issuer, "sub": "zhang.wei", "aud": AUDIENCE, "exp": 4102444800},
            other_key,
            algorithm="RS256",
            headers={"kid": gw.oauth2.signing_kid},
        )
        refused: list[dict[str, Any]] = [
            bearer(forged),
            bearer(forged),
            {"x-api-key": "owk_0123456789abcdef_" + "x" * 43},
            bearer(forged),
            bearer("not-a-token"),
            {},
            bearer(forged),
        ]
        # Refused, and never charged to a principal: the fourth forged token is over no principal's budget of three.
        assert [await ask(mallory, **headers) for headers in refused] == [401] * 7
        assert await ask(mallory, **bearer(forged)) == 429  # the address is spent, by its own refused requests
        # zhang.wei, from another address, still has the whole of his own budget
        zhang = await gw.oidc_token("zhang.wei")
        assert [await ask(alice, **bearer(zhang)) for _ in range(4)] == [200, 200, 200, 429]


async def test_a_shared_budget_storage_needs_the_key_that_names_budgets(redis_url: str) -> None:
    from starlette.applications import Starlette

    from gateway.errors import ConfigError
    from gateway.middleware.rate_limit import RateLimit, budget_key

    with pytest.raises(ConfigError) as info:
        RateLimit(Starlette(), per_principal="5/minute", per_client=None, storage=redis_url)
    assert info.value.path == "security.rate_limit_key_secret"
    limit = RateLimit(Starlette(), per_principal="5/minute", per_client=None, storage=redis_url, key_secret=b"s" * 32)
    assert limit.key_secret == b"s" * 32
    # The key is keyed: without the secret, a stored budget name says nothing of whose it is.
    identity = "oidc:province:11010519491231002X"
    assert budget_key(identity, b"s" * 32) != budget_key(identity, b"t" * 32)
    assert "11010519491231002X" not in budget_key(identity, b"s" * 32)


class Clock:
    """``time.time`` for the budgets, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_local_budgets_count_each_hit_as_limits_memory_storage_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from limits import parse
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    from gateway.middleware.rate_limit import LocalBudgets, rate_limit_storage

    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    assert isinstance(rate_limit_storage("memory://"), LocalBudgets)
    ours, theirs = LocalBudgets(), MemoryStorage()
    limiters = [SlidingWindowCounterRateLimiter(storage) for storage in (ours, theirs)]
    item = parse("3/minute")
    # within one window, into the next (the previous window's weight decaying), and past both
    offsets = [0, 1, 2, 3, 10, 61, 62, 75, 90, 95, 119, 121, 122, 123, 124, 300, 301]
    outcomes: list[list[bool]] = [[], []]
    stats: list[list[tuple[float, int]]] = [[], []]
    start = clock.now
    for offset in offsets:
        clock.now = start + offset
        for i, limiter in enumerate(limiters):
            for who in ("zhang.wei", "li.na"):
                outcomes[i].append(await limiter.hit(item, "onewindow", "principal", who))
            window = await limiter.get_window_stats(item, "onewindow", "principal", "zhang.wei")
            stats[i].append((round(window.reset_time, 6), window.remaining))
    assert outcomes[0] == outcomes[1]
    assert stats[0] == stats[1]
    assert True in outcomes[0]
    assert False in outcomes[0]
    assert ours._sweep is not None
    ours._sweep.cancel()


async def test_local_budgets_sweep_expired_counters_without_a_task_per_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import time

    from limits import parse
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    from gateway.middleware.rate_limit import LocalBudgets

    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    storage = LocalBudgets()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("5/minute")
    tasks = len(asyncio.all_tasks())
    for address in range(200):
        assert await limiter.hit(item, "onewindow", "client", f"10.0.0.{address}")
    assert len(asyncio.all_tasks()) == tasks  # the base class starts a sweep task after every increment
    handle = storage._sweep
    assert handle is not None
    assert len(storage.storage) == 200
    clock.now += 60
    storage._swept()  # the counters live for two windows: all still there, and a sweep is due again
    assert len(storage.storage) == 200
    assert storage._sweep is not None
    storage._sweep.cancel()
    clock.now += 61
    storage._swept()
    assert storage.storage == {}
    assert storage.expirations == {}
    assert storage._sweep is None
    handle.cancel()
