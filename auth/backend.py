"""Turning a request into a :class:`~auth.principal.Principal`: a Starlette authentication backend.

Credentials the gateway accepts, in one place::

    Authorization: Bearer <JWT from a configured OIDC issuer>       (province SSO, city SSO, ...)
    Authorization: Bearer <the gateway's own session token>          (after a CAS login at /auth/cas/callback)
    Authorization: ApiKey owk_...   or   X-API-Key: owk_...          (counter terminals, integrators)

A bearer JWT goes to the verifier of the issuer it names (its ``iss``, read unverified only to pick the verifier;
the verifier then checks everything). A request with no credentials gets the configured development principal, if
any (never in production), or a 401 with ``WWW-Authenticate`` from :class:`RequirePrincipal`::

    identity = Identity(config.auth)
    app = AuthenticationMiddleware(RequirePrincipal(graphql_app), backend=GatewayAuthBackend(identity),
                                   on_error=unauthorized)
"""

from __future__ import annotations

import asyncio
import logging

from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, BaseUser
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.apikeys import ApiKeyStore
from auth.cas import CasValidator
from auth.config import AuthConfig
from auth.oidc import OidcVerifier, token_issuer
from auth.principal import Principal
from auth.sessions import SessionTokens
from gateway.errors import AuthError, InvalidCredentials
from gateway.middleware.rate_limit import charge_principal

__all__ = ["GatewayAuthBackend", "Identity", "RequirePrincipal", "unauthorized"]

logger = logging.getLogger("onewindow.auth")

API_KEY_PREFIX = "owk_"
_REALM = 'realm="onewindow"'


class Identity:
    """Every identity system the gateway trusts, built from ``auth:`` and opened in the app's lifespan."""

    def __init__(self, config: AuthConfig, *, production: bool = True) -> None:
        self.config = config
        self.development = None if production or config.development_principal is None else config.development_principal
        self.oidc = {name: OidcVerifier(name, issuer) for name, issuer in config.issuers.items()}
        self._by_issuer = {issuer.issuer: self.oidc[name] for name, issuer in config.issuers.items()}
        self.sessions = SessionTokens(config.sessions)
        self.cas = CasValidator(config.cas) if config.cas is not None else None
        self.api_keys = ApiKeyStore(config.api_keys) if config.api_keys is not None else None

    async def open(self) -> None:
        if self.api_keys is not None:
            await self.api_keys.open()

    async def aclose(self) -> None:
        closers = [v.aclose() for v in self.oidc.values()]
        if self.cas is not None:
            closers.append(self.cas.aclose())
        if self.api_keys is not None:
            closers.append(self.api_keys.aclose())
        await asyncio.gather(*closers, return_exceptions=True)

    def challenges(self, error: str | None = None) -> str:
        """The ``WWW-Authenticate`` value: one challenge per scheme accepted."""
        bearer = f"Bearer {_REALM}"
        if error is not None:
            description = error.replace('"', "'")
            bearer += f', error="invalid_token", error_description="{description}"'
        schemes = [bearer]
        if self.api_keys is not None:
            schemes.append(f"ApiKey {_REALM}")
        return ", ".join(schemes)

    async def authenticate(self, headers: Headers) -> Principal | None:
        """The principal the headers prove, ``None`` when they bring no credentials (and there is no development
        principal); raises :class:`InvalidCredentials` for credentials that are refused."""
        authorization = headers.get("authorization")
        api_key = headers.get("x-api-key")
        if authorization:
            scheme, _, credentials = authorization.partition(" ")
            credentials = credentials.strip()
            scheme = scheme.lower()
            if scheme == "bearer" and credentials:
                if credentials.startswith(API_KEY_PREFIX):
                    return await self._api_key(credentials)
                return await self._bearer(credentials)
            if scheme == "apikey" and credentials:
                return await self._api_key(credentials)
            raise InvalidCredentials("unsupported authorization scheme")
        if api_key:
            return await self._api_key(api_key.strip())
        return None if self.development is None else self.development.principal()

    async def _bearer(self, token: str) -> Principal:
        for oidc in self.oidc.values():  # a token verified before needs no routing
            known = oidc.verified(token)
            if known is not None:
                return known
        issuer = token_issuer(token)  # refused, with the reason, when not a JWT or naming no issuer
        if issuer == self.sessions.config.issuer:
            return self.sessions.authenticate(token)
        verifier = self._by_issuer.get(issuer)
        if verifier is None:
            raise InvalidCredentials("token from an issuer this gateway does not trust")
        return await verifier.authenticate(token, issuer=issuer)

    async def _api_key(self, key: str) -> Principal:
        if self.api_keys is None:
            raise InvalidCredentials("API keys are not accepted here")
        return await self.api_keys.authenticate(key)


class GatewayAuthBackend(AuthenticationBackend):
    """Starlette's side of :class:`Identity`: ``request.user`` becomes the principal."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        try:
            principal = await self.identity.authenticate(conn.headers)
        except AuthError as exc:  # refused credentials, or a key store that cannot say (fail closed)
            logger.info("credentials refused: %s", exc.message)
            raise AuthenticationError(exc.message) from exc
        if principal is None:
            return None
        return AuthCredentials(["authenticated", *sorted(principal.scopes)]), principal


def _unauthorized(identity: Identity, message: str, error: str | None) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": identity.challenges(error)})


def unauthorized(identity: Identity) -> object:
    """The ``on_error`` of Starlette's AuthenticationMiddleware: refused credentials answer 401, with the reason."""

    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        return _unauthorized(identity, f"credentials refused: {exc}", str(exc))

    return on_error


class RequirePrincipal:
    """Pure ASGI: a request without a principal gets 401 and the challenges, and never reaches the wrapped app.

    A principal is charged here, once verified, against its rate limit budget
    (:func:`~gateway.middleware.rate_limit.charge_principal`): by who it is, not by the credential that proved it."""

    def __init__(self, app: ASGIApp, identity: Identity) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if scope["type"] == "websocket" and not (user is not None and user.is_authenticated):
            await send({"type": "websocket.close", "code": 4401, "reason": "authentication required"})
            return
        if scope["type"] == "http" and not (user is not None and user.is_authenticated):
            response = _unauthorized(self.identity, "authentication required", None)
            await response(scope, receive, send)
            return
        if (
            scope["type"] == "http"
            and isinstance(user, Principal)
            and not await charge_principal(scope, send, user.identity)
        ):
            return
        await self.app(scope, receive, send)
