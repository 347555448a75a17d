"""OIDC / JWT bearer tokens from configured issuers.

Each trusted issuer (``auth.issuers.<name>`` in the configuration) gets one :class:`OidcVerifier`. It fetches the
issuer's signing keys (JWKS) over HTTP, caches them, and turns a verified token into a :class:`Principal` through
the issuer's claim mapping. A bearer token is routed to its verifier by :func:`token_issuer` (which refuses a token
that is not a JWT, or names no issuer, with the reason)::

    verifiers = {config.issuer: OidcVerifier(name, config) for name, config in auth.issuers.items()}
    verifier = verifiers[token_issuer(token)]
    principal = await verifier.authenticate(token)  # raises InvalidCredentials("token expired"), ...

What is refused, always with :class:`InvalidCredentials` and a short reason: algorithms outside the configured
asymmetric list (``none`` and ``HS*`` can never be configured), a key whose type does not fit the token's ``alg``,
a bad signature, ``exp``/``nbf``/``iat`` out of range (with ``leeway``), a missing ``exp``/``iss``/``aud``, the wrong
issuer or audience, and an unknown ``kid``. An unknown ``kid`` causes one JWKS refresh (shared by concurrent
requests, and at most one per ``min_refresh_interval``), so a rotated key is picked up without a restart and a flood
of made-up key ids does not reach the issuer.

A token that verified is remembered (by its SHA-256, with the principal it proved) until its ``exp``, so a client
sending the same token on every request costs one signature check. The cache holds nothing that did not verify,
never answers past ``exp`` (the ``leeway`` is left to a full check), and forgets the tokens of a ``kid`` that a
JWKS refresh no longer publishes, or publishes with other key material.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import jwt
from pydantic import BeforeValidator, Field

from auth.principal import ClaimMapping, Principal, principal_from_claims
from gateway.durations import Duration, Strict
from gateway.errors import InvalidCredentials

__all__ = ["Algorithm", "OidcIssuerConfig", "OidcVerifier", "peek_issuer", "token_issuer"]

logger = logging.getLogger("onewindow.auth")

Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
"""Asymmetric JWS algorithms only: with a shared secret the gateway could mint tokens itself."""

DEFAULT_LEEWAY = 30.0
DEFAULT_JWKS_CACHE_TTL = 3600.0
DEFAULT_MIN_REFRESH_INTERVAL = 30.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_VERIFIED_CACHE_SIZE = 4096

# Which JWK ``kty`` (and ``crv``) each algorithm may verify with: a key that does not fit is refused, never coerced.
_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}

# PyJWT's errors as short reasons for the caller, most specific first.
_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidIssuedAtError, "token issued in the future"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidKeyError, "unusable signing key"),
    (jwt.DecodeError, "malformed token"),
]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _default_algorithms() -> list[Algorithm]:
    return ["RS256"]


class OidcIssuerConfig(Strict):
    """One trusted OIDC issuer.

    ``issuer`` is the exact ``iss`` value; the keys come from ``jwks_url`` or, when it is absent, from the
    ``jwks_uri`` of ``{issuer}/.well-known/openid-configuration``. ``audience`` lists the accepted ``aud`` values
    (one string is accepted too). ``min_refresh_interval`` bounds how often an unknown ``kid`` may force a JWKS
    fetch; ``verified_cache_size`` how many verified tokens are remembered (0: every token is verified every time).

    >>> config = OidcIssuerConfig(issuer="https://sso.province.gov.cn/realms/gov", audience="onewindow",
    ...                           claims=ClaimMapping(kind="user_type", roles="realm_access.roles"))
    >>> config.audience, config.algorithms, config.leeway
    (['onewindow'], ['RS256'], 30.0)
    """

    issuer: str = Field(min_length=1)
    jwks_url: str | None = None
    audience: Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)]
    algorithms: list[Algorithm] = Field(default_factory=_default_algorithms, min_length=1)
    leeway: Duration = DEFAULT_LEEWAY
    claims: ClaimMapping = ClaimMapping()
    jwks_cache_ttl: Duration = DEFAULT_JWKS_CACHE_TTL
    min_refresh_interval: Duration = DEFAULT_MIN_REFRESH_INTERVAL
    timeout: Duration = DEFAULT_TIMEOUT
    verified_cache_size: int = Field(default=DEFAULT_VERIFIED_CACHE_SIZE, ge=0)


@dataclass
class _KeySet:
    """The issuer's published signing keys by ``kid``, and the keys built from them for each algorithm."""

    jwks: dict[str, dict[str, Any]]
    fetched_at: float
    built: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict)

    def key(self, kid: str, alg: str) -> jwt.PyJWK:
        """The key ``kid`` for verifying ``alg``; refused when its type, curve, use or declared alg do not fit."""
        if (kid, alg) in self.built:
            return self.built[(kid, alg)]
        jwk = self.jwks[kid]
        kty, curves = _KEY_TYPES[alg]
        if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
            raise InvalidCredentials("signing key does not match the token algorithm")
        if jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
            raise InvalidCredentials("signing key does not match the token algorithm")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise InvalidCredentials("unusable signing key") from exc
        self.built[(kid, alg)] = key
        return key


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires_at: float  # the token's ``exp``
    kid: str


class _VerifiedTokens:
    """Tokens that verified, by SHA-256, with the principal each proved, until their ``exp``; at most ``size`` of
    them (the oldest goes first)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[bytes, _Verified] = {}

    def get(self, digest: bytes, now: float) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self._entries[digest]
            return None
        return entry.principal

    def put(self, digest: bytes, entry: _Verified, now: float) -> None:
        if self.size == 0 or now >= entry.expires_at:
            return
        while len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = entry

    def forget(self, kids: set[str]) -> None:
        """Drop the tokens signed with any of ``kids``."""
        if kids and self._entries:
            self._entries = {digest: e for digest, e in self._entries.items() if e.kid not in kids}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _key_set(document: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set (no 'keys' list)")
    return {
        jwk["kid"]: dict(jwk)
        for jwk in document["keys"]
        if isinstance(jwk, Mapping) and isinstance(jwk.get("kid"), str) and isinstance(jwk.get("kty"), str)
    }


class OidcVerifier:
    """Verifies bearer tokens of one issuer; keys are fetched with httpx and cached. A ``client`` passed in is used
    for the issuer's documents and left open; otherwise the verifier creates one on first use and closes it in
    :meth:`aclose`::

        verifier = OidcVerifier("province", OidcIssuerConfig(issuer="https://sso.example", audience="onewindow"))
        principal = await verifier.authenticate(token)  # Principal(subject=..., via="oidc:province", ...)
        await verifier.aclose()
    """

    def __init__(self, name: str, config: OidcIssuerConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.config = config
        self._client = client
        self._owns_client = client is None
        self._jwks_url = config.jwks_url
        self._keys: _KeySet | None = None
        self._fetching: asyncio.Task[_KeySet] | None = None
        self._failed_at: float | None = None
        self._forced_at: float | None = None
        self._verified = _VerifiedTokens(config.verified_cache_size)

    @property
    def via(self) -> str:
        return f"oidc:{self.name}"

    def verified(self, token: str) -> Principal | None:
        """The principal of ``token`` if it verified here before and has not expired since; ``None`` otherwise."""
        return self._verified.get(_digest(token), time.time())

    async def authenticate(self, token: str, *, issuer: str | None = None) -> Principal:
        """The principal a valid token proves; :class:`InvalidCredentials` with a short reason otherwise.
        ``issuer``: the token's unverified ``iss`` when the caller already read it to route the token here."""
        digest = _digest(token)
        known = self._verified.get(digest, time.time())
        if known is not None:
            return known
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidCredentials("malformed token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.config.algorithms:
            raise InvalidCredentials("algorithm not allowed")
        if not isinstance(kid, str):
            raise InvalidCredentials("token names no signing key")
        if (issuer if issuer is not None else peek_issuer(token)) != self.config.issuer:
            raise InvalidCredentials("wrong issuer")  # before any key lookup: a foreign kid must not force a fetch
        key = await self._signing_key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.config.algorithms),
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
                issuer=self.config.issuer,
                audience=self.config.audience,
                leeway=self.config.leeway,
            )
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidCredentials(f"token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), "invalid token")
            raise InvalidCredentials(reason) from None
        expires_at = float(claims["exp"])
        principal = principal_from_claims(claims, self.config.claims, via=self.via, expires_at=expires_at)
        # no await since the key was taken: a key set fetched meanwhile cannot have dropped this kid unseen
        self._verified.put(digest, _Verified(principal, expires_at, kid), time.time())
        return principal

    async def aclose(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            await asyncio.wait([self._fetching])
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _signing_key(self, kid: str, alg: str) -> jwt.PyJWK:
        asked_at = time.monotonic()
        keys = await self._current_keys()
        if kid not in keys.jwks:
            if keys.fetched_at >= asked_at:
                raise InvalidCredentials("unknown signing key")  # the keys were fetched for this very token
            keys = await self._refresh_for(kid)
        return keys.key(kid, alg)

    async def _current_keys(self) -> _KeySet:
        """The cached keys; fetched when absent or older than ``jwks_cache_ttl``. When a refetch fails, the stale
        keys keep serving (an issuer outage must not log everyone out) and the next try waits a refresh interval."""
        keys, now = self._keys, time.monotonic()
        if keys is not None:
            fresh = now - keys.fetched_at < self.config.jwks_cache_ttl
            backing_off = self._failed_at is not None and now - self._failed_at < self.config.min_refresh_interval
            if fresh or backing_off:
                return keys
        try:
            return await self._fetch_shared()
        except InvalidCredentials:
            if keys is None:
                raise
            return keys

    async def _refresh_for(self, kid: str) -> _KeySet:
        """One refresh for an unknown ``kid``: joins a fetch under way, else fetches at most once per interval."""
        now = time.monotonic()
        limited = self._forced_at is not None and now - self._forced_at < self.config.min_refresh_interval
        if self._fetching is None and limited:
            raise InvalidCredentials("unknown signing key")
        if self._fetching is None:
            self._forced_at = now
        keys = await self._fetch_shared()
        if kid not in keys.jwks:
            raise InvalidCredentials("unknown signing key")
        return keys

    async def _fetch_shared(self) -> _KeySet:
        """Single flight: concurrent callers await the same fetch; a caller cancelled does not cancel it."""
        if self._fetching is None:
            self._fetching = asyncio.get_running_loop().create_task(self._fetch())
            self._fetching.add_done_callback(self._fetched)
        return await asyncio.shield(self._fetching)

    def _fetched(self, task: asyncio.Task[_KeySet]) -> None:
        self._fetching = None
        if not task.cancelled() and task.exception() is not None:
            self._failed_at = time.monotonic()

    async def _fetch(self) -> _KeySet:
        try:
            url = self._jwks_url or await self._discover()
            response = await self._http().get(url, timeout=self.config.timeout)
            response.raise_for_status()
            keys = _KeySet(jwks=_key_set(response.json()), fetched_at=time.monotonic())
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("keys of issuer %s (%s) are unavailable: %r", self.name, self.config.issuer, exc)
            raise InvalidCredentials("issuer keys unavailable") from exc
        previous, self._keys, self._failed_at = self._keys, keys, None
        if previous is not None:  # a key withdrawn or replaced takes the tokens it signed with it
            self._verified.forget({kid for kid, jwk in previous.jwks.items() if keys.jwks.get(kid) != jwk})
        return keys

    async def _discover(self) -> str:
        url = f"{self.config.issuer.rstrip('/')}/.well-known/openid-configuration"
        response = await self._http().get(url, timeout=self.config.timeout)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, Mapping) or document.get("issuer") != self.config.issuer:
            raise ValueError(f"{url} describes another issuer")  # OpenID Connect Discovery 1.0, section 4.3
        jwks_url = document.get("jwks_uri")
        if not isinstance(jwks_url, str):
            raise ValueError(f"{url} has no jwks_uri")
        self._jwks_url = jwks_url
        return jwks_url

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout)
        return self._client


def token_issuer(token: str) -> str:
    """The unverified ``iss`` of a JWT, to route a bearer token to its issuer's verifier; :class:`InvalidCredentials`
    saying what is wrong when the token is not a JWT or names no issuer.

    >>> token_issuer("not-a-jwt")
    Traceback (most recent call last):
    ...
    gateway.errors.InvalidCredentials: the bearer token is not a JWT
    """
    try:  # nothing here is trusted: the verifier the issuer picks checks the token strictly
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidCredentials("the bearer token is not a JWT") from None
    if "iss" not in claims:
        raise InvalidCredentials("the token has no iss claim")
    issuer = claims["iss"]
    if not isinstance(issuer, str):
        raise InvalidCredentials("the token's iss claim is not a string")
    return issuer


def peek_issuer(token: str) -> str | None:
    """The unverified ``iss`` of a JWT; None when not a JWT or without an ``iss``.

    >>> peek_issuer("not-a-jwt") is None
    True
    """
    try:
        return token_issuer(token)
    except InvalidCredentials:
        return None
