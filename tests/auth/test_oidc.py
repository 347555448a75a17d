"""OIDC bearer tokens against a real OAuth2 server (oauth2-mock-server): principals, forgeries, rotation, caching."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from auth.backend import GatewayAuthBackend, Identity, RequirePrincipal, unauthorized
from auth.config import AuthConfig
from auth.oidc import OidcIssuerConfig, OidcVerifier, peek_issuer, token_issuer
from auth.principal import ClaimMapping, PrincipalKind
from gateway.errors import InvalidCredentials
from tests.auth.samples import ZHANG_WEI
from tests.conftest import unused_port
from tests.oauth2_server import OAuth2MockServer, start_oauth2_mock_server

AUDIENCE = "onewindow"
CLERK = {
    "sub": "zhang.wei",
    "aud": AUDIENCE,
    "user_type": "clerk",
    "org": {"name": "民政局"},
    "window": "A-07",
    "realm_access": {"roles": ["case_handler", "supervisor"]},
    "name": "张伟",
}
CLERK_MAPPING = ClaimMapping(kind="user_type", department="org.name", roles="realm_access.roles")

MakeVerifier = Callable[..., OidcVerifier]

# One server for the module (starting Node and making an RSA key takes a good part of a second), so the async tests
# share the module's event loop; tests that change the server's keys start their own.
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server() -> AsyncIterator[OAuth2MockServer]:
    async with start_oauth2_mock_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def own_server() -> AsyncIterator[OAuth2MockServer]:
    async with start_oauth2_mock_server() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def jwks_requests() -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """An httpx client that records the path of every request the verifier makes to the issuer."""
    paths: list[str] = []

    async def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        yield client, paths


@pytest_asyncio.fixture(loop_scope="module")
async def make_verifier() -> AsyncIterator[MakeVerifier]:
    """Verifiers for a server (or any issuer/JWKS URL), closed after the test."""
    verifiers: list[OidcVerifier] = []

    def make(
        server: OAuth2MockServer | None = None,
        *,
        name: str = "province",
        client: httpx.AsyncClient | None = None,
        **config: Any,
    ) -> OidcVerifier:
        if server is not None:
            config = {"issuer": server.issuer, "jwks_url": server.jwks_url, **config}
        config.setdefault("audience", AUDIENCE)
        verifier = OidcVerifier(name, OidcIssuerConfig(**config), client=client)
        verifiers.append(verifier)
        return verifier

    yield make
    for verifier in verifiers:
        await verifier.aclose()


async def refused(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(InvalidCredentials) as caught:
        await verifier.authenticate(token)
    return caught.value.message


async def _citizen_token(server: OAuth2MockServer, id_number: str) -> str:
    return await server.token({"sub": "c-1", "aud": AUDIENCE, "onewindow_kind": "citizen", "id_number": id_number})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    signature = token.rsplit(".", 1)[1]
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False}), signature


def reassembled(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), signature])


# --- valid tokens -------------------------------------------------------------------------------------------------


@module_loop
async def test_a_valid_token_becomes_the_mapped_principal(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)
    token = await server.token(CLERK, expires_in=600)

    principal = await verifier.authenticate(token)

    assert principal == ZHANG_WEI
    assert principal.expires_at == jwt.decode(token, options={"verify_signature": False})["exp"]
    assert principal.expires_at == pytest.approx(time.time() + 600, abs=5)


@module_loop
async def test_a_client_credentials_token_takes_the_default_kind(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server, claims=ClaimMapping(default_kind=PrincipalKind.SERVICE))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.token_url,
            auth=("civil-affairs-sync", "secret"),
            data={
                "grant_type": "client_credentials",
                "scope": "person:read case:read",
                "aud": AUDIENCE,
                "claims": json.dumps({"sub": "civil-affairs-sync"}),
            },
        )
    response.raise_for_status()

    principal = await verifier.authenticate(response.json()["access_token"])

    assert (principal.subject, principal.kind) == ("civil-affairs-sync", PrincipalKind.SERVICE)
    assert principal.scopes == {"person:read", "case:read"}


@module_loop
async def test_a_citizen_token_carries_the_normalised_id_number(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server)
    token = await _citizen_token(server, "11010519491231002x")

    principal = await verifier.authenticate(token)

    assert (principal.kind, principal.id_number) == (PrincipalKind.CITIZEN, "11010519491231002X")


@module_loop
async def test_a_citizen_token_without_a_valid_id_number_is_refused(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server)
    token = await _citizen_token(server, "110105194912310021")

    assert "ID number" in await refused(verifier, token)


@module_loop
async def test_audience_may_be_one_of_several(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, audience=["portal", AUDIENCE], claims=CLERK_MAPPING)
    token = await server.token({**CLERK, "aud": ["other", AUDIENCE]})

    assert (await verifier.authenticate(token)).subject == "zhang.wei"


@module_loop
async def test_discovery_finds_the_keys_when_no_jwks_url_is_configured(
    server: OAuth2MockServer, make_verifier: MakeVerifier, jwks_requests: tuple[httpx.AsyncClient, list[str]]
) -> None:
    client, paths = jwks_requests
    verifier = make_verifier(issuer=server.issuer, client=client, claims=CLERK_MAPPING)

    for _ in range(3):
        assert (await verifier.authenticate(await server.token(CLERK))).subject == "zhang.wei"

    assert paths == ["/.well-known/openid-configuration", "/jwks"]


@module_loop
async def test_each_issuer_accepts_only_tokens_signed_with_its_own_keys(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    province = server
    async with start_oauth2_mock_server() as city:
        for_province = make_verifier(province, name="province", claims=CLERK_MAPPING)
        for_city = make_verifier(city, name="city", claims=CLERK_MAPPING)
        province_token, city_token = await province.token(CLERK), await city.token(CLERK)
        # signed by the city's key, claiming to come from the province
        impostor = await city.token({**CLERK, "iss": province.issuer})

        assert (await for_province.authenticate(province_token)).identity == "oidc:province:zhang.wei"
        assert (await for_city.authenticate(city_token)).identity == "oidc:city:zhang.wei"
        assert await refused(for_province, city_token) == "wrong issuer"
        assert await refused(for_city, province_token) == "wrong issuer"
        assert await refused(for_province, impostor) == "unknown signing key"


# --- forgeries ----------------------------------------------------------------------------------------------------


@module_loop
async def test_alg_none_is_refused(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)
    header, payload, _ = segments(await server.token(CLERK))

    assert await refused(verifier, reassembled({**header, "alg": "none"}, payload, "")) == "algorithm not allowed"


@pytest.mark.parametrize("secret_form", ["pem", "jwk"])
@module_loop
async def test_hs256_signed_with_the_issuers_public_key_is_refused(
    server: OAuth2MockServer, make_verifier: MakeVerifier, secret_form: str
) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)
    header, payload, _ = segments(await server.token(CLERK))
    (public_jwk,) = (await server.jwks())["keys"]
    if secret_form == "pem":
        public_key = jwt.PyJWK(public_jwk).key
        secret = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    else:
        secret = json.dumps(public_jwk).encode()
    forged_header = {**header, "alg": "HS256"}
    signing_input = f"{b64(json.dumps(forged_header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())

    assert await refused(verifier, f"{signing_input}.{signature}") == "algorithm not allowed"


@pytest.mark.parametrize(
    ("claims", "expires_in", "reason"),
    [
        ({}, -120, "token expired"),
        ({"nbf": int(time.time()) + 600}, 3600, "token not yet valid"),
        ({"aud": "another-system"}, 3600, "wrong audience"),
        ({"aud": None}, 3600, "token has no 'aud' claim"),
        ({"iss": "https://sso.elsewhere.gov.cn"}, 3600, "wrong issuer"),
    ],
    ids=["expired", "not-yet-valid", "wrong-aud", "no-aud", "wrong-iss"],
)
@module_loop
async def test_tokens_signed_by_the_issuer_with_bad_claims_are_refused(
    server: OAuth2MockServer, make_verifier: MakeVerifier, claims: dict[str, Any], expires_in: int, reason: str
) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)

    assert await refused(verifier, await server.token({**CLERK, **claims}, expires_in=expires_in)) == reason


@module_loop
async def test_expiry_within_the_leeway_is_accepted(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING, leeway="30s")

    assert (await verifier.authenticate(await server.token(CLERK, expires_in=-5))).subject == "zhang.wei"


@module_loop
async def test_an_unknown_kid_is_refused(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)
    token = await server.token(CLERK, header={"kid": "not-published"})

    assert await refused(verifier, token) == "unknown signing key"


def _escalated(token: str) -> str:
    """``token`` with supervisor and cache_admin roles written into its payload, the signature left as it was."""
    header_segment, _, signature = token.split(".")
    _, payload, _ = segments(token)
    escalated = {**payload, "realm_access": {"roles": ["case_handler", "supervisor", "cache_admin"]}}
    return f"{header_segment}.{b64(json.dumps(escalated).encode())}.{signature}"


@module_loop
async def test_a_tampered_payload_is_refused(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)
    token = await server.token(CLERK)
    tampered = _escalated(token)

    assert await refused(verifier, tampered) == "bad signature"
    assert (await verifier.authenticate(token)).roles == {"case_handler", "supervisor"}


@module_loop
async def test_a_key_that_does_not_fit_the_alg_is_refused(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING, algorithms=["RS256", "ES256"])
    header, payload, signature = segments(await server.token(CLERK))

    reason = await refused(verifier, reassembled({**header, "alg": "ES256"}, payload, signature))

    assert reason == "signing key does not match the token algorithm"


@module_loop
async def test_keys_published_without_alg_are_bound_by_their_type(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    # Some issuers publish keys without "alg"; the key type alone then decides which algorithms it can verify.
    jwks = await server.jwks()
    bare = {"keys": [{k: v for k, v in key.items() if k != "alg"} for key in jwks["keys"]]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=bare))
    async with httpx.AsyncClient(transport=transport) as client:
        verifier = make_verifier(server, client=client, claims=CLERK_MAPPING, algorithms=["RS256", "ES256"])
        token = await server.token(CLERK)
        header, payload, signature = segments(token)

        assert (await verifier.authenticate(token)).subject == "zhang.wei"
        reason = await refused(verifier, reassembled({**header, "alg": "ES256"}, payload, signature))
        assert reason == "signing key does not match the token algorithm"


@module_loop
async def test_a_token_naming_no_key_is_refused(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)

    assert await refused(verifier, await server.token(CLERK, header={"kid": None})) == "token names no signing key"


@module_loop
async def test_garbage_is_refused(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server)

    assert await refused(verifier, "not-a-jwt") == "malformed token"


# --- rotation and caching -----------------------------------------------------------------------------------------


@module_loop
async def test_a_new_key_is_accepted_after_exactly_one_refresh(
    own_server: OAuth2MockServer, make_verifier: MakeVerifier, jwks_requests: tuple[httpx.AsyncClient, list[str]]
) -> None:
    client, paths = jwks_requests
    verifier = make_verifier(own_server, client=client, claims=CLERK_MAPPING)
    old_token = await own_server.token(CLERK)
    await verifier.authenticate(old_token)
    assert paths == ["/jwks"]

    new_kid = await own_server.rotate()
    new_token = await own_server.token(CLERK)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid

    assert (await verifier.authenticate(new_token)).subject == "zhang.wei"
    assert (await verifier.authenticate(old_token)).subject == "zhang.wei"  # still published
    assert paths == ["/jwks", "/jwks"]


@module_loop
async def test_a_key_removed_after_rotation_is_refused(
    own_server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(own_server, claims=CLERK_MAPPING)
    old_kid = own_server.signing_kid
    old_token = await own_server.token(CLERK)
    await verifier.authenticate(old_token)

    await own_server.rotate()
    await own_server.remove_key(old_kid)
    await verifier.authenticate(await own_server.token(CLERK))  # the unknown new kid refreshes the keys

    assert await refused(verifier, old_token) == "unknown signing key"
    assert await refused(make_verifier(own_server, claims=CLERK_MAPPING), old_token) == "unknown signing key"


@module_loop
async def test_many_tokens_cause_one_jwks_fetch(
    server: OAuth2MockServer, make_verifier: MakeVerifier, jwks_requests: tuple[httpx.AsyncClient, list[str]]
) -> None:
    client, paths = jwks_requests
    verifier = make_verifier(server, client=client, claims=CLERK_MAPPING)
    tokens = [await server.token({**CLERK, "sub": f"clerk-{i}"}) for i in range(20)]

    principals = await asyncio.gather(*(verifier.authenticate(token) for token in tokens))
    principals += [await verifier.authenticate(token) for token in tokens]

    assert {p.subject for p in principals} == {f"clerk-{i}" for i in range(20)}
    assert paths == ["/jwks"]


@module_loop
async def test_an_unknown_kid_flood_refreshes_at_most_once_per_interval(
    server: OAuth2MockServer, make_verifier: MakeVerifier, jwks_requests: tuple[httpx.AsyncClient, list[str]]
) -> None:
    client, paths = jwks_requests
    verifier = make_verifier(server, client=client, claims=CLERK_MAPPING, min_refresh_interval="0.5s")
    await verifier.authenticate(await server.token(CLERK))
    garbage = [await server.token(CLERK, header={"kid": f"made-up-{i}"}) for i in range(10)]

    concurrent = await asyncio.gather(*(verifier.authenticate(t) for t in garbage), return_exceptions=True)
    sequential = [await refused(verifier, t) for t in garbage]

    assert all(isinstance(e, InvalidCredentials) and e.message == "unknown signing key" for e in concurrent)
    assert set(sequential) == {"unknown signing key"}
    assert paths == ["/jwks", "/jwks"]  # the first load, then one refresh for the whole flood

    await asyncio.sleep(0.6)
    await refused(verifier, garbage[0])
    await refused(verifier, garbage[1])
    assert paths == ["/jwks", "/jwks", "/jwks"]


@module_loop
async def test_unreachable_keys_are_invalid_credentials(make_verifier: MakeVerifier, server: OAuth2MockServer) -> None:
    token = await server.token(CLERK)
    dead = f"http://127.0.0.1:{unused_port()}"
    verifiers = [
        make_verifier(issuer=server.issuer, jwks_url=f"{dead}/jwks", timeout="2s"),
        make_verifier(issuer=server.issuer, jwks_url=f"{server.issuer}/no-such-document"),  # 404
        make_verifier(issuer=server.issuer, jwks_url=server.discovery_url),  # JSON, but not a JWK set
    ]
    async with start_oauth2_mock_server() as stopped:
        orphan = await stopped.token(CLERK)
        verifiers.append(make_verifier(issuer=stopped.issuer))  # discovery, once the server is gone

    for verifier in verifiers[:3]:
        assert await refused(verifier, token) == "issuer keys unavailable"
    assert await refused(verifiers[3], orphan) == "issuer keys unavailable"


@module_loop
async def test_stale_keys_keep_serving_while_the_issuer_is_down(make_verifier: MakeVerifier) -> None:
    async with start_oauth2_mock_server() as server:
        verifier = make_verifier(server, claims=CLERK_MAPPING, jwks_cache_ttl="0.2s")
        token = await server.token(CLERK)
        await verifier.authenticate(token)
    await asyncio.sleep(0.3)

    assert (await verifier.authenticate(token)).subject == "zhang.wei"


@module_loop
async def test_a_client_passed_in_stays_open(server: OAuth2MockServer) -> None:
    async with httpx.AsyncClient() as client:
        config = OidcIssuerConfig(issuer=server.issuer, audience=AUDIENCE, claims=CLERK_MAPPING)
        verifier = OidcVerifier("province", config, client=client)
        await verifier.authenticate(await server.token(CLERK))
        await verifier.aclose()

        assert not client.is_closed
        assert (await client.get(server.jwks_url)).status_code == 200


# --- verified tokens ----------------------------------------------------------------------------------------------


@module_loop
async def test_a_verified_token_is_remembered_until_its_exp_and_no_longer(
    server: OAuth2MockServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING, leeway="1ms")
    token = await server.token(CLERK, expires_in=2)
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]

    principal = await verifier.authenticate(token)
    assert verifier.verified(token) == principal
    assert await verifier.authenticate(token) == principal

    await asyncio.sleep(expires_at - time.time() + 0.05)
    assert verifier.verified(token) is None
    assert await refused(verifier, token) == "token expired"


@module_loop
async def test_only_tokens_that_verified_are_remembered(server: OAuth2MockServer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(server, claims=CLERK_MAPPING)
    token = await server.token(CLERK)
    tampered = _escalated(token)
    no_principal = await server.token({"sub": "c-1", "aud": AUDIENCE, "user_type": "citizen"})  # signed, no ID

    await verifier.authenticate(token)
    for _ in range(2):
        assert await refused(verifier, tampered) == "bad signature"
        assert "ID number" in await refused(verifier, no_principal)
    assert verifier.verified(tampered) is None
    assert verifier.verified(no_principal) is None
    assert verifier.verified(token) is not None

    uncached = make_verifier(server, claims=CLERK_MAPPING, verified_cache_size=0)
    assert (await uncached.authenticate(token)).subject == "zhang.wei"
    assert uncached.verified(token) is None


def _rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", "alg": "RS256"}


@module_loop
async def test_a_key_replaced_under_its_kid_takes_its_remembered_tokens_along(make_verifier: MakeVerifier) -> None:
    issuer = "https://sso.example/realms/gov"
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    published = {"keys": [_rsa_jwk(old, "k1")]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=published))

    def token(key: rsa.RSAPrivateKey, kid: str) -> str:
        claims = {**CLERK, "iss": issuer, "exp": int(time.time()) + 600}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    async with httpx.AsyncClient(transport=transport) as client:
        verifier = make_verifier(
            issuer=issuer, jwks_url=f"{issuer}/certs", client=client, claims=CLERK_MAPPING, min_refresh_interval="1ms"
        )
        signed_by_old = token(old, "k1")
        assert (await verifier.authenticate(signed_by_old)).subject == "zhang.wei"

        # the issuer now publishes other key material under k1; a token naming k2 makes the verifier refresh
        published = {"keys": [_rsa_jwk(new, "k1"), _rsa_jwk(new, "k2")]}
        assert (await verifier.authenticate(token(new, "k2"))).subject == "zhang.wei"

        assert verifier.verified(signed_by_old) is None
        assert await refused(verifier, signed_by_old) == "bad signature"


# --- configuration and routing ------------------------------------------------------------------------------------


def test_config_defaults_and_a_single_audience() -> None:
    config = OidcIssuerConfig(issuer="https://sso.example", audience="onewindow")

    assert config.audience == ["onewindow"]
    assert config.algorithms == ["RS256"]
    assert (config.leeway, config.jwks_cache_ttl, config.min_refresh_interval) == (30.0, 3600.0, 30.0)
    assert config.verified_cache_size == 4096


@pytest.mark.parametrize("algorithms", [["none"], ["HS256"], ["RS256", "HS512"], []])
def test_config_refuses_symmetric_or_no_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError):
        OidcIssuerConfig(issuer="https://sso.example", audience="onewindow", algorithms=algorithms)


def test_config_refuses_no_audience() -> None:
    with pytest.raises(ValidationError):
        OidcIssuerConfig(issuer="https://sso.example", audience=[])


@module_loop
async def test_peek_issuer_routes_by_the_unverified_iss(server: OAuth2MockServer) -> None:
    assert peek_issuer(await server.token(CLERK)) == server.issuer
    assert peek_issuer(await server.token({**CLERK, "iss": None})) is None
    assert peek_issuer("not-a-jwt") is None
    assert peek_issuer("opaque.bearer.value") is None


@module_loop
async def test_token_issuer_says_what_is_missing(server: OAuth2MockServer) -> None:
    assert token_issuer(await server.token(CLERK)) == server.issuer
    for token, reason in [
        (await server.token({**CLERK, "iss": None}), "the token has no iss claim"),
        (await server.token({**CLERK, "iss": 7}), "the token's iss claim is not a string"),
        ("opaque.bearer.value", "the bearer token is not a JWT"),
    ]:
        with pytest.raises(InvalidCredentials) as caught:
            token_issuer(token)
        assert caught.value.message == reason


@module_loop
async def test_a_signed_token_without_iss_is_refused_over_http_with_a_true_reason(server: OAuth2MockServer) -> None:
    """A well-signed token from the trusted issuer that lacks ``iss`` is a JWT: the 401 says the claim is missing."""
    config = AuthConfig.model_validate(
        {
            "audit": None,
            "issuers": {
                "province": {
                    "issuer": server.issuer,
                    "jwks_url": server.jwks_url,
                    "audience": AUDIENCE,
                    "claims": CLERK_MAPPING.model_dump(),
                }
            },
        }
    )
    identity = Identity(config)

    async def viewer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.user.identity)

    guarded = RequirePrincipal(Starlette(routes=[Route("/graphql", viewer)]), identity)
    app = AuthenticationMiddleware(
        guarded,
        backend=GatewayAuthBackend(identity),
        on_error=unauthorized(identity),  # type: ignore[arg-type]
    )
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            ok = await http.get("/graphql", headers={"Authorization": f"Bearer {await server.token(CLERK)}"})
            no_iss = await server.token({**CLERK, "iss": None})
            refused = await http.get("/graphql", headers={"Authorization": f"Bearer {no_iss}"})
            garbage = await http.get("/graphql", headers={"Authorization": "Bearer opaque.bearer.value"})
    finally:
        await identity.aclose()

    assert (ok.status_code, ok.text) == (200, "oidc:province:zhang.wei")
    assert refused.status_code == 401
    assert 'error_description="the token has no iss claim"' in refused.headers["www-authenticate"]
    assert refused.json()["errors"][0]["message"] == "credentials refused: the token has no iss claim"
    assert 'error_description="the bearer token is not a JWT"' in garbage.headers["www-authenticate"]
