"""The operational endpoints over HTTP: anyone learns whether the process is ready; the operator learns why."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.errors import ConfigError
from gateway.serving import serve_asgi
from tests.conftest import unused_port

OPERATOR_TOKEN = "an-operator-token-from-the-environment-0001"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _config(audit_port: int, token: str | None = OPERATOR_TOKEN, **http: Any) -> GatewayConfig:
    """A gateway whose audit store (PostgreSQL at ``audit_port``) does not answer."""
    if token is not None:
        http["operator_token"] = "${OPERATOR_TOKEN}"
    source: dict[str, Any] = {"kind": "rest", "department": "HRSS", "base_url": f"http://127.0.0.1:{unused_port()}"}
    source |= {"queries": {"q": {"path": "/x/{key}"}}, "provides": {"Person.name": {"value": "n"}}}
    audit = {"url": f"postgresql+asyncpg://onewindow@127.0.0.1:{audit_port}/onewindow"}
    return parse_config(
        {
            "http": http,
            "security": {"production": False},
            "auth": {"audit": audit},
            "sources": {"hrss": source},
        },
        {"OPERATOR_TOKEN": token or ""},
    )


async def test_public_readiness_says_ready_or_not_and_only_the_operator_sees_why() -> None:
    audit_port = unused_port()
    async with serve_asgi(create_app(_config(audit_port))) as url, httpx.AsyncClient() as client:
        public = await client.get(f"{url}/readyz")
        # the audit store unreachable: shared by every replica, so still 200 (personal data is withheld)
        assert public.status_code == 200
        assert public.json() == {"ready": True}
        assert str(audit_port) not in public.text

        details = await client.get(f"{url}/readyz", headers=OPERATOR)
        assert details.status_code == 200
        body = details.json()
        assert body["degraded"] == ["audit"]
        assert set(body["sources"]) == {"hrss"}
        assert "cannot reach the audit store" in body["audit"]["last_error"]
        assert str(audit_port) in body["audit"]["last_error"]

        for wrong in ("Bearer an-operator-token-from-the-environment-0002", "Basic b3BlcmF0b3I6"):
            refused = await client.get(f"{url}/readyz", headers={"Authorization": wrong})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "hrss" not in refused.text


async def test_metrics_need_the_operator_unless_configured_public() -> None:
    async with serve_asgi(create_app(_config(unused_port()))) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/metrics")).status_code == 401
        bearer = {"Authorization": "Bearer not-the-operator"}
        assert (await client.get(f"{url}/metrics", headers=bearer)).status_code == 401
        metrics = await client.get(f"{url}/metrics", headers=OPERATOR)
        assert metrics.status_code == 200
        assert "onewindow_graphql_requests" in metrics.text
    async with serve_asgi(create_app(_config(unused_port(), metrics_public=True))) as url, httpx.AsyncClient() as c:
        assert (await c.get(f"{url}/metrics")).status_code == 200


async def test_without_an_operator_token_no_request_sees_details() -> None:
    async with serve_asgi(create_app(_config(unused_port(), token=None))) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/readyz")).json() == {"ready": True}
        assert (await client.get(f"{url}/readyz", headers=OPERATOR)).status_code == 401
        assert (await client.get(f"{url}/metrics")).status_code == 401


def test_a_short_operator_token_is_a_configuration_error_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes") as error:
        _config(unused_port(), token="short-token")
    assert error.value.path.startswith("http.operator_token")
    assert "short-token" not in str(error.value)
