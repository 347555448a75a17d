"""The gateway's own short-lived session tokens (skeleton)."""

from __future__ import annotations

from pydantic import SecretStr

from auth.principal import Principal
from gateway.durations import Duration, Strict

__all__ = ["SessionConfig", "SessionTokens"]


class SessionConfig(Strict):
    secret: SecretStr | None = None
    ttl: Duration = 900.0
    issuer: str = "onewindow-session"


class SessionTokens:
    def __init__(self, config: SessionConfig) -> None:
        self.config = config

    def issue(self, principal: Principal) -> tuple[str, float]:
        raise NotImplementedError

    def authenticate(self, token: str) -> Principal:
        raise NotImplementedError
