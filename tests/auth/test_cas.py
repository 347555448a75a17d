"""CAS 3.0 tickets against a real CAS server (django-cas-server, ``tests/auth/cas_site``), logged in at the way a
browser does: the login form, its CSRF token and hidden fields, and the ticket from the redirect."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from lxml import html
from pydantic import ValidationError
from starlette.applications import Starlette

from auth.cas import CasConfig, CasValidator, cas_routes
from auth.principal import ClaimMapping, PrincipalKind
from auth.sessions import SessionConfig, SessionTokens
from gateway.errors import InvalidCredentials
from tests.conftest import unused_port

REPOSITORY = Path(__file__).resolve().parents[2]
SERVICE = "http://onewindow.test/auth/cas/callback"
PASSWORD = "correct horse battery staple"  # tests/auth/cas_site/directory.py
MAPPING = ClaimMapping(
    subject="user",
    kind="onewindow_kind",
    department="ou",
    window="counter",
    roles="memberOf",
    id_number="idNumber",
    name="displayName",
)
BOGUS_TICKET = "ST-1-thisticketwasneverissuedbythiscasserver0000"


def _require_django_cas_server() -> None:
    try:
        import cas_server  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("django-cas-server is not installed; CI must install the test extra", pytrace=False)
        pytest.skip("django-cas-server is not installed (pip install -e .[test])")


@pytest.fixture(scope="module")
def cas_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/cas``) of a CAS server that knows :data:`SERVICE`."""
    _require_django_cas_server()
    port = unused_port()
    workdir = tmp_path_factory.mktemp("cas")
    env = {**os.environ, "ONEWINDOW_CAS_DB": str(workdir / "cas.sqlite3")}
    command = [sys.executable, "-m", "tests.auth.cas_site.serve", str(port), SERVICE]
    url = f"http://127.0.0.1:{port}/cas"
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_serving(process, f"{url}/login", workdir / "server.log")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the CAS server exited ({process.returncode}):\n{log.read_text()[-3000:]}", pytrace=False)
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the CAS server did not answer within 30s:\n{log.read_text()[-3000:]}", pytrace=False)


async def login(cas_url: str, username: str, *, login_url: str | None = None) -> str:
    """Log in at the CAS login form as a browser would; the service ticket from the redirect to the service."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(login_url or f"{cas_url}/login", params=None if login_url else {"service": SERVICE})
        assert page.status_code == 200, page.text
        form = html.fromstring(page.text).forms[0]
        fields = {**dict(form.form_values()), "username": username, "password": PASSWORD}
        answer = await browser.post(urljoin(str(page.url), form.action or ""), data=fields)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == SERVICE
    (ticket,) = parse_qs(location.query)["ticket"]
    assert ticket.startswith("ST-")
    return ticket


class RequestLog:
    """Every URL a client sent, via an httpx event hook: to see whether CAS was asked at all."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.urls.append(str(request.url.copy_with(query=None)))


@pytest.fixture
async def requests_sent() -> RequestLog:
    return RequestLog()


@pytest.fixture
async def validator(cas_server: str, requests_sent: RequestLog) -> AsyncIterator[CasValidator]:
    async with httpx.AsyncClient(event_hooks={"request": [requests_sent]}) as client:
        validator = CasValidator(CasConfig(server=cas_server, service=SERVICE, attributes=MAPPING), client=client)
        yield validator
        await validator.aclose()
        assert not client.is_closed, "the validator closed a client it did not create"


async def test_a_clerk_login_becomes_a_principal_with_the_released_attributes(
    cas_server: str, validator: CasValidator
) -> None:
    principal = await validator.validate(await login(cas_server, "zhang.wei"))

    assert principal.subject == "zhang.wei"
    assert principal.kind is PrincipalKind.CLERK
    assert principal.via == "cas"
    assert principal.department == "民政局"
    assert principal.window == "A-07"
    assert principal.roles == frozenset({"case_handler", "supervisor"})  # a multi-valued attribute, both values
    assert principal.name == "张伟"
    assert principal.id_number is None


async def test_a_citizen_login_carries_the_id_number(cas_server: str, validator: CasValidator) -> None:
    principal = await validator.validate(await login(cas_server, "li.na"))

    assert principal.kind is PrincipalKind.CITIZEN
    assert principal.id_number == "11010519491231002X"
    assert principal.roles == frozenset()


async def test_a_replayed_ticket_is_refused_without_asking_cas(
    cas_server: str, validator: CasValidator, requests_sent: RequestLog
) -> None:
    ticket = await login(cas_server, "zhang.wei")
    await validator.validate(ticket)
    assert requests_sent.urls == [f"{cas_server}/p3/serviceValidate"]

    with pytest.raises(InvalidCredentials, match="already used"):
        await validator.validate(ticket)
    assert len(requests_sent.urls) == 1


async def test_the_cas_server_itself_refuses_a_ticket_validated_elsewhere(cas_server: str) -> None:
    ticket = await login(cas_server, "zhang.wei")
    config = CasConfig(server=cas_server, service=SERVICE, attributes=MAPPING)
    first, second = CasValidator(config), CasValidator(config)  # the second has not seen the ticket
    try:
        await first.validate(ticket)
        with pytest.raises(InvalidCredentials, match=r"\(INVALID_TICKET\)") as refused:
            await second.validate(ticket)
    finally:
        await first.aclose()
        await second.aclose()
    assert ticket not in refused.value.message


async def test_a_bogus_ticket_is_refused_with_the_cas_code(validator: CasValidator) -> None:
    with pytest.raises(InvalidCredentials, match=r"^CAS refused the ticket \(INVALID_TICKET\)$"):
        await validator.validate(BOGUS_TICKET)


async def test_a_ticket_issued_for_another_service_is_refused(cas_server: str) -> None:
    ticket = await login(cas_server, "zhang.wei")
    other = CasValidator(CasConfig(server=cas_server, service="http://elsewhere.test/callback", attributes=MAPPING))
    try:
        with pytest.raises(InvalidCredentials, match=r"\(INVALID_SERVICE\)"):
            await other.validate(ticket)
    finally:
        await other.aclose()


@pytest.mark.parametrize("ticket", ["", "PT-1-proxyticket", "ST-", "ST-1-a b", "ST-" + "a" * 300, "ST-1-é"])
async def test_a_malformed_ticket_is_refused_before_asking_cas(
    validator: CasValidator, requests_sent: RequestLog, ticket: str
) -> None:
    with pytest.raises(InvalidCredentials, match="malformed CAS service ticket"):
        await validator.validate(ticket)
    assert requests_sent.urls == []


async def test_an_unreachable_cas_server_is_refused_as_unavailable() -> None:
    config = CasConfig(server=f"http://127.0.0.1:{unused_port()}/cas", service=SERVICE, timeout="2s")
    validator = CasValidator(config)
    try:
        with pytest.raises(InvalidCredentials, match=r"^CAS server unavailable$") as refused:
            await validator.validate(BOGUS_TICKET)
    finally:
        await validator.aclose()
    assert isinstance(refused.value.__cause__, httpx.ConnectError)


# Unit tests of how an answer is read: small hand-written answers through httpx.MockTransport.


@pytest.fixture
async def answering() -> AsyncIterator[Callable[..., CasValidator]]:
    """A validator whose CAS answers ``body`` with ``status`` to every request."""
    clients: list[httpx.AsyncClient] = []

    def make(body: str, status: int = 200, **config: Any) -> CasValidator:
        transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body))
        clients.append(httpx.AsyncClient(transport=transport))
        settings = CasConfig(server="https://cas.test/cas", service=SERVICE, attributes=MAPPING, **config)
        return CasValidator(settings, client=clients[-1])

    yield make
    for client in clients:
        await client.aclose()


_SUCCESS = """<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
  <cas:user>{user}</cas:user>
  <cas:attributes><cas:onewindow_kind>officer</cas:onewindow_kind><!-- a comment --></cas:attributes>
</cas:authenticationSuccess></cas:serviceResponse>"""


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (_SUCCESS.format(user="x").replace("<cas:user>x", "<!DOCTYPE r>\n<cas:user>x"), 200, "not XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
            + _SUCCESS.format(user="&e;"),
            200,
            "not a CAS service response",
        ),
        ("<html><body>Log in</body></html>", 200, "not a CAS service response"),
        ("Service Unavailable", 200, "not XML"),
        ("oops", 503, "HTTP 503"),
        (_SUCCESS.format(user=" "), 200, "names no user"),
        (
            '<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">'
            '<cas:authenticationFailure code="bad code">ST-1-secret</cas:authenticationFailure></cas:serviceResponse>',
            200,
            r"\(UNKNOWN\)",
        ),
    ],
)
async def test_an_answer_that_is_not_a_clean_cas_success_is_refused(
    answering: Callable[..., CasValidator], body: str, status: int, reason: str
) -> None:
    with pytest.raises(InvalidCredentials, match=reason) as refused:
        await answering(body, status).validate(BOGUS_TICKET)
    assert "secret" not in refused.value.message


async def test_comments_in_an_answer_are_ignored(answering: Callable[..., CasValidator]) -> None:
    principal = await answering(_SUCCESS.format(user="wang.fang")).validate(BOGUS_TICKET)
    assert (principal.subject, principal.kind) == ("wang.fang", PrincipalKind.OFFICER)


async def test_a_ticket_is_remembered_for_the_replay_window_only(answering: Callable[..., CasValidator]) -> None:
    # This CAS answers success to anything, so only the local memory of presented tickets refuses the replay.
    validator = answering(_SUCCESS.format(user="wang.fang"), replay_window="200ms")
    await validator.validate(BOGUS_TICKET)
    with pytest.raises(InvalidCredentials, match="already used"):
        await validator.validate(BOGUS_TICKET)

    await asyncio.sleep(0.25)
    assert (await validator.validate(BOGUS_TICKET)).subject == "wang.fang"


def test_a_cas_config_refuses_a_server_that_is_not_an_http_url() -> None:
    with pytest.raises(ValidationError, match="is not an http"):
        CasConfig(server="ldap://cas.test", service=SERVICE)
    assert CasConfig(server="https://cas.test/cas/", service=SERVICE).server == "https://cas.test/cas"


def test_an_attribute_mapping_without_a_subject_takes_it_from_the_cas_user() -> None:
    config = CasConfig(server="https://cas.test/cas", service=SERVICE, attributes={"kind": "employeeType"})
    assert (config.attributes.subject, config.attributes.kind) == ("user", "employeeType")
    assert CasConfig(server="https://cas.test/cas", service=SERVICE).attributes.subject == "user"


# The routes: the browser's round trip through the gateway.


@pytest.fixture
async def gateway(cas_server: str) -> AsyncIterator[tuple[httpx.AsyncClient, SessionTokens]]:
    sessions = SessionTokens(SessionConfig(secret="s" * 32, ttl="10m"))
    validator = CasValidator(CasConfig(server=cas_server, service=SERVICE, attributes=MAPPING))
    app = Starlette(routes=cas_routes(validator, sessions))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onewindow.test") as client:
        yield client, sessions
    await validator.aclose()


async def test_the_login_route_sends_the_browser_to_the_cas_login_page(
    cas_server: str, gateway: tuple[httpx.AsyncClient, SessionTokens]
) -> None:
    client, _ = gateway
    response = await client.get("/auth/cas/login")

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{cas_server}/login"
    assert parse_qs(location.query) == {"service": [SERVICE]}


async def test_a_login_through_the_gateway_ends_with_a_session_token(
    cas_server: str, gateway: tuple[httpx.AsyncClient, SessionTokens]
) -> None:
    client, sessions = gateway
    cas_login_page = (await client.get("/auth/cas/login")).headers["location"]
    ticket = await login(cas_server, "zhang.wei", login_url=cas_login_page)

    response = await client.get("/auth/cas/callback", params={"ticket": ticket})

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 590 <= body["expires_in"] <= 600
    assert body["principal"] == {"subject": "zhang.wei", "kind": "clerk"}
    principal = sessions.authenticate(body["access_token"])
    assert (principal.subject, principal.via, principal.window) == ("zhang.wei", "cas", "A-07")
    assert principal.roles == frozenset({"case_handler", "supervisor"})

    replayed = await client.get("/auth/cas/callback", params={"ticket": ticket})
    assert replayed.status_code == 401
    assert replayed.json()["reason"] == "CAS ticket already used"


@pytest.mark.parametrize(
    ("params", "error", "reason"),
    [
        ({}, "invalid_request", "no CAS ticket in the callback"),
        ({"ticket": BOGUS_TICKET}, "invalid_token", "CAS refused the ticket (INVALID_TICKET)"),
    ],
)
async def test_a_callback_without_a_good_ticket_is_refused_with_a_challenge(
    gateway: tuple[httpx.AsyncClient, SessionTokens], params: dict[str, str], error: str, reason: str
) -> None:
    client, _ = gateway
    response = await client.get("/auth/cas/callback", params=params)

    assert response.status_code == 401
    assert response.json() == {"error": error, "reason": reason}
    challenge = response.headers["www-authenticate"]
    assert challenge == f'Bearer realm="onewindow", error="{error}", error_description="{reason}"'
