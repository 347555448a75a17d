"""Real departments that check the gateway's credentials, for :mod:`tests.adapters.test_credentials`.

* :class:`GuardedDepartment`: a REST department (Starlette) with one route per scheme: HTTP Basic, a fixed bearer
  token, HMAC-signed headers (checked with :func:`adapters.credentials.verify_hmac_request`) and OAuth2 bearer JWTs
  (checked with pyjwt against an issuer's JWKS). Like some legacy systems, it quotes the credentials it refuses.
* :class:`WsseDepartment`: a SOAP 1.1 person register that checks a WS-Security UsernameToken (PasswordDigest or
  PasswordText, fresh ``Created``, no replayed ``Nonce``) and answers a ``wsse:FailedAuthentication`` fault otherwise;
  its envelopes and WSDL come from :mod:`tests.adapters.soap_service`.
* :class:`TokenCounter`: a pass-through proxy in front of a real token endpoint, counting the requests.
* :func:`make_pki` and :func:`serve`: a CA, server and client certificates, and uvicorn with (mutual) TLS.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.credentials import verify_hmac_request
from gateway.errors import InvalidCredentials
from tests.adapters.soap_service import SOAP11, SoapEnvelopes, document_literal_wsdl
from tests.conftest import unused_port

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PERSON_NS = "urn:onewindow:test:wsse-person"
CREATED_MAX_AGE = dt.timedelta(minutes=5)

# -- serving, with or without TLS --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(app: Any, *, tls: Pki | None = None, client_certs: bool = True) -> AsyncIterator[str]:
    """Serve ``app`` on loopback until the block exits; with ``tls``, over HTTPS and, when ``client_certs``,
    refusing any client without a certificate from the PKI's CA. Yields the base URL."""
    port = unused_port()
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls.server_cert), "ssl_keyfile": str(tls.server_key)}
        if client_certs:
            options |= {"ssl_ca_certs": str(tls.ca), "ssl_cert_reqs": 2}  # ssl.CERT_REQUIRED
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the department stopped before it started")
            await asyncio.sleep(0.01)
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class Pki:
    """PEM files: a CA, a server certificate for 127.0.0.1/localhost, a client certificate the CA issued, and a
    ``stranger`` client certificate from another CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def make_pki(directory: Path) -> Pki:
    ca_key, ca_cert = _certificate("OneWindow Test CA", None, ca=True)
    server_key, server_cert = _certificate("127.0.0.1", (ca_key, ca_cert), server=True)
    client_key, client_cert = _certificate("onewindow-gateway", (ca_key, ca_cert))
    other_key, other_ca = _certificate("Some Other CA", None, ca=True)
    stranger_key, stranger_cert = _certificate("onewindow-gateway", (other_key, other_ca))

    def write(name: str, item: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
        path = directory / name
        if isinstance(item, x509.Certificate):
            path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
        else:
            path.write_bytes(
                item.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        return path

    return Pki(
        ca=write("ca.pem", ca_cert),
        server_cert=write("server.pem", server_cert),
        server_key=write("server.key", server_key),
        client_cert=write("client.pem", client_cert),
        client_key=write("client.key", client_key),
        stranger_cert=write("stranger.pem", stranger_cert),
        stranger_key=write("stranger.key", stranger_key),
    )


def _certificate(
    common_name: str,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signing_key, issuer_name = (key, name) if issuer is None else (issuer[0], issuer[1].subject)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(usage, critical=True).add_extension(
            x509.ExtendedKeyUsage([purpose]), critical=False
        )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(signing_key, hashes.SHA256())


# -- a REST department that checks credentials ---------------------------------------------------------------


def insured_record(id_number: str, **more: Any) -> dict[str, Any]:
    return {"idNumber": id_number, "insured": True, "months": 120, **more}


@dataclass
class GuardedDepartment:
    """The social-insurance bureau, guarding ``/<scheme>/insured/{id}`` with each scheme's credentials.

    ``bearer_tokens``: the OAuth2 access tokens it received (accepted or not), in order.
    """

    username: str = "onewindow"
    password: str = "correct horse battery staple"
    token: str = "si-static-token-4f7a"
    hmac_keys: dict[str, str] = field(default_factory=lambda: {"onewindow-2026": "hmac-shared-secret-9c1e"})
    issuer: str | None = None
    issuer_verify: ssl.SSLContext | bool = True  # how it reaches the issuer's JWKS (an issuer on a private CA)
    audience: str = "social_insurance"
    bearer_tokens: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/basic/insured/{id}", self._basic),
                Route("/bearer/insured/{id}", self._bearer),
                Route("/hmac/insured/{id}", self._hmac, methods=["GET", "POST"]),
                Route("/oauth/insured/{id}", self._oauth),
                Route("/open/insured/{id}", self._open),
            ]
        )

    @staticmethod
    def _refuse(detail: str, scheme: str) -> Response:
        return JSONResponse({"error": "unauthorized", "detail": detail}, 401, {"WWW-Authenticate": scheme})

    async def _basic(self, request: Request) -> Response:
        presented = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if presented != f"Basic {expected}":
            user, _, password = base64.b64decode(presented.partition(" ")[2] or "Og==").decode().partition(":")
            return self._refuse(f"user {user!r} with password {password!r} refused ({presented})", "Basic")
        return JSONResponse(insured_record(request.path_params["id"]))

    async def _bearer(self, request: Request) -> Response:
        presented = request.headers.get("authorization", "")
        if presented != f"Bearer {self.token}":
            return self._refuse(f"token {presented.partition(' ')[2]!r} is not one we issued", "Bearer")
        return JSONResponse(insured_record(request.path_params["id"]))

    async def _hmac(self, request: Request) -> Response:
        target = request.scope["raw_path"].decode()
        if request.scope["query_string"]:
            target += "?" + request.scope["query_string"].decode()
        try:
            principal = verify_hmac_request(
                request.method, target, request.headers, await request.body(), self.hmac_keys
            )
        except InvalidCredentials as exc:
            return self._refuse(str(exc), "OneWindow-HMAC")
        acting = None if principal is None else {"subject": principal.subject, "kind": str(principal.kind)}
        if principal is not None:
            acting |= {"via": principal.via, "department": principal.department, "window": principal.window}
        return JSONResponse(insured_record(request.path_params["id"], acting=acting))

    async def _oauth(self, request: Request) -> Response:
        assert self.issuer is not None, "set issuer to the token issuer before calling /oauth"
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.bearer_tokens.append(token)
        try:
            claims = await self._verified(token)
        except jwt.PyJWTError as exc:
            return self._refuse(f"{type(exc).__name__}: {exc}", 'Bearer error="invalid_token"')
        return JSONResponse(insured_record(request.path_params["id"], scope=claims.get("scope")))

    async def _verified(self, token: str) -> dict[str, Any]:
        """The token's claims, its signature checked against the issuer's current JWKS (read each time, so a
        retired key is refused at once)."""
        async with httpx.AsyncClient(timeout=5.0, verify=self.issuer_verify) as client:
            document = (await client.get(f"{self.issuer}/jwks")).json()
        kid = jwt.get_unverified_header(token).get("kid")
        keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(document).keys}
        if kid not in keys:
            raise jwt.InvalidKeyError(f"no key {kid!r} in the issuer's JWKS")
        claims: dict[str, Any] = jwt.decode(
            token, keys[kid], algorithms=["RS256"], audience=self.audience, issuer=self.issuer
        )
        return claims

    async def _open(self, request: Request) -> Response:
        return JSONResponse(insured_record(request.path_params["id"]))


@dataclass
class TokenCounter:
    """A pass-through proxy to a real token endpoint that records each request's Authorization and form."""

    token_url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self._token, methods=["POST"])])

    async def _token(self, request: Request) -> Response:
        body = await request.body()
        authorization = request.headers.get("authorization", "")
        self.requests.append((authorization, dict(parse_qsl(body.decode()))))
        headers = {"Authorization": authorization, "Content-Type": request.headers.get("content-type", "")}
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.post(self.token_url, content=body, headers=headers)
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))


# -- a SOAP department that checks a WS-Security UsernameToken ---------------------------------------------------

_SCHEMA = """\
      <xs:element name="QueryPerson">
        <xs:complexType><xs:sequence><xs:element name="IdCardNo" type="xs:string"/></xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="QueryPersonResponse">
        <xs:complexType><xs:sequence>
          <xs:element name="IdCardNo" type="xs:string"/>
          <xs:element name="XM" type="xs:string"/>
        </xs:sequence></xs:complexType>
      </xs:element>
"""
_ENVELOPES = SoapEnvelopes(SOAP11, {"wsse": WSSE_NS})
_USERNAME_TOKEN = f"{SOAP11.tag('Header')}/{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken"


class _Refused(Exception):
    pass


@dataclass
class WsseDepartment:
    """Civil Affairs' person register: ``GET /person?wsdl``, ``POST /person`` (SOAP 1.1), every call carrying a
    UsernameToken for ``username``/``password``; ``digest_only`` refuses PasswordText."""

    username: str = "onewindow"
    password: str = "mz-soap-password-77"
    digest_only: bool = False
    names: dict[str, str] = field(default_factory=lambda: {"11010519491231002X": "张三"})
    _nonces: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/person", self._wsdl), Route("/person", self._call, methods=["POST"])])

    async def _wsdl(self, request: Request) -> Response:
        location = str(request.url.replace(query=""))
        wsdl = document_literal_wsdl(
            SOAP11, tns=PERSON_NS, name="Person", schema=_SCHEMA, operations=("QueryPerson",), location=location
        )
        return Response(wsdl, media_type="text/xml")

    async def _call(self, request: Request) -> Response:
        envelope = await _ENVELOPES.received(request)
        if isinstance(envelope, Response):
            return envelope
        try:
            self._authenticate(envelope.find(_USERNAME_TOKEN))
        except _Refused as exc:
            reason = f"The security token could not be authenticated: {exc}"
            return _ENVELOPES.fault("wsse:FailedAuthentication", reason)
        id_number = envelope.findtext(f".//{{{PERSON_NS}}}IdCardNo") or ""
        answer = etree.Element(f"{{{PERSON_NS}}}QueryPersonResponse")
        etree.SubElement(answer, f"{{{PERSON_NS}}}IdCardNo").text = id_number
        etree.SubElement(answer, f"{{{PERSON_NS}}}XM").text = self.names.get(id_number, "")
        return _ENVELOPES.answer(answer)

    def _authenticate(self, token: etree._Element | None) -> None:
        if token is None:
            raise _Refused("no wsse:UsernameToken in the Security header")
        username = token.findtext(f"{{{WSSE_NS}}}Username") or ""
        password = token.find(f"{{{WSSE_NS}}}Password")
        if password is None:
            raise _Refused(f"no password for {username!r}")
        presented = password.text or ""
        if password.get("Type") == f"{TOKEN_PROFILE}#PasswordDigest":
            nonce = token.findtext(f"{{{WSSE_NS}}}Nonce") or ""
            created = token.findtext(f"{{{WSU_NS}}}Created") or ""
            if nonce in self._nonces:
                raise _Refused("the nonce was used before")
            stamp = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            if abs(dt.datetime.now(dt.UTC) - stamp) > CREATED_MAX_AGE:
                raise _Refused("the token was not created within the last 5 minutes")
            expected = hashlib.sha1(base64.b64decode(nonce) + created.encode() + self.password.encode()).digest()
            if not hmac.compare_digest(base64.b64encode(expected).decode(), presented) or username != self.username:
                raise _Refused(f"the password digest for {username!r} does not match")
            self._nonces.add(nonce)
        elif self.digest_only:
            raise _Refused("PasswordText is not accepted; send a PasswordDigest")
        elif (username, presented) != (self.username, self.password):
            raise _Refused(f"user {username!r} with password {presented!r} refused")
