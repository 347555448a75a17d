"""The gateway's session tokens: what one carries back, and every way a forged or stale one is refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionConfig, SessionTokens
from gateway.errors import InvalidCredentials
from tests.auth.samples import ZHANG_WEI

SECRET = "a-shared-secret-long-enough-for-hs256-and-for-an-hs512-forgery-too"
CLERK = dataclasses.replace(ZHANG_WEI, via="cas", scopes=frozenset({"person:read"}))
CITIZEN = Principal(subject="li.na", kind=PrincipalKind.CITIZEN, via="cas", id_number="11010519491231002X")


@pytest.fixture
def tokens() -> SessionTokens:
    return SessionTokens(SessionConfig(secret=SECRET, ttl="15m"))


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("principal", [CLERK, CITIZEN], ids=["clerk", "citizen"])
def test_a_session_token_gives_back_the_principal_it_was_issued_for(
    tokens: SessionTokens, principal: Principal
) -> None:
    token, expires_in = tokens.issue(principal)

    assert expires_in == 900.0
    back = tokens.authenticate(token)
    assert back == principal
    assert back.via == "cas"  # how the person logged in, for the audit
    assert back.expires_at is not None
    assert time.time() + 890 < back.expires_at <= time.time() + 900


def test_a_session_token_is_hs256_with_issuer_audience_and_expiry(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(CLERK)

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = _claims(token)
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("onewindow-session", "onewindow", "zhang.wei")
    assert claims["exp"] - claims["iat"] == 900


def test_a_session_does_not_outlive_the_credential_it_came_from(tokens: SessionTokens) -> None:
    short_lived = Principal(subject="svc", kind=PrincipalKind.SERVICE, via="oidc:province", expires_at=time.time() + 60)
    _, expires_in = tokens.issue(short_lived)
    assert 58 <= expires_in <= 60

    expired = Principal(subject="svc", kind=PrincipalKind.SERVICE, via="oidc:province", expires_at=time.time() - 1)
    with pytest.raises(InvalidCredentials, match="has expired"):
        tokens.issue(expired)


def _resigned(token: str, key: str | bytes = SECRET, algorithm: str = "HS256", **changes: Any) -> str:
    """The claims of ``token`` with ``changes`` (``None`` removes a claim), signed again."""
    claims = {**_claims(token), **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 10}, "session token expired"),
        ({"aud": "another-gateway"}, "session token is meant for another audience"),
        ({"iss": "someone-else"}, "session token comes from another issuer"),
        ({"exp": None}, "session token lacks the 'exp' claim"),
        ({"aud": None}, "session token lacks the 'aud' claim"),
        ({"iss": None}, "session token lacks the 'iss' claim"),
        ({"kind": "emperor"}, "unknown principal kind 'emperor'"),
        ({"via": None}, "does not say how its holder logged in"),
    ],
)
def test_a_properly_signed_token_with_wrong_claims_is_refused(
    tokens: SessionTokens, changes: dict[str, Any], reason: str
) -> None:
    token, _ = tokens.issue(CLERK)
    with pytest.raises(InvalidCredentials, match=reason):
        tokens.authenticate(_resigned(token, **changes))


def test_a_token_signed_with_another_secret_is_refused(tokens: SessionTokens) -> None:
    other = SessionTokens(SessionConfig(secret="another-secret-also-32-bytes-long!"))
    token, _ = other.issue(CLERK)
    with pytest.raises(InvalidCredentials, match=r"^session token signature does not verify$"):
        tokens.authenticate(token)


def test_a_tampered_payload_is_refused(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(CLERK)
    header, _, signature = token.split(".")
    promoted = {**_claims(token), "kind": "officer", "roles": ["supervisor", "cache_admin"]}
    payload = _b64(json.dumps(promoted).encode())

    with pytest.raises(InvalidCredentials, match=r"^session token signature does not verify$"):
        tokens.authenticate(f"{header}.{payload}.{signature}")


def test_an_unsigned_alg_none_token_is_refused(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(CLERK)
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = token.split(".")[1]

    for unsigned in (f"{header}.{payload}.", f"{header}.{payload}.{token.split('.')[2]}"):
        with pytest.raises(InvalidCredentials, match=r"^session token not signed with HS256$"):
            tokens.authenticate(unsigned)


def test_a_token_signed_with_another_algorithm_is_refused(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(CLERK)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    for forged in (_resigned(token, key=private_key, algorithm="RS256"), _resigned(token, algorithm="HS512")):
        with pytest.raises(InvalidCredentials, match=r"^session token not signed with HS256$"):
            tokens.authenticate(forged)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "x" * 5000])
def test_garbage_is_refused_without_echoing_it(tokens: SessionTokens, garbage: str) -> None:
    with pytest.raises(InvalidCredentials, match=r"^malformed session token$"):
        tokens.authenticate(garbage)


def test_tokens_for_another_audience_or_issuer_configuration_are_refused(tokens: SessionTokens) -> None:
    token, _ = tokens.issue(CLERK)
    elsewhere = SessionTokens(SessionConfig(secret=SECRET, audience="onewindow-staging"))
    other_issuer = SessionTokens(SessionConfig(secret=SECRET, issuer="onewindow-staging"))

    with pytest.raises(InvalidCredentials, match="another audience"):
        elsewhere.authenticate(token)
    with pytest.raises(InvalidCredentials, match="another issuer"):
        other_issuer.authenticate(token)


def test_without_a_configured_secret_each_instance_draws_its_own() -> None:
    first, second = SessionTokens(SessionConfig()), SessionTokens(SessionConfig())
    token, _ = first.issue(CLERK)

    assert first.authenticate(token) == CLERK
    with pytest.raises(InvalidCredentials, match="signature does not verify"):
        second.authenticate(token)


def test_a_short_secret_is_refused_at_configuration() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        SessionConfig(secret="too-short")
    assert SessionConfig(ttl="1h").ttl == 3600.0
