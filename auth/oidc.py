"""OIDC / JWT bearer tokens from configured issuers (skeleton: the interface the gateway relies on)."""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import Field

from auth.principal import ClaimMapping, Principal
from gateway.durations import Duration, Strict

__all__ = ["OidcIssuerConfig", "OidcVerifier"]


class OidcIssuerConfig(Strict):
    issuer: str
    jwks_url: str | None = None
    audience: list[str]
    algorithms: list[Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]] = Field(
        default_factory=lambda: ["RS256"]
    )
    leeway: Duration = 30.0
    claims: ClaimMapping = ClaimMapping()


class OidcVerifier:
    def __init__(self, name: str, config: OidcIssuerConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.config = config

    async def authenticate(self, token: str) -> Principal:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None
