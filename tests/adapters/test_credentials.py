"""The gateway's own credentials to departments, against real servers that check them.

A department refusing the gateway's credentials (HTTP 401/403, an OAuth2 token endpoint's refusal) is
``SOURCE_CREDENTIALS_REFUSED``, a kind of ``SOURCE_FAULT`` (a WS-Security fault stays ``SOURCE_FAULT``): it answered,
and the fix is in OneWindow's configuration, not in waiting. A token endpoint that cannot be reached, or a
TLS handshake the department refuses, is ``SOURCE_UNAVAILABLE``. No message, repr or log line carries a secret.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.credentials import (
    ACTING_PRINCIPAL,
    HmacHeadersAuth,
    HmacHeadersCredentials,
    OAuth2ClientCredentials,
    OAuth2ClientCredentialsAuth,
    verify_hmac_request,
)
from adapters.rest import RestAdapter
from adapters.soap import SoapAdapter
from auth.principal import Principal, PrincipalKind
from gateway.config import SourceConfig, parse_config
from gateway.errors import (
    ConfigError,
    InvalidCredentials,
    SourceCredentialsRefused,
    SourceError,
    SourceFault,
    SourceUnavailable,
)
from tests.adapters.secured_servers import GuardedDepartment, Pki, TokenCounter, WsseDepartment, make_pki, serve
from tests.conftest import unused_port
from tests.oauth2_server import OAuth2MockServer, ServerTls, start_oauth2_mock_server

SOURCE = "social_insurance"
ZHANG = "11010519491231002X"
CLERK = Principal(
    subject="zhang.wei", kind=PrincipalKind.CLERK, via="oidc:province", department="民政局", window="A-07"
)


def rest_source_data(url: str, scheme: str, *, query: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """A social-insurance source reading ``/<scheme>/insured/{key}`` (or ``query``) with connection ``options``."""
    return {
        "kind": "rest",
        "department": "Human Resources and Social Security Bureau",
        "timeout": "5s",
        "base_url": url,
        **options,
        "queries": {"insured": query or {"path": f"/{scheme}/insured/{{key}}"}},
        "provides": {"Person.socialInsurance": {"query": "insured", "fields": {"insured": {"value": "insured"}}}},
    }


def rest_source(url: str, scheme: str, *, query: dict[str, Any] | None = None, **options: Any) -> SourceConfig:
    return SourceConfig.model_validate(rest_source_data(url, scheme, query=query, **options))


def soap_source(wsdl: str, **options: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "kind": "soap",
            "department": "Civil Affairs Bureau",
            "timeout": "5s",
            "wsdl": wsdl,
            **options,
            "queries": {"person": {"operation": "QueryPerson", "request": {"IdCardNo": "{key}"}}},
            "provides": {"Person.name": {"query": "person", "value": "XM"}},
        }
    )


def rest_source_document(url: str, **options: Any) -> dict[str, Any]:
    """A whole configuration file's content with one REST source, as YAML would give it."""
    return {"sources": {SOURCE: rest_source_data(url, "open", **options)}}


def load(document: dict[str, Any], variables: dict[str, str] | None = None) -> SourceConfig:
    """The source as the gateway loads it: interpolated, validated and checked against its adapter."""
    return parse_config(document, variables or {}).sources[SOURCE]


async def fetch_rest(config: SourceConfig) -> dict[str, Any]:
    async with RestAdapter(SOURCE, config) as adapter:
        return await adapter.fetch("insured", [ZHANG])


async def refusal(config: SourceConfig) -> SourceError:
    with pytest.raises(SourceError) as info:
        await fetch_rest(config)
    return info.value


def assert_secret_free(error: BaseException, *secrets: str) -> None:
    text = f"{error} {error!r} {getattr(error, 'reason', '')}"
    for secret in secrets:
        assert secret not in text, f"a secret reached the error: {text}"


@pytest.fixture
def department() -> GuardedDepartment:
    return GuardedDepartment()


@pytest.fixture
async def department_url(department: GuardedDepartment) -> AsyncIterator[str]:
    async with serve(department.app()) as url:
        yield url


# -- basic, bearer -----------------------------------------------------------------------------------------------


async def test_basic_credentials_read_records(department: GuardedDepartment, department_url: str) -> None:
    credentials = {"type": "basic", "username": department.username, "password": department.password}
    result = await fetch_rest(rest_source(department_url, "basic", credentials=credentials))
    assert result[ZHANG][0]["idNumber"] == ZHANG


async def test_bearer_token_reads_records(department: GuardedDepartment, department_url: str) -> None:
    result = await fetch_rest(
        rest_source(department_url, "bearer", credentials={"type": "bearer", "token": department.token})
    )
    assert result[ZHANG][0]["insured"] is True


@pytest.mark.parametrize(
    ("scheme", "credentials", "secret"),
    [
        ("basic", {"type": "basic", "username": "onewindow", "password": "not-the-password"}, "not-the-password"),
        ("bearer", {"type": "bearer", "token": "stolen-token-0000"}, "stolen-token-0000"),
        ("hmac", {"type": "hmac_headers", "key_id": "onewindow-2026", "secret": "guessed-secret"}, "guessed-secret"),
    ],
    ids=["basic", "bearer", "hmac"],
)
async def test_refused_credentials_are_refused_credentials_that_quote_no_secret(
    department_url: str, scheme: str, credentials: dict[str, str], secret: str
) -> None:
    error = await refusal(rest_source(department_url, scheme, credentials=credentials))

    assert isinstance(error, SourceCredentialsRefused)
    assert error.extensions == {"code": "SOURCE_CREDENTIALS_REFUSED", "source": SOURCE}
    assert "401" in error.reason
    assert f"check sources.{SOURCE}.credentials" in error.reason
    assert "***" in error.reason or scheme == "hmac", "the department quoted the credentials; they are masked"
    basic = base64.b64encode(f"onewindow:{secret}".encode()).decode()
    assert_secret_free(error, secret, basic)


async def test_without_credentials_the_guarded_route_refuses(department_url: str) -> None:
    error = await refusal(rest_source(department_url, "bearer"))
    assert isinstance(error, SourceCredentialsRefused)


# -- hmac_headers ------------------------------------------------------------------------------------------------


def _hmac(department: GuardedDepartment, **changes: Any) -> dict[str, Any]:
    [(key_id, secret)] = department.hmac_keys.items()
    return {"type": "hmac_headers", "key_id": key_id, "secret": secret, **changes}


async def test_hmac_headers_carry_the_acting_principal_signed(
    department: GuardedDepartment, department_url: str
) -> None:
    config = rest_source(department_url, "hmac", credentials=_hmac(department))
    token = ACTING_PRINCIPAL.set(CLERK)
    try:
        result = await fetch_rest(config)
    finally:
        ACTING_PRINCIPAL.reset(token)
    assert result[ZHANG][0]["acting"] == {
        "subject": "zhang.wei",
        "kind": "clerk",
        "via": "oidc:province",
        "department": "民政局",
        "window": "A-07",
    }
    assert (await fetch_rest(config))[ZHANG][0]["acting"] is None, "no acting principal outside a request"


async def test_hmac_signs_the_body_and_query_of_a_post(department: GuardedDepartment, department_url: str) -> None:
    query = {"path": "/hmac/insured/{key}", "method": "POST", "params": {"year": "2024"}, "body": {"id": "{key}"}}
    config = rest_source(department_url, "hmac", query=query, credentials=_hmac(department))
    assert (await fetch_rest(config))[ZHANG][0]["idNumber"] == ZHANG


async def test_hmac_header_names_are_configurable(department: GuardedDepartment, department_url: str) -> None:
    names = {"key_id": "X-Key", "principal": "X-Acting", "timestamp": "X-Time", "signature": "X-Sig"}
    error = await refusal(rest_source(department_url, "hmac", credentials=_hmac(department, headers=names)))
    assert "no X-OneWindow-Key-Id header" in error.reason, "the department expects the default names"


def _signed(secret: str = "s3cret", principal: Principal | None = CLERK) -> httpx.Request:
    """A request as HmacHeadersAuth signs it (captured with a MockTransport)."""
    auth = HmacHeadersAuth(HmacHeadersCredentials(type="hmac_headers", key_id="k1", secret=secret))
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(204)

    token = ACTING_PRINCIPAL.set(principal)
    try:
        with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
            client.post("https://si.example/insured?year=2024", content=b'{"id": "1"}')
    finally:
        ACTING_PRINCIPAL.reset(token)
    return captured[0]


def _verify(request: httpx.Request, **changes: Any) -> Principal | None:
    arguments: dict[str, Any] = {
        "method": request.method,
        "target": request.url.raw_path.decode(),
        "headers": dict(request.headers),
        "body": request.content,
        "secrets": {"k1": "s3cret"},
    }
    return verify_hmac_request(**(arguments | changes))


def test_verify_hmac_request_returns_the_acting_principal() -> None:
    assert _verify(_signed()) == Principal(
        subject="zhang.wei", kind=PrincipalKind.CLERK, via="oidc:province", department="民政局", window="A-07"
    )
    assert _verify(_signed(principal=None)) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"method": "GET"}, "does not match"),
        ({"target": "/insured?year=2025"}, "does not match"),
        ({"body": b'{"id": "2"}'}, "does not match"),
        ({"secrets": {"k1": "other"}}, "does not match"),
        ({"secrets": {"k2": "s3cret"}}, "unknown key id"),
        ({"now": 10**10}, "signed"),
    ],
    ids=["method", "query", "body", "secret", "key-id", "stale"],
)
def test_verify_hmac_request_refuses_a_changed_or_stale_request(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidCredentials, match=reason) as info:
        _verify(_signed(), **changes)
    assert "s3cret" not in str(info.value)


def test_verify_hmac_request_refuses_a_swapped_principal() -> None:
    request = _signed()
    other = _signed(principal=Principal(subject="li.si", kind=PrincipalKind.OFFICER, via="cas"))
    headers = dict(request.headers) | {"x-onewindow-principal": other.headers["x-onewindow-principal"]}
    with pytest.raises(InvalidCredentials, match="does not match"):
        _verify(request, headers=headers)
    with pytest.raises(InvalidCredentials, match="no X-OneWindow-Signature"):
        _verify(request, headers={k: v for k, v in request.headers.items() if k != "x-onewindow-signature"})


# -- OAuth2 client credentials -----------------------------------------------------------------------------------


@pytest.fixture
async def issuer() -> AsyncIterator[OAuth2MockServer]:
    async with start_oauth2_mock_server() as server:
        yield server


@pytest.fixture
async def token_counter(issuer: OAuth2MockServer) -> AsyncIterator[tuple[TokenCounter, str]]:
    counter = TokenCounter(issuer.token_url)
    async with serve(counter.app()) as url:
        yield counter, f"{url}/token"


@pytest.fixture
async def oauth_department(issuer: OAuth2MockServer) -> AsyncIterator[tuple[GuardedDepartment, str]]:
    department = GuardedDepartment(issuer=issuer.issuer)
    async with serve(department.app()) as url:
        yield department, url


def _oauth(token_url: str, **changes: Any) -> dict[str, Any]:
    return {
        "type": "oauth2_client_credentials",
        "token_url": token_url,
        "client_id": "onewindow",
        "client_secret": "oauth-client-secret-31d",
        "scope": "insured.read",
        "audience": "social_insurance",
        "audience_param": "aud",  # oauth2-mock-server's name for it
        **changes,
    }


async def test_oauth2_token_is_fetched_once_and_shared(
    oauth_department: tuple[GuardedDepartment, str], token_counter: tuple[TokenCounter, str]
) -> None:
    department, url = oauth_department
    counter, token_url = token_counter
    async with RestAdapter(SOURCE, rest_source(url, "oauth", credentials=_oauth(token_url))) as adapter:
        answers = await asyncio.gather(*(adapter.fetch("insured", [ZHANG]) for _ in range(8)))
        answers.append(await adapter.fetch("insured", [ZHANG]))

    assert all(answer[ZHANG][0]["scope"] == "insured.read" for answer in answers), "the department verified the JWT"
    assert len(counter.requests) == 1, "one token for nine calls, eight of them concurrent"
    assert len(set(department.bearer_tokens)) == 1
    [(authorization, form)] = counter.requests
    assert authorization == "Basic " + base64.b64encode(b"onewindow:oauth-client-secret-31d").decode()
    assert form == {"grant_type": "client_credentials", "scope": "insured.read", "aud": "social_insurance"}


async def test_oauth2_token_is_renewed_refresh_margin_before_it_expires(
    oauth_department: tuple[GuardedDepartment, str], token_counter: tuple[TokenCounter, str]
) -> None:
    _, url = oauth_department
    counter, token_url = token_counter
    # The issuer says the token lives 3s; renewed 2s before that, it is fresh for 1s.
    credentials = _oauth(token_url, token_params={"expires_in": "3"}, refresh_margin="2s")
    async with RestAdapter(SOURCE, rest_source(url, "oauth", credentials=credentials)) as adapter:
        await adapter.fetch("insured", [ZHANG])
        await adapter.fetch("insured", [ZHANG])
        assert len(counter.requests) == 1
        await asyncio.sleep(1.1)
        await adapter.fetch("insured", [ZHANG])
    assert len(counter.requests) == 2


async def test_oauth2_401_is_retried_once_with_a_fresh_token(
    issuer: OAuth2MockServer,
    oauth_department: tuple[GuardedDepartment, str],
    token_counter: tuple[TokenCounter, str],
) -> None:
    department, url = oauth_department
    counter, token_url = token_counter
    async with RestAdapter(SOURCE, rest_source(url, "oauth", credentials=_oauth(token_url))) as adapter:
        await adapter.fetch("insured", [ZHANG])
        retired = issuer.signing_kid
        await issuer.rotate()
        await issuer.remove_key(retired)  # the cached token's key is gone: the department refuses it

        assert ZHANG in await adapter.fetch("insured", [ZHANG])

    assert len(counter.requests) == 2
    assert len(department.bearer_tokens) == 3, "the refused call, then the same call with the fresh token"


async def test_oauth2_refused_again_after_the_retry_is_refused_credentials(
    oauth_department: tuple[GuardedDepartment, str], token_counter: tuple[TokenCounter, str]
) -> None:
    department, url = oauth_department
    counter, token_url = token_counter
    credentials = _oauth(token_url, audience="another_department")
    error = await refusal(rest_source(url, "oauth", credentials=credentials))

    assert isinstance(error, SourceCredentialsRefused)
    assert "401" in error.reason
    assert len(counter.requests) == 2, "one fresh token, one retry, then the error"
    assert len(department.bearer_tokens) == 2
    assert_secret_free(error, "oauth-client-secret-31d", *department.bearer_tokens)


async def test_token_endpoint_failures_are_the_sources_errors(
    issuer: OAuth2MockServer, oauth_department: tuple[GuardedDepartment, str]
) -> None:
    _, url = oauth_department
    cases: list[tuple[str, dict[str, Any], type[SourceError], str]] = [
        (f"http://127.0.0.1:{unused_port()}/token", {}, SourceUnavailable, "cannot reach token endpoint"),
        (f"{issuer.issuer}/no-such-endpoint", {}, SourceFault, "refused the client credentials (404"),
        (issuer.token_url, {"token_params": {"claims": "not json"}}, SourceUnavailable, "answered 500"),
    ]
    for token_url, changes, kind, said in cases:
        error = await refusal(rest_source(url, "oauth", credentials=_oauth(token_url, **changes)))
        assert type(error) is kind, (token_url, error)
        assert said in error.reason
        assert error.source == SOURCE
        assert_secret_free(error, "oauth-client-secret-31d")


async def test_oauth2_token_for_a_wsdl_is_fetched_by_the_synchronous_flow(
    issuer: OAuth2MockServer, token_counter: tuple[TokenCounter, str]
) -> None:
    counter, token_url = token_counter
    auth = OAuth2ClientCredentialsAuth(SOURCE, OAuth2ClientCredentials.model_validate(_oauth(token_url)), timeout=5.0)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200)

    def load_wsdl_twice() -> None:  # as zeep does: a synchronous client, in a worker thread
        with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as client:
            client.get("https://mz.example/person?wsdl")
            client.get("https://mz.example/person?wsdl")

    await asyncio.to_thread(load_wsdl_twice)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as client:
        await client.get("https://mz.example/person")
    assert len(counter.requests) == 1
    assert len(seen) == 3
    assert len(set(seen)) == 1, "the async flow reuses the token the synchronous one fetched"
    assert seen[0].startswith("Bearer ey")


# -- WS-Security UsernameToken -----------------------------------------------------------------------------------


@pytest.fixture
def wsse_department() -> WsseDepartment:
    return WsseDepartment()


@pytest.fixture
async def wsse_wsdl(wsse_department: WsseDepartment) -> AsyncIterator[str]:
    async with serve(wsse_department.app()) as url:
        yield f"{url}/person?wsdl"


def _wsse(department: WsseDepartment, **changes: Any) -> dict[str, Any]:
    return {"type": "wsse_username_token", "username": department.username, "password": department.password} | changes


@pytest.mark.parametrize("digest", [True, False], ids=["PasswordDigest", "PasswordText"])
async def test_wsse_username_token_reads_records(wsse_department: WsseDepartment, wsse_wsdl: str, digest: bool) -> None:
    config = soap_source(wsse_wsdl, credentials=_wsse(wsse_department, digest=digest))
    async with SoapAdapter("civil_affairs", config) as adapter:
        first = await adapter.fetch("person", [ZHANG])
        second = await adapter.fetch("person", [ZHANG])  # a fresh nonce each call
    assert first == second == {ZHANG: [{"IdCardNo": ZHANG, "XM": "张三"}]}


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"password": "wrong-soap-password", "digest": True}, "password digest"),
        ({"password": "wrong-soap-password", "digest": False}, "refused"),
    ],
    ids=["PasswordDigest", "PasswordText"],
)
async def test_refused_username_token_is_a_source_fault_without_the_password(
    wsse_department: WsseDepartment, wsse_wsdl: str, changes: dict[str, Any], said: str
) -> None:
    config = soap_source(wsse_wsdl, credentials=_wsse(wsse_department, **changes))
    async with SoapAdapter("civil_affairs", config) as adapter:
        with pytest.raises(SourceFault, match="FailedAuthentication") as info:
            await adapter.fetch("person", [ZHANG])
    assert said in info.value.reason
    assert_secret_free(info.value, "wrong-soap-password")


async def test_password_text_is_not_in_zeeps_debug_log(
    wsse_department: WsseDepartment, wsse_wsdl: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = soap_source(wsse_wsdl, credentials=_wsse(wsse_department, digest=False))
    with caplog.at_level(logging.DEBUG, logger="zeep.transports"):
        async with SoapAdapter("civil_affairs", config) as adapter:
            await adapter.fetch("person", [ZHANG])
    envelopes = [record.getMessage() for record in caplog.records if "HTTP Post to" in record.getMessage()]
    assert envelopes, "zeep logged the envelope it sent"
    assert all(wsse_department.password not in message and "***" in message for message in envelopes)


def test_wsse_on_a_rest_source_is_a_config_error_naming_the_key() -> None:
    credentials = {"type": "wsse_username_token", "username": "u", "password": "p"}
    with pytest.raises(ConfigError) as info:
        load(rest_source_document("https://si.example", credentials=credentials))
    assert info.value.path == f"sources.{SOURCE}.credentials.type"
    assert "SOAP" in info.value.reason


# -- mutual TLS --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def mtls_url(pki: Pki) -> AsyncIterator[str]:
    async with serve(GuardedDepartment().app(), tls=pki) as url:
        yield url


async def test_mutual_tls_reads_records_with_the_client_certificate(pki: Pki, mtls_url: str) -> None:
    tls = {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key)}
    assert ZHANG in await fetch_rest(rest_source(mtls_url, "open", tls=tls))


@pytest.mark.parametrize("client", ["none", "stranger"])
async def test_mutual_tls_without_an_accepted_certificate_is_source_unavailable(
    pki: Pki, mtls_url: str, client: str
) -> None:
    tls: dict[str, str] = {"ca": str(pki.ca)}
    if client == "stranger":
        tls |= {"cert": str(pki.stranger_cert), "key": str(pki.stranger_key)}
    error = await refusal(rest_source(mtls_url, "open", tls=tls))
    assert isinstance(error, SourceUnavailable)


async def test_server_certificate_from_an_unknown_ca_is_source_unavailable(pki: Pki, mtls_url: str) -> None:
    error = await refusal(rest_source(mtls_url, "open", tls={"cert": str(pki.client_cert), "key": str(pki.client_key)}))
    assert isinstance(error, SourceUnavailable)
    assert "CERTIFICATE_VERIFY_FAILED" in error.reason


async def test_mutual_tls_for_soap_covers_the_wsdl_and_the_calls(pki: Pki) -> None:
    department = WsseDepartment()
    async with serve(department.app(), tls=pki) as url:
        wsdl = f"{url}/person?wsdl"
        tls = {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key)}
        config = soap_source(wsdl, credentials=_wsse(department), tls=tls)
        async with SoapAdapter("civil_affairs", config) as adapter:
            assert ZHANG in await adapter.fetch("person", [ZHANG])

        without = SoapAdapter(
            "civil_affairs", soap_source(wsdl, credentials=_wsse(department), tls={"ca": str(pki.ca)})
        )
        with pytest.raises(SourceUnavailable, match="WSDL"):
            await without.open()
        await without.aclose()


@pytest.fixture
async def mtls_issuer(pki: Pki) -> AsyncIterator[OAuth2MockServer]:
    """The token issuer on HTTPS under the private CA, refusing clients without a certificate that CA issued."""
    tls = ServerTls(
        pki.server_cert, pki.server_key, pki.ca, client_ca=pki.ca, client_cert=(pki.client_cert, pki.client_key)
    )
    async with start_oauth2_mock_server(tls=tls) as server:
        yield server


@pytest.fixture
async def private_ca_department(pki: Pki, mtls_issuer: OAuth2MockServer) -> AsyncIterator[str]:
    """The department checks tokens against the issuer's JWKS, which it too reads over mutual TLS."""
    verify = ssl.create_default_context(cafile=str(pki.ca))
    verify.load_cert_chain(pki.client_cert, pki.client_key)
    async with serve(GuardedDepartment(issuer=mtls_issuer.issuer, issuer_verify=verify).app()) as url:
        yield url


async def test_oauth2_token_endpoint_is_reached_with_the_sources_tls(
    pki: Pki, mtls_issuer: OAuth2MockServer, private_ca_department: str
) -> None:
    tls = {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key)}
    credentials = _oauth(mtls_issuer.token_url)
    answer = await fetch_rest(rest_source(private_ca_department, "oauth", credentials=credentials, tls=tls))
    assert answer[ZHANG][0]["scope"] == "insured.read", "a token from the private-CA issuer, verified"

    public_roots = await refusal(rest_source(private_ca_department, "oauth", credentials=credentials))
    assert isinstance(public_roots, SourceUnavailable)
    assert "CERTIFICATE_VERIFY_FAILED" in public_roots.reason


async def test_oauth2_credentials_tls_of_their_own_replaces_the_sources(
    pki: Pki, mtls_issuer: OAuth2MockServer, private_ca_department: str
) -> None:
    source_tls = {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key)}
    no_certificate = _oauth(mtls_issuer.token_url, tls={"ca": str(pki.ca)})
    error = await refusal(rest_source(private_ca_department, "oauth", credentials=no_certificate, tls=source_tls))
    assert isinstance(error, SourceUnavailable), "the issuer refused the handshake: no client certificate"

    own = _oauth(mtls_issuer.token_url, tls=source_tls)
    answer = await fetch_rest(rest_source(private_ca_department, "oauth", credentials=own))
    assert answer[ZHANG][0]["scope"] == "insured.read"


def test_unreadable_credentials_tls_files_are_config_errors_naming_the_key(tmp_path: Path) -> None:
    credentials = _oauth("https://idp.example/token", tls={"ca": str(tmp_path / "absent-ca.pem")})
    with pytest.raises(ConfigError) as info:
        load(rest_source_document("https://si.example", credentials=credentials))
    assert info.value.path == f"sources.{SOURCE}.credentials.tls.ca"

    garbage = tmp_path / "ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    config = load(
        rest_source_document(
            "https://si.example", credentials=_oauth("https://idp.example/token", tls={"ca": str(garbage)})
        )
    )
    with pytest.raises(ConfigError) as info:
        RestAdapter(SOURCE, config)
    assert info.value.path == f"sources.{SOURCE}.credentials.tls.ca"


def test_unreadable_tls_files_are_config_errors_at_load(pki: Pki, tmp_path: Path) -> None:
    absent = {"cert": str(tmp_path / "absent.pem")}
    with pytest.raises(ConfigError) as info:
        load(rest_source_document("https://si.example", tls=absent))
    assert info.value.path == f"sources.{SOURCE}.tls.cert"

    garbage = tmp_path / "client.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    config = load(rest_source_document("https://si.example", tls={"cert": str(garbage), "key": str(pki.client_key)}))
    with pytest.raises(ConfigError) as info:
        RestAdapter(SOURCE, config)  # as the gateway builds its adapters, at start-up
    assert info.value.path == f"sources.{SOURCE}.tls.cert"


# -- no secret in the configuration's repr ----------------------------------------------------------------------

SECRETS = {"SI_PASSWORD": "pw-4b1d-not-for-logs", "SI_KEY_PASSWORD": "key-pw-e03a"}


@pytest.fixture
def loaded(pki: Pki) -> SourceConfig:
    credentials = {"type": "basic", "username": "onewindow", "password": "${SI_PASSWORD}"}
    tls = {"cert": str(pki.client_cert), "key": str(pki.client_key), "key_password": "${SI_KEY_PASSWORD}"}
    return load(rest_source_document("https://si.example.gov.cn/api/v1", credentials=credentials, tls=tls), SECRETS)


def test_no_secret_in_the_repr_of_the_loaded_configuration(loaded: SourceConfig) -> None:
    adapter = RestAdapter.parse_options(SOURCE, loaded)
    for text in (repr(loaded), str(loaded), repr(adapter), str(adapter), loaded.model_dump_json()):
        for secret in SECRETS.values():
            assert secret not in text, text
