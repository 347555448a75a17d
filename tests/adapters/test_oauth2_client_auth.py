"""How the gateway authenticates itself to an OAuth2 token endpoint (``auth_method``), against a real one.

:class:`TokenIssuer` is a Starlette token endpoint and department on loopback. It knows one client, checks exactly
how the client authenticated (an HTTP Basic header, form fields, or an RFC 7523 client assertion verified with the
client's public key), refuses anything else with ``401 invalid_client`` (quoting what it was sent, as careless
issuers do), and issues opaque bearer tokens its ``/insured/{id}`` route accepts.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.credentials import CLIENT_ASSERTION_TYPE
from adapters.rest import RestAdapter
from gateway.config import SourceConfig, parse_config
from gateway.errors import ConfigError, SourceCredentialsRefused, SourceError, SourceFault
from gateway.serving import serve_asgi

SOURCE = "social_insurance"
ZHANG = "11010519491231002X"
CLIENT_ID = "onewindow"
SECRET = "client-secret-with/odd+chars&7"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class TokenIssuer:
    """A token endpoint (``POST /token``) and a department (``GET /insured/{id}``) accepting only its tokens.

    ``public_key`` verifies client assertions; ``refuse_with`` makes the endpoint answer that (status, error) to
    every request. ``seen`` records, per token request, how the client authenticated and the assertion's claims.
    """

    public_key: Any = None
    refuse_with: tuple[int, str] | None = None
    expires_in: int = 3600
    seen: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self._token, methods=["POST"]), Route("/insured/{id}", self._insured)])

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        authorization = request.headers.get("authorization", "")
        seen: dict[str, Any] = {"authorization": authorization, "form": form}
        self.seen.append(seen)
        if self.refuse_with is not None:
            status, error = self.refuse_with
            return JSONResponse({"error": error, "error_description": f"refused {form}"}, status)
        if authorization.startswith("Basic "):
            seen["method"] = "client_secret_basic"
            user, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            accepted = user == CLIENT_ID and secret == SECRET and "client_secret" not in form
        elif "client_secret" in form:
            seen["method"] = "client_secret_post"
            accepted = form.get("client_id") == CLIENT_ID and form["client_secret"] == SECRET
        elif form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE:
            seen["method"] = "private_key_jwt"
            accepted = self._assertion_holds(form["client_assertion"], str(request.url), seen)
        else:
            accepted = False
        if not accepted or form.get("grant_type") != "client_credentials":
            # Like some issuers, it quotes what it refused, secrets included.
            description = f"client not authenticated: {authorization} {form}"
            return JSONResponse({"error": "invalid_client", "error_description": description}, 401)
        token = f"opaque-token-{len(self.issued)}"
        self.issued.append(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})

    def _assertion_holds(self, assertion: str, token_url: str, seen: dict[str, Any]) -> bool:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256", "ES256"],
                audience=token_url,
                issuer=CLIENT_ID,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            seen["assertion_error"] = str(exc)
            return False
        seen |= {"alg": header["alg"], "kid": header.get("kid"), "claims": claims}
        return bool(claims["sub"] == CLIENT_ID)

    async def _insured(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return JSONResponse({"error": "invalid_token"}, 401)
        return JSONResponse({"idNumber": request.path_params["id"], "insured": True})


def _pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
async def issuer_url(issuer: TokenIssuer) -> AsyncIterator[str]:
    async with serve_asgi(issuer.app()) as url:
        yield url


def _document(url: str, credentials: dict[str, Any]) -> dict[str, Any]:
    """A configuration file's content with one REST source behind the issuer's tokens."""
    source = {
        "kind": "rest",
        "department": "Human Resources and Social Security Bureau",
        "timeout": "5s",
        "base_url": url,
        "credentials": {"type": "oauth2_client_credentials", "token_url": f"{url}/token", **credentials},
        "queries": {"insured": {"path": "/insured/{key}"}},
        "provides": {"Person.socialInsurance": {"query": "insured", "fields": {"insured": {"value": "insured"}}}},
    }
    return {"sources": {SOURCE: source}}


def _load(url: str, credentials: dict[str, Any], variables: dict[str, str] | None = None) -> SourceConfig:
    return parse_config(_document(url, credentials), variables or {}).sources[SOURCE]


async def _fetch(config: SourceConfig) -> dict[str, Any]:
    async with RestAdapter(SOURCE, config) as adapter:
        return await adapter.fetch("insured", [ZHANG])


async def _refusal(config: SourceConfig) -> SourceError:
    with pytest.raises(SourceError) as info:
        await _fetch(config)
    return info.value


def _assert_secret_free(error: BaseException, *secrets: str) -> None:
    text = f"{error} {error!r} {getattr(error, 'reason', '')}"
    for secret in secrets:
        assert secret not in text, f"a secret reached the error: {text}"


# -- client_secret_basic, client_secret_post ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", None])
async def test_client_secret_methods_authenticate_as_configured(
    issuer: TokenIssuer, issuer_url: str, method: str | None
) -> None:
    credentials = {"client_id": CLIENT_ID, "client_secret": "${SI_SECRET}"}
    if method is not None:
        credentials["auth_method"] = method
    result = await _fetch(_load(issuer_url, credentials, {"SI_SECRET": SECRET}))

    assert result[ZHANG][0]["insured"] is True
    [seen] = issuer.seen
    assert seen["method"] == (method or "client_secret_basic"), "client_secret_basic is the default"
    if seen["method"] == "client_secret_post":
        assert seen["authorization"] == ""
        assert seen["form"] == {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    else:
        assert seen["form"] == {"grant_type": "client_credentials"}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_a_refused_client_is_refused_credentials_quoting_no_secret(
    issuer: TokenIssuer, issuer_url: str, method: str
) -> None:
    wrong = "not-the-secret/+&=9"
    error = await _refusal(_load(issuer_url, {"client_id": CLIENT_ID, "client_secret": wrong, "auth_method": method}))

    assert isinstance(error, SourceCredentialsRefused)
    assert isinstance(error, SourceFault), "still a source fault for code that knows only those"
    assert error.extensions == {"code": "SOURCE_CREDENTIALS_REFUSED", "source": SOURCE}
    assert "refused the client credentials (401: invalid_client" in error.reason
    assert f"check sources.{SOURCE}.credentials" in error.reason
    basic = base64.b64encode(f"{CLIENT_ID}:{wrong}".encode()).decode()
    _assert_secret_free(error, wrong, basic, "not-the-secret%2F%2B%26%3D9")


@pytest.mark.parametrize(
    ("refusal", "kind"),
    [
        ((400, "invalid_client"), SourceCredentialsRefused),
        ((400, "unauthorized_client"), SourceCredentialsRefused),
        ((403, "access_denied"), SourceCredentialsRefused),
        ((400, "invalid_scope"), SourceFault),
    ],
)
async def test_which_token_endpoint_refusals_mean_the_credentials(
    issuer: TokenIssuer, issuer_url: str, refusal: tuple[int, str], kind: type[SourceError]
) -> None:
    issuer.refuse_with = refusal
    error = await _refusal(_load(issuer_url, {"client_id": CLIENT_ID, "client_secret": SECRET}))

    assert type(error) is kind
    assert f"({refusal[0]}: {refusal[1]} refused" in error.reason
    _assert_secret_free(error, SECRET)


# -- private_key_jwt ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_private_key_jwt_from_a_pem_file_signs_an_rfc7523_assertion(
    issuer: TokenIssuer,
    issuer_url: str,
    tmp_path: Path,
    alg: str,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    key: PrivateKey = rsa_key if alg == "RS256" else ec_key
    issuer.public_key = key.public_key()
    key_file = tmp_path / "client.key"
    key_file.write_text(_pem(key), encoding="ascii")
    credentials = {
        "client_id": CLIENT_ID,
        "auth_method": "private_key_jwt",
        "private_key_file": str(key_file),
        "alg": alg,
        "key_id": "onewindow-2026",
        "assertion_lifetime": "90s",
        "scope": "insured.read",
    }
    result = await _fetch(_load(issuer_url, credentials))

    assert result[ZHANG][0]["insured"] is True
    [seen] = issuer.seen
    assert seen["method"] == "private_key_jwt", seen.get("assertion_error")
    assert seen["authorization"] == "", "no Basic header: the assertion is the proof"
    assert "client_secret" not in seen["form"]
    assert seen["form"]["client_id"] == CLIENT_ID
    assert seen["form"]["scope"] == "insured.read"
    assert (seen["alg"], seen["kid"]) == (alg, "onewindow-2026")
    claims = seen["claims"]
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == f"{issuer_url}/token"
    assert claims["exp"] - claims["iat"] == 90
    assert len(claims["jti"]) >= 16


async def test_private_key_jwt_from_the_environment_and_a_fresh_assertion_per_token(
    issuer: TokenIssuer, issuer_url: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    issuer.public_key = rsa_key.public_key()
    one_line = _pem(rsa_key).replace("\n", "\\n")  # how a PEM often sits in an environment variable
    credentials = {"client_id": CLIENT_ID, "auth_method": "private_key_jwt", "private_key": "${SI_CLIENT_KEY}"}
    config = _load(issuer_url, credentials, {"SI_CLIENT_KEY": one_line})
    assert one_line not in repr(config)

    async with RestAdapter(SOURCE, config) as adapter:
        await adapter.fetch("insured", [ZHANG])
        issuer.revoked.update(issuer.issued)  # the department refuses the token: a new one, a new assertion
        assert ZHANG in await adapter.fetch("insured", [ZHANG])

    assert [seen["method"] for seen in issuer.seen] == ["private_key_jwt", "private_key_jwt"]
    first, second = (seen["claims"]["jti"] for seen in issuer.seen)
    assert first != second, "an assertion is never replayed"


async def test_an_assertion_signed_with_another_key_is_refused_credentials(
    issuer: TokenIssuer, issuer_url: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    issuer.public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = _pem(rsa_key)
    credentials = {"client_id": CLIENT_ID, "auth_method": "private_key_jwt", "private_key": pem}
    error = await _refusal(_load(issuer_url, credentials))

    assert isinstance(error, SourceCredentialsRefused)
    assert "Signature verification failed" in issuer.seen[0]["assertion_error"]
    _assert_secret_free(error, pem, pem.splitlines()[1])


@pytest.mark.parametrize(
    ("credentials", "at_fault", "said"),
    [
        ({"auth_method": "private_key_jwt"}, "credentials", "exactly one of private_key"),
        ({"auth_method": "private_key_jwt", "private_key": "x", "client_secret": "s"}, "credentials", "no client_sec"),
        ({"auth_method": "client_secret_post"}, "credentials", "client_secret_post needs client_secret"),
        ({"client_secret": "s", "private_key": "x"}, "credentials", "private_key is for auth_method: private_key_jwt"),
        ({"auth_method": "client_assertion", "client_secret": "s"}, "credentials.auth_method", "Input should be"),
        ({"auth_method": "private_key_jwt", "private_key": "x", "alg": "HS256"}, "credentials.alg", "Input should"),
    ],
)
def test_credentials_that_do_not_fit_the_method_are_config_errors(
    credentials: dict[str, Any], at_fault: str, said: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load("https://si.example.gov.cn", {"client_id": CLIENT_ID, **credentials})

    assert info.value.path == f"sources.{SOURCE}.{at_fault}"
    assert said in info.value.reason


def test_unusable_private_keys_are_config_errors_naming_the_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    garbled = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    cases = [
        ({"private_key": garbled}, "private_key", "not an unencrypted PEM private key"),
        ({"private_key": _pem(rsa_key), "alg": "ES256"}, "private_key", "alg ES256 needs a P-256 EC private key"),
        ({"private_key": _pem(ec_key)}, "private_key", "alg RS256 needs an RSA private key"),
    ]
    key_file = tmp_path / "garbled.key"
    key_file.write_text(garbled, encoding="ascii")
    cases.append(({"private_key_file": str(key_file)}, "private_key_file", "not an unencrypted PEM private key"))
    for given, at_fault, said in cases:
        config = _load("https://si.example.gov.cn", {"client_id": CLIENT_ID, "auth_method": "private_key_jwt", **given})
        with pytest.raises(ConfigError) as info:
            RestAdapter(SOURCE, config)
        assert info.value.path == f"sources.{SOURCE}.credentials.{at_fault}"
        assert said in info.value.reason
        assert "c2VjcmV0" not in str(info.value)
