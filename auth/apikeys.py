"""API keys for counter terminals and integrators (skeleton)."""

from __future__ import annotations

from auth.principal import Principal
from gateway.durations import Strict

__all__ = ["ApiKeyConfig", "ApiKeyStore"]


class ApiKeyConfig(Strict):
    url: str = "sqlite+aiosqlite:///onewindow-keys.db"


class ApiKeyStore:
    def __init__(self, config: ApiKeyConfig) -> None:
        self.config = config

    async def open(self) -> None:
        return None

    async def authenticate(self, presented: str) -> Principal:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None
