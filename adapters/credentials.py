"""The gateway's own credentials to a department system, and the TLS client certificate it presents.

A source's ``credentials`` and ``tls`` keys (REST and SOAP sources) say how OneWindow proves itself to the
department; secrets come from the environment through the configuration's ``${NAME}`` interpolation and are
:class:`~pydantic.SecretStr` from then on, so they never show in ``repr()``, logs or error messages::

    sources:
      social_insurance:
        kind: rest
        base_url: https://si.example.gov.cn/api/v1
        credentials:
          type: oauth2_client_credentials        # or basic, bearer, hmac_headers, wsse_username_token (SOAP)
          token_url: https://idp.example.gov.cn/oauth2/token
          client_id: onewindow
          auth_method: client_secret_basic        # or client_secret_post, private_key_jwt (below)
          client_secret: ${SI_CLIENT_SECRET}
          scope: insured.read
          refresh_margin: 30s                     # renew the token this long before it expires
        tls: {ca: /etc/onewindow/si-ca.pem, cert: /etc/onewindow/client.pem, key: /etc/onewindow/client.key}

* ``basic`` and ``bearer`` set the ``Authorization`` header.
* ``oauth2_client_credentials`` fetches a token from ``token_url``, caches it until ``expires_in`` minus
  ``refresh_margin``, renews it once for all concurrent requests, and retries a request once with a fresh token
  when the department answers 401. The client authenticates to the token endpoint by ``auth_method``:

  - ``client_secret_basic`` (the default): HTTP Basic with ``client_id`` and ``client_secret``;
  - ``client_secret_post``: ``client_id`` and ``client_secret`` as form fields;
  - ``private_key_jwt`` (RFC 7523): a ``client_assertion`` JWT signed with the client's private key (``iss`` =
    ``sub`` = ``client_id``, ``aud`` = ``token_url``, a fresh ``jti``, ``iat``, ``exp`` = ``iat`` +
    ``assertion_lifetime``), no secret sent. The key is ``private_key`` (PEM text, from the environment) or
    ``private_key_file`` (a PEM file), RSA for ``alg: RS256`` (the default) or P-256 for ``ES256``; ``key_id``
    goes to the JWT header's ``kid`` for issuers that hold several of the client's keys::

        credentials:
          type: oauth2_client_credentials
          token_url: https://idp.example.gov.cn/oauth2/token
          client_id: onewindow
          auth_method: private_key_jwt
          private_key_file: /etc/onewindow/si-client.key    # or private_key: ${SI_CLIENT_KEY}
          alg: ES256
          key_id: onewindow-2026
          assertion_lifetime: 60s

  Token endpoint failures are the source's: unreachable, timed out or 5xx is ``SourceUnavailable``; a refusal of
  the client (401, 403, or 400 ``invalid_client``/``unauthorized_client``) is ``SourceCredentialsRefused``, which
  names ``sources.<name>.credentials``; another 4xx or an answer without a token is ``SourceFault``.
* ``hmac_headers`` signs every request and carries the *acting principal* (the caller the gateway is serving, from
  :data:`ACTING_PRINCIPAL`) to the department, which checks both with :func:`verify_hmac_request`. The source layer
  sets it with :func:`acting_as` around each department call, for the principal that call is made for (never the
  one of whichever request happened to start a shared load), and keeps such a source's answers per
  :func:`acting_scope` (:func:`carries_acting_principal`).
* ``wsse_username_token`` puts a WS-Security UsernameToken (PasswordDigest or PasswordText) in SOAP envelopes.
* ``tls`` builds an :class:`ssl.SSLContext` trusting ``ca`` and presenting ``cert``/``key`` (mutual TLS).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import hashlib
import hmac
import json
import ssl
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote_plus

import certifi
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, FilePath, SecretStr, field_validator, model_validator

from auth.principal import Principal, PrincipalKind
from gateway.durations import Duration, DurationOrZero, Strict
from gateway.errors import ConfigError, InvalidCredentials, SourceCredentialsRefused, SourceFault, SourceUnavailable

__all__ = [
    "ACTING_PRINCIPAL",
    "CLIENT_ASSERTION_TYPE",
    "DEFAULT_ASSERTION_LIFETIME",
    "DEFAULT_REFRESH_MARGIN",
    "HMAC_MAX_AGE",
    "BasicCredentials",
    "BearerAuth",
    "BearerCredentials",
    "Credentials",
    "HmacHeaderNames",
    "HmacHeadersAuth",
    "HmacHeadersCredentials",
    "OAuth2ClientCredentials",
    "OAuth2ClientCredentialsAuth",
    "TlsOptions",
    "WsseUsernameTokenCredentials",
    "acting_as",
    "acting_scope",
    "carries_acting_principal",
    "http_auth",
    "redact",
    "secret_values",
    "ssl_context",
    "verify_hmac_request",
    "wsse_token",
]

ACTING_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ACTING_PRINCIPAL", default=None)
"""The caller the gateway is serving right now; set per GraphQL request, signed to departments by ``hmac_headers``."""


@contextlib.contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """:data:`ACTING_PRINCIPAL` is ``principal`` for the block: wrap one department call in it, inside the task that
    makes the call, so that the call is signed for the principal it is made for::

        with acting_as(principal):
            records = await adapter.fetch("insured", keys)
    """
    token = ACTING_PRINCIPAL.set(principal)
    try:
        yield
    finally:
        ACTING_PRINCIPAL.reset(token)


def carries_acting_principal(credentials: Credentials | None) -> bool:
    """Whether a department reached with ``credentials`` is told who acts: its answers may depend on the caller, so
    they are cached, and loads shared, only per :func:`acting_scope`."""
    return isinstance(credentials, HmacHeadersCredentials)


def acting_scope(principal: Principal | None) -> str:
    """The acting principal exactly as ``hmac_headers`` carries it: two calls with the same scope are signed alike.

    >>> from auth.principal import PrincipalKind
    >>> clerk = Principal(subject="wang.fang", kind=PrincipalKind.CLERK, via="cas", window="A-07")
    >>> acting_scope(clerk) == acting_scope(Principal(subject="wang.fang", kind=PrincipalKind.CLERK, via="cas"))
    False
    >>> acting_scope(None)
    'acting:'
    """
    return "acting:" + ("" if principal is None else _encode_principal(principal))


DEFAULT_REFRESH_MARGIN = 30.0
DEFAULT_ASSERTION_LIFETIME = 60.0
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HMAC_MAX_AGE = 300.0
_REDACTED = "***"
_TOKEN_PARAMS_RESERVED = frozenset(
    {"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type"}
)
# RFC 6749 section 5.2: the errors of a token endpoint that mean "not this client", not "not this request".
_CLIENT_REFUSED_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


# -- configuration -----------------------------------------------------------------------------------------------


class BasicCredentials(Strict):
    """HTTP Basic: ``{type: basic, username: onewindow, password: ${SI_PASSWORD}}``."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password: SecretStr


class BearerCredentials(Strict):
    """A fixed bearer token the department issued: ``{type: bearer, token: ${SI_TOKEN}}``."""

    type: Literal["bearer"]
    token: SecretStr


class OAuth2ClientCredentials(Strict):
    """OAuth 2.0 client credentials grant (RFC 6749 section 4.4).

    ``auth_method`` says how the client proves itself to the token endpoint: ``client_secret_basic`` (HTTP Basic,
    the default) and ``client_secret_post`` (form fields) send ``client_secret``; ``private_key_jwt`` (RFC 7523)
    signs a short-lived assertion with ``private_key`` or ``private_key_file`` using ``alg`` and sends no secret.

    ``audience`` is sent as the form field ``audience_param`` (``audience`` for most issuers, ``resource`` for
    RFC 8707 ones); ``token_params`` are further form fields some issuers want. The token endpoint is reached
    with the source's ``tls`` (its CA, and its client certificate where the issuer binds tokens to it, RFC 8705)
    unless ``tls`` is set here for an issuer behind another CA or wanting another certificate.

    >>> OAuth2ClientCredentials(type="oauth2_client_credentials", token_url="https://idp.example/token",
    ...                         client_id="onewindow", client_secret="s3cret").client_secret
    SecretStr('**********')
    """

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str = Field(min_length=1)
    auth_method: Literal["client_secret_basic", "client_secret_post", "private_key_jwt"] = "client_secret_basic"
    client_secret: SecretStr | None = None
    private_key: SecretStr | None = None
    private_key_file: FilePath | None = None
    alg: Literal["RS256", "ES256"] = "RS256"
    key_id: str | None = None
    assertion_lifetime: Duration = DEFAULT_ASSERTION_LIFETIME
    scope: str | None = None
    audience: str | None = None
    audience_param: str = "audience"
    token_params: dict[str, str] = Field(default_factory=dict)
    refresh_margin: DurationOrZero = DEFAULT_REFRESH_MARGIN
    tls: TlsOptions | None = None

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("token_params")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        if reserved := sorted(_TOKEN_PARAMS_RESERVED.intersection(value)):
            raise ValueError(f"{', '.join(reserved)} cannot be set here; the grant sets them")
        return value

    @model_validator(mode="after")
    def _proof_fits_the_method(self) -> OAuth2ClientCredentials:
        keys = [name for name in ("private_key", "private_key_file") if getattr(self, name) is not None]
        if self.auth_method == "private_key_jwt":
            if len(keys) != 1:
                raise ValueError("private_key_jwt needs exactly one of private_key (PEM text) or private_key_file")
            if self.client_secret is not None:
                raise ValueError("private_key_jwt sends no client_secret; drop it")
        else:
            if self.client_secret is None:
                raise ValueError(f"{self.auth_method} needs client_secret")
            if keys or self.key_id is not None:
                raise ValueError(f"{', '.join(keys) or 'key_id'} is for auth_method: private_key_jwt")
        return self


class HmacHeaderNames(Strict):
    """The headers ``hmac_headers`` sends; both sides must agree on them."""

    key_id: str = "X-OneWindow-Key-Id"
    principal: str = "X-OneWindow-Principal"
    timestamp: str = "X-OneWindow-Timestamp"
    signature: str = "X-OneWindow-Signature"


class HmacHeadersCredentials(Strict):
    """Requests signed with a shared secret, carrying the acting principal (see :func:`verify_hmac_request`).

    ``{type: hmac_headers, key_id: onewindow-2026, secret: ${SI_HMAC_SECRET}}``
    """

    type: Literal["hmac_headers"]
    key_id: str = Field(min_length=1)
    secret: SecretStr
    headers: HmacHeaderNames = Field(default_factory=HmacHeaderNames)


class WsseUsernameTokenCredentials(Strict):
    """WS-Security UsernameToken in every SOAP envelope; ``digest`` sends PasswordDigest, else PasswordText.

    ``{type: wsse_username_token, username: onewindow, password: ${MZ_PASSWORD}, digest: true}``
    """

    type: Literal["wsse_username_token"]
    username: str = Field(min_length=1)
    password: SecretStr
    digest: bool = True


Credentials = Annotated[
    BasicCredentials
    | BearerCredentials
    | OAuth2ClientCredentials
    | HmacHeadersCredentials
    | WsseUsernameTokenCredentials,
    Field(discriminator="type"),
]


class TlsOptions(Strict):
    """Mutual TLS: trust ``ca`` (else the usual public roots) and present ``cert`` with its ``key``.

    ``{ca: /etc/onewindow/dept-ca.pem, cert: /etc/onewindow/client.pem, key: /etc/onewindow/client.key}``
    """

    ca: FilePath | None = None
    cert: FilePath | None = None
    key: FilePath | None = None
    key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _key_goes_with_cert(self) -> TlsOptions:
        if self.cert is None and (self.key is not None or self.key_password is not None):
            raise ValueError("a key needs its certificate: set cert")
        return self


# -- building ----------------------------------------------------------------------------------------------------


def ssl_context(
    source: str, tls: TlsOptions | None, *, verify: bool = True, where: str | None = None
) -> ssl.SSLContext | bool:
    """What to give httpx's ``verify``: ``verify`` itself without ``tls``, else a context built from it.

    Unreadable files raise :class:`ConfigError` naming ``where`` (``sources.<source>.tls``) and the key.
    """
    if tls is None:
        return verify
    where = where or f"sources.{source}.tls"
    try:
        context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else certifi.where())
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{where}.ca", f"cannot load CA certificates: {_ssl_reason(exc)}") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert is not None:
        password = tls.key_password.get_secret_value() if tls.key_password else None
        try:
            context.load_cert_chain(tls.cert, tls.key, password)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{where}.cert", f"cannot load the client certificate: {_ssl_reason(exc)}") from None
    return context


def http_auth(
    source: str, credentials: Credentials | None, *, timeout: float, verify: ssl.SSLContext | bool = True
) -> httpx.Auth | None:
    """The ``httpx.Auth`` for HTTP-level credentials; ``None`` for none or for a WS-Security token.

    ``verify`` is the source's own (see :func:`ssl_context`): a token endpoint is reached with it unless the
    credentials set a ``tls`` of their own.
    """
    match credentials:
        case BasicCredentials(username=username, password=password):
            return httpx.BasicAuth(username, password.get_secret_value())
        case BearerCredentials(token=token):
            return BearerAuth(token)
        case OAuth2ClientCredentials(tls=tls):
            if tls is not None:
                verify = ssl_context(source, tls, where=f"sources.{source}.credentials.tls")
            return OAuth2ClientCredentialsAuth(source, credentials, timeout=timeout, verify=verify)
        case HmacHeadersCredentials():
            return HmacHeadersAuth(credentials)
        case _:
            return None


def wsse_token(credentials: Credentials | None) -> Any:
    """zeep's ``UsernameToken`` for ``wsse_username_token`` credentials, else ``None``."""
    if not isinstance(credentials, WsseUsernameTokenCredentials):
        return None
    from zeep.wsse.username import UsernameToken

    password = credentials.password.get_secret_value()
    return UsernameToken(credentials.username, password, use_digest=credentials.digest)  # type: ignore[no-untyped-call]


def secret_values(credentials: Credentials | None, headers: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Strings that must never reach a message: the configured secrets (and their Basic encoding) and, from
    ``headers`` a request carried, the ``Authorization`` value and its credentials part."""
    found: list[str] = []
    match credentials:
        case (
            BasicCredentials(username=user, password=secret)
            | WsseUsernameTokenCredentials(username=user, password=secret)
            | OAuth2ClientCredentials(client_id=user, client_secret=SecretStr() as secret)
        ):
            value = secret.get_secret_value()
            found += [value, _basic(user, value), quote_plus(value)]  # as a header, and as a form field
        case OAuth2ClientCredentials(private_key=SecretStr() as secret):
            found.append(secret.get_secret_value())
        case BearerCredentials(token=secret) | HmacHeadersCredentials(secret=secret):
            found.append(secret.get_secret_value())
    if headers is not None and (authorization := headers.get("authorization")):
        found += [authorization, authorization.partition(" ")[2]]
    return tuple(value for value in found if value)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (longest first, so no part of one survives) replaced by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


# -- HTTP auth flows ---------------------------------------------------------------------------------------------


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float | None  # time.monotonic(); None: until the department refuses it


class OAuth2ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from an OAuth 2.0 token endpoint, cached and renewed by one request for all.

    ::

        auth = OAuth2ClientCredentialsAuth("social_insurance", credentials, timeout=5.0)
        async with httpx.AsyncClient(auth=auth) as client:
            await client.get("https://si.example.gov.cn/api/v1/insured/11010519491231002X")
    """

    def __init__(
        self,
        source: str,
        credentials: OAuth2ClientCredentials,
        *,
        timeout: float,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._source = source
        self._credentials = credentials
        self._timeout = timeout
        self._verify = verify
        self._signing_key = _signing_key(source, credentials) if credentials.auth_method == "private_key_jwt" else None
        self._token: _Token | None = None
        self._async_lock = asyncio.Lock()
        self._sync_lock = threading.Lock()  # zeep reads a WSDL through a synchronous client, in a worker thread

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._async_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:  # revoked, or signed with a key since retired
            request.headers["Authorization"] = f"Bearer {await self._async_token(refused=token)}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._sync_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED:
            request.headers["Authorization"] = f"Bearer {self._sync_token(refused=token)}"
            yield request

    def forget(self, request: httpx.Request) -> bool:
        """Drop the token ``request`` carried, when the department refused it in an answer's body rather than with
        a 401 (a status code in a 200 body); the next request gets a fresh one. ``False`` when another request
        already renewed it, or the request carried no token of ours."""
        token = self._token
        if token is None or request.headers.get("Authorization") != f"Bearer {token.value}":
            return False
        self._token = None
        return True

    async def _async_token(self, refused: str | None = None) -> str:
        if (token := self._usable(refused)) is not None:
            return token
        async with self._async_lock:
            if (token := self._usable(refused)) is not None:  # another request renewed it meanwhile
                return token
            async with httpx.AsyncClient(timeout=self._timeout, verify=self._verify) as client:
                try:
                    response = await client.post(**self._token_request())
                except (httpx.HTTPError, ssl.SSLError) as exc:  # a TLS 1.3 alert escapes httpx as SSLError
                    raise self._unreachable(exc) from exc
            return self._keep(response)

    def _sync_token(self, refused: str | None = None) -> str:
        if (token := self._usable(refused)) is not None:
            return token
        with self._sync_lock:
            if (token := self._usable(refused)) is not None:
                return token
            with httpx.Client(timeout=self._timeout, verify=self._verify) as client:
                try:
                    response = client.post(**self._token_request())
                except (httpx.HTTPError, ssl.SSLError) as exc:  # a TLS 1.3 alert escapes httpx as SSLError
                    raise self._unreachable(exc) from exc
            return self._keep(response)

    def _usable(self, refused: str | None) -> str | None:
        token = self._token
        if token is None or token.value == refused:
            return None
        if token.renew_at is not None and time.monotonic() >= token.renew_at:
            return None
        return token.value

    def _token_request(self) -> dict[str, Any]:
        creds = self._credentials
        form = {"grant_type": "client_credentials", **creds.token_params}
        if creds.scope:
            form["scope"] = creds.scope
        if creds.audience:
            form[creds.audience_param] = creds.audience
        request: dict[str, Any] = {"url": creds.token_url, "headers": {"Accept": "application/json"}}
        if creds.auth_method == "private_key_jwt":
            form |= {
                "client_id": creds.client_id,
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self._client_assertion(),
            }
        elif creds.client_secret is not None:  # the model's validator guarantees it for the secret methods
            secret = creds.client_secret.get_secret_value()
            if creds.auth_method == "client_secret_post":
                form |= {"client_id": creds.client_id, "client_secret": secret}
            else:
                request["auth"] = httpx.BasicAuth(creds.client_id, secret)
        return request | {"data": form}

    def _client_assertion(self) -> str:
        """A fresh RFC 7523 client assertion: one per token request, never reused (``jti``)."""
        creds = self._credentials
        issued = int(time.time())
        claims = {
            "iss": creds.client_id,
            "sub": creds.client_id,
            "aud": creds.token_url,
            "jti": uuid.uuid4().hex,
            "iat": issued,
            "exp": issued + max(1, int(creds.assertion_lifetime)),
        }
        headers = {"kid": creds.key_id} if creds.key_id else None
        if self._signing_key is None:  # pragma: no cover - set in __init__ for private_key_jwt
            raise RuntimeError("private_key_jwt without a signing key")
        return jwt.encode(claims, self._signing_key, algorithm=creds.alg, headers=headers)

    def _unreachable(self, exc: httpx.HTTPError | ssl.SSLError) -> SourceUnavailable:
        url = self._credentials.token_url
        if isinstance(exc, httpx.TimeoutException):
            return SourceUnavailable(self._source, f"token endpoint {url} gave no token within {self._timeout:g}s")
        reason = self._redact(str(exc)) or type(exc).__name__
        return SourceUnavailable(self._source, f"cannot reach token endpoint {url}: {reason}")

    def _keep(self, response: httpx.Response) -> str:
        """The access token in a token endpoint's answer, cached; or the source's error for a bad answer."""
        url, status = self._credentials.token_url, response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status >= 500:
            raise SourceUnavailable(self._source, f"token endpoint {url} answered {status}")
        if status >= 400:
            detail = ""
            if isinstance(body, Mapping) and body.get("error"):  # RFC 6749 section 5.2
                detail = f": {body['error']} {body.get('error_description') or ''}".rstrip()
            message = f"token endpoint {url} refused the client credentials ({status}{self._redact(detail)})"
            error = body.get("error") if isinstance(body, Mapping) else None
            if status in (401, 403) or error in _CLIENT_REFUSED_ERRORS:
                raise SourceCredentialsRefused(self._source, f"{message}; check sources.{self._source}.credentials")
            raise SourceFault(self._source, message)
        token = body.get("access_token") if isinstance(body, Mapping) else None
        token_type = str(body.get("token_type", "bearer")) if isinstance(body, Mapping) else ""
        if not isinstance(token, str) or not token or token_type.lower() != "bearer":
            raise SourceFault(self._source, f"token endpoint {url} answered {status} without a bearer access_token")
        lifetime = _seconds(body.get("expires_in"))
        renew_at = None if lifetime is None else time.monotonic() + lifetime - self._credentials.refresh_margin
        self._token = _Token(token, renew_at)
        return token

    def _redact(self, text: str) -> str:
        return redact(text, secret_values(self._credentials))


class HmacHeadersAuth(httpx.Auth):
    """Signs each request: key id, acting principal, timestamp and an HMAC-SHA256 over method, path and query,
    timestamp, key id, principal and the body's SHA-256 (see :func:`verify_hmac_request`)."""

    requires_request_body = True

    def __init__(self, credentials: HmacHeadersCredentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        creds, names = self._credentials, self._credentials.headers
        principal = ACTING_PRINCIPAL.get()
        carried = "" if principal is None else _encode_principal(principal)
        timestamp = str(int(time.time()))
        target = request.url.raw_path.decode("ascii")
        request.headers[names.key_id] = creds.key_id
        request.headers[names.timestamp] = timestamp
        if carried:
            request.headers[names.principal] = carried
        request.headers[names.signature] = _signature(
            creds.secret.get_secret_value(), request.method, target, timestamp, creds.key_id, carried, request.content
        )
        yield request


def verify_hmac_request(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str | SecretStr],
    *,
    max_age: float = HMAC_MAX_AGE,
    now: float | None = None,
    names: HmacHeaderNames | None = None,
) -> Principal | None:
    """Check a request signed by ``hmac_headers``; return the acting principal it carries (``None``: none).

    ``target`` is the path and query as received (``/insured/1?year=2024``); ``secrets`` maps key ids to their
    secrets (more than one while keys rotate). A wrong or missing signature, an unknown key id, or a timestamp more
    than ``max_age`` seconds from ``now`` raises :class:`~gateway.errors.InvalidCredentials`. A department behind
    Starlette::

        principal = verify_hmac_request(request.method, target, request.headers, await request.body(), {"k1": s})
    """
    names = names or HmacHeaderNames()
    lowered = {name.lower(): value for name, value in headers.items()}

    def header(name: str) -> str:
        value = lowered.get(name.lower())
        if not value:
            raise InvalidCredentials(f"no {name} header")
        return value

    key_id, signature, timestamp = header(names.key_id), header(names.signature), header(names.timestamp)
    carried = lowered.get(names.principal.lower(), "")
    secret = secrets.get(key_id)
    if secret is None:
        raise InvalidCredentials(f"unknown key id {key_id!r}")
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    expected = _signature(secret, method, target, timestamp, key_id, carried, body)
    if not hmac.compare_digest(expected, signature):
        raise InvalidCredentials("the signature does not match the request")
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except (ValueError, OverflowError):
        raise InvalidCredentials(f"{names.timestamp} is not a Unix time") from None
    if abs(age) > max_age:
        raise InvalidCredentials(f"the request was signed {age:.0f}s from now; at most {max_age:g}s is accepted")
    return _decode_principal(carried) if carried else None


# -- small helpers -----------------------------------------------------------------------------------------------


def _basic(user: str, secret: str) -> str:
    return base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")


def _signing_key(source: str, credentials: OAuth2ClientCredentials) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The private key ``private_key_jwt`` signs with, loaded once; a :class:`ConfigError` names the key at fault."""
    where = f"sources.{source}.credentials"
    if credentials.private_key_file is not None:
        where += ".private_key_file"
        try:
            pem = credentials.private_key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(where, f"cannot read {credentials.private_key_file}: {exc.strerror}") from None
    elif credentials.private_key is not None:
        where += ".private_key"
        text = credentials.private_key.get_secret_value()
        if "\n" not in text:  # one line in the environment, its line breaks written as \n
            text = text.replace("\\n", "\n")
        pem = text.encode()
    else:  # the model's validator rules this out
        raise ConfigError(where, "private_key_jwt needs private_key or private_key_file")
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        # The reason never quotes the key; it says what is wrong with it (not PEM, encrypted, unsupported).
        raise ConfigError(where, f"not an unencrypted PEM private key ({type(exc).__name__})") from None
    if credentials.alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if credentials.alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return key
    described = "an RSA private key" if credentials.alg == "RS256" else "a P-256 EC private key"
    raise ConfigError(where, f"alg {credentials.alg} needs {described}")


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _ssl_reason(exc: ssl.SSLError | OSError) -> str:
    return str(getattr(exc, "reason", None) or exc.strerror or type(exc).__name__)


def _signature(secret: str, method: str, target: str, timestamp: str, key_id: str, carried: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    canonical = "\n".join([method.upper(), target, timestamp, key_id, carried, digest])
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


_PRINCIPAL_FIELDS = ("subject", "kind", "via", "department", "window")


def _encode_principal(principal: Principal) -> str:
    """base64url (no padding) of compact JSON: subject, kind, via, department and window."""
    fields = {name: getattr(principal, name) for name in _PRINCIPAL_FIELDS}
    document = json.dumps({k: str(v) for k, v in fields.items() if v is not None}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).rstrip(b"=").decode("ascii")


def _decode_principal(carried: str) -> Principal:
    try:
        document = json.loads(base64.urlsafe_b64decode(carried + "=" * (-len(carried) % 4)))
        return Principal(
            subject=str(document["subject"]),
            kind=PrincipalKind(document["kind"]),
            via=str(document["via"]),
            department=document.get("department"),
            window=document.get("window"),
        )
    except (ValueError, KeyError, TypeError):
        raise InvalidCredentials("the acting principal header is not readable") from None
