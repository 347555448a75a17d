"""The gateway's own short-lived session tokens: a login proven once (a CAS ticket) becomes a bearer token.

A CAS service ticket is good for one validation only, so after the login the caller presents a session token
instead, signed by the gateway (HS256) and carrying the whole principal::

    >>> from auth.principal import PrincipalKind
    >>> tokens = SessionTokens(SessionConfig(ttl="15m"))
    >>> clerk = Principal(subject="zhang.wei", kind=PrincipalKind.CLERK, via="cas", window="A-07")
    >>> token, expires_in = tokens.issue(clerk)
    >>> tokens.authenticate(token) == clerk, expires_in
    (True, 900.0)

The principal keeps the ``via`` of the original login (``cas``), so the audit shows how the person proved who they
are. Only HS256 is accepted, and ``iss``, ``aud`` and ``exp`` are required and checked.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from auth.principal import ClaimMapping, Principal, principal_from_claims
from gateway.durations import MIN_KEY_BYTES, Duration, KeySecret, Strict
from gateway.errors import InvalidCredentials

__all__ = ["DEFAULT_SESSION_TTL", "MIN_SECRET_BYTES", "SessionConfig", "SessionTokens"]

DEFAULT_SESSION_TTL = 900.0
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = MIN_KEY_BYTES

_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub"]
# The session token's own claim names; the kind is required (no default), so a token without one is refused.
_CLAIMS = ClaimMapping(
    subject="sub",
    kind="kind",
    department="department",
    window="window",
    roles="roles",
    scopes="scopes",
    id_number="id_number",
    name="name",
)


class SessionConfig(Strict):
    """How session tokens are signed and for how long they are good.

    ``secret`` signs and checks the tokens (at least 32 bytes). Left out, each process draws a random one at start:
    fine for one process, but several gateway processes behind a load balancer then refuse each other's tokens and
    need a shared secret (``secret: ${ONEWINDOW_SESSION_SECRET}``). ``issuer`` and ``audience`` are written into
    every token and required on the way back.

        >>> SessionConfig(ttl="30m").ttl
        1800.0
    """

    secret: KeySecret | None = None
    ttl: Duration = DEFAULT_SESSION_TTL
    issuer: str = "onewindow-session"
    audience: str = "onewindow"


class SessionTokens:
    """Issue and check the gateway's session tokens.

    >>> from auth.principal import PrincipalKind
    >>> tokens = SessionTokens(SessionConfig(secret="x" * 32))
    >>> token, _ = tokens.issue(Principal(subject="svc", kind=PrincipalKind.SERVICE, via="cas"))
    >>> tokens.authenticate(token).identity
    'cas:svc'
    >>> tokens.authenticate(token + "x")
    Traceback (most recent call last):
    gateway.errors.InvalidCredentials: session token signature does not verify
    """

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        secret = config.secret
        self._key = secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(MIN_SECRET_BYTES)

    def issue(self, principal: Principal) -> tuple[str, float]:
        """A token for ``principal`` and its lifetime in seconds. The token does not outlive the credential the
        principal came from (``principal.expires_at``), when that is known."""
        issued_at = int(time.time())
        expires_at = issued_at + max(1, int(self.config.ttl))
        if principal.expires_at is not None:
            expires_at = min(expires_at, int(principal.expires_at))
            if expires_at <= issued_at:
                raise InvalidCredentials("the credential behind this login has expired")
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "aud": self.config.audience,
            "sub": principal.subject,
            "iat": issued_at,
            "exp": expires_at,
            "kind": principal.kind.value,
            "via": principal.via,
            "roles": sorted(principal.roles),
            "scopes": sorted(principal.scopes),
        }
        for name in ("department", "window", "id_number", "name"):
            value = getattr(principal, name)
            if value is not None:
                claims[name] = value
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return token, float(expires_at - issued_at)

    def authenticate(self, token: str) -> Principal:
        """The principal a token was issued for; :class:`InvalidCredentials` with a short reason otherwise."""
        claims = self._verified_claims(token)
        via = claims.get("via")
        if not isinstance(via, str) or not via:
            raise InvalidCredentials("session token does not say how its holder logged in")
        return principal_from_claims(claims, _CLAIMS, via=via, expires_at=float(claims["exp"]))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidCredentials("session token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidCredentials("session token issued in the future") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidCredentials(f"session token not signed with {_ALGORITHM}") from None
        except jwt.InvalidSignatureError:
            raise InvalidCredentials("session token signature does not verify") from None
        except jwt.InvalidAudienceError:
            raise InvalidCredentials("session token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidCredentials("session token comes from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidCredentials(f"session token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise InvalidCredentials("malformed session token") from None
        return claims
