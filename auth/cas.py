"""CAS 3.0 service tickets: a person logs in at the city's CAS, the gateway turns the ticket into a principal.

The browser goes to ``/auth/cas/login``, is sent to the CAS login page, and comes back to the service URL
(``/auth/cas/callback?ticket=ST-...``). The gateway validates the ticket once at ``{server}/p3/serviceValidate``,
maps ``cas:user`` and the released attributes through a :class:`ClaimMapping`, and answers with its own session
token (:mod:`auth.sessions`), so later calls do not go back to CAS::

    auth:
      cas:
        server: https://cas.city.gov.cn/cas
        service: https://onewindow.city.gov.cn/auth/cas/callback
        attributes: {kind: employeeType, department: ou, window: counter, roles: memberOf}

A ticket is good once: CAS refuses a second validation, and the gateway refuses a replay itself, without asking CAS,
for the tickets it has seen in the last few minutes.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from lxml import etree
from pydantic import field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from auth.principal import ClaimMapping, Principal, principal_from_claims
from auth.sessions import SessionTokens
from gateway.durations import Duration, Strict
from gateway.errors import InvalidCredentials

__all__ = ["CAS_NAMESPACE", "CasConfig", "CasValidator", "cas_routes"]

CAS_NAMESPACE = "http://www.yale.edu/tp/cas"
# CAS 3.0 §3.1.1/§3.7: service tickets begin with "ST-"; services should accept them up to 256 characters.
_TICKET = re.compile(r"^ST-[\x21-\x7e]{1,253}$")
_FAILURE_CODE = re.compile(r"^[A-Z_]{1,64}$")
_MAX_REMEMBERED_TICKETS = 100_000
_CAS = f"{{{CAS_NAMESPACE}}}"


class CasConfig(Strict):
    """Where the CAS server is and which service URL the gateway is registered under there.

    ``service`` is the gateway's callback URL exactly as the CAS knows it; ``attributes`` maps ``user`` (the
    ``cas:user`` name, the subject unless the mapping says otherwise) and the released attributes onto a principal;
    ``replay_window`` is how long presented tickets are remembered (CAS tickets themselves live for seconds).

        >>> CasConfig(server="https://cas.city.gov.cn/cas/", service="https://ow.city.gov.cn/auth/cas/callback").server
        'https://cas.city.gov.cn/cas'
    """

    server: str
    service: str
    attributes: ClaimMapping = ClaimMapping(subject="user")
    timeout: Duration = 5.0
    replay_window: Duration = 300.0

    @field_validator("server", "service")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"{url!r} is not a URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url

    @field_validator("server")
    @classmethod
    def _without_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @field_validator("attributes", mode="before")
    @classmethod
    def _subject_is_the_cas_user(cls, mapping: Any) -> Any:
        # A mapping that only names attributes still takes the subject from cas:user, not from a "sub" claim.
        if isinstance(mapping, Mapping) and "subject" not in mapping:
            return {**mapping, "subject": "user"}
        return mapping

    @property
    def login_url(self) -> str:
        return f"{self.server}/login?{urlencode({'service': self.service})}"


class _SeenTickets:
    """Tickets presented in the last ``window`` seconds, oldest first, at most ``capacity`` of them."""

    def __init__(self, window: float, capacity: int = _MAX_REMEMBERED_TICKETS) -> None:
        self._window = window
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_sight(self, ticket: str) -> bool:
        now = time.monotonic()
        while self._seen:
            oldest_at = next(iter(self._seen.values()))
            if oldest_at > now - self._window and len(self._seen) < self._capacity:
                break
            self._seen.popitem(last=False)
        if ticket in self._seen:
            return False
        self._seen[ticket] = now
        return True


class CasValidator:
    """Validate CAS 3.0 service tickets into principals (``via="cas"``).

        validator = CasValidator(CasConfig(server="https://cas.city.gov.cn/cas",
                                           service="https://onewindow.city.gov.cn/auth/cas/callback",
                                           attributes={"kind": "employeeType", "roles": "memberOf"}))
        principal = await validator.validate("ST-1-abc...")   # InvalidCredentials("... (INVALID_TICKET)") if refused
        await validator.aclose()

    An ``httpx.AsyncClient`` passed in stays open at :meth:`aclose`; one the validator made is closed.
    """

    def __init__(self, config: CasConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._seen = _SeenTickets(config.replay_window)

    async def validate(self, ticket: str) -> Principal:
        """The principal CAS vouches for with ``ticket``; :class:`InvalidCredentials` if the ticket is malformed,
        already presented, refused by CAS (the message carries the CAS code), or CAS cannot be reached."""
        if not _TICKET.match(ticket):
            raise InvalidCredentials("malformed CAS service ticket")
        # Remembered before CAS answers: a ticket is spent by its first presentation, even a concurrent one.
        if not self._seen.first_sight(ticket):
            raise InvalidCredentials("CAS ticket already used")
        try:
            response = await self._client.get(
                f"{self.config.server}/p3/serviceValidate",
                params={"service": self.config.service, "ticket": ticket},
                timeout=self.config.timeout,
            )
        except httpx.HTTPError as exc:
            raise InvalidCredentials("CAS server unavailable") from exc
        if response.status_code != 200:
            raise InvalidCredentials(f"CAS server answered HTTP {response.status_code}")
        claims = _claims_from_response(response.content)
        return principal_from_claims(claims, self.config.attributes, via="cas")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _claims_from_response(content: bytes) -> dict[str, Any]:
    """``user`` and the released attributes of a ``cas:serviceResponse``; repeated attributes become lists."""
    # No DTD, no entities, no network: a CAS answer has none, and a hostile one must not get them.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidCredentials("CAS server answered something that is not XML") from exc
    if root.getroottree().docinfo.doctype or root.tag != f"{_CAS}serviceResponse":
        raise InvalidCredentials("CAS server answered something that is not a CAS service response")
    failure = root.find(f"{_CAS}authenticationFailure")
    if failure is not None:
        # The code only: CAS's message may quote the ticket back.
        code = (failure.get("code") or "").strip()
        raise InvalidCredentials(f"CAS refused the ticket ({code if _FAILURE_CODE.match(code) else 'UNKNOWN'})")
    success = root.find(f"{_CAS}authenticationSuccess")
    user = (success.findtext(f"{_CAS}user") or "").strip() if success is not None else ""
    if not user:
        raise InvalidCredentials("CAS answer names no user")
    claims: dict[str, Any] = {}
    attributes = success.find(f"{_CAS}attributes")
    for element in attributes.iterchildren(etree.Element) if attributes is not None else ():
        name, value = etree.QName(element).localname, (element.text or "").strip()
        if name not in claims:
            claims[name] = value
        elif isinstance(claims[name], list):
            claims[name].append(value)
        else:
            claims[name] = [claims[name], value]
    claims["user"] = user
    return claims


def cas_routes(validator: CasValidator, sessions: SessionTokens) -> list[BaseRoute]:
    """``GET /auth/cas/login`` (off to the CAS login page) and ``GET /auth/cas/callback?ticket=`` (the ticket
    becomes a session token: ``{"access_token", "token_type": "Bearer", "expires_in", "principal"}``)."""

    async def login(request: Request) -> Response:
        return RedirectResponse(validator.config.login_url, status_code=302)

    async def callback(request: Request) -> Response:
        ticket = request.query_params.get("ticket")
        if not ticket:
            return _refusal("invalid_request", "no CAS ticket in the callback")
        try:
            principal = await validator.validate(ticket)
            token, expires_in = sessions.issue(principal)
        except InvalidCredentials as exc:
            return _refusal("invalid_token", exc.message)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(expires_in),
            "principal": {"subject": principal.subject, "kind": principal.kind.value},
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    return [
        Route("/auth/cas/login", login, methods=["GET"], name="cas_login"),
        Route("/auth/cas/callback", callback, methods=["GET"], name="cas_callback"),
    ]


def _refusal(error: str, reason: str) -> Response:
    # A header is Latin-1 and a quoted-string: keep printable ASCII, drop quotes and backslashes.
    description = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in reason)
    challenge = f'Bearer realm="onewindow", error="{error}", error_description="{description}"'
    return JSONResponse(
        {"error": error, "reason": reason},
        status_code=401,
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )
