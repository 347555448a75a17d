"""CAS 3.0 service tickets (skeleton)."""

from __future__ import annotations

import httpx
from starlette.routing import BaseRoute

from auth.principal import ClaimMapping, Principal
from auth.sessions import SessionTokens
from gateway.durations import Duration, Strict

__all__ = ["CasConfig", "CasValidator", "cas_routes"]


class CasConfig(Strict):
    server: str
    service: str
    attributes: ClaimMapping = ClaimMapping(subject="user")
    timeout: Duration = 5.0


class CasValidator:
    def __init__(self, config: CasConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config

    async def validate(self, ticket: str) -> Principal:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def cas_routes(validator: CasValidator, sessions: SessionTokens) -> list[BaseRoute]:
    return []
