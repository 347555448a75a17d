"""The operational endpoints over HTTP: anyone learns whether the process is ready; the operator learns why."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.audit import AuditConfig, AuditLog
from demo.data import SAMPLE_PERSON_ID
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.errors import ConfigError
from gateway.serving import serve_asgi
from tests.auth.samples import disclosure
from tests.conftest import unused_port
from tests.gateway.registry import NAME, PERSON, audited_config, registry_app

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


# --- the audit's seal key, checked at start-up -------------------------------------------------------------------

SEAL_KEY = "sealed-by-the-audit-office-of-the-province-2026"


@pytest.fixture
async def registry() -> AsyncIterator[str]:
    async with serve_asgi(registry_app()) as url:
        yield url


def _audited(registry: str, audit_url: str, seal_key: str) -> GatewayConfig:
    return audited_config(registry, audit_url, seal_key=seal_key, operator_token=OPERATOR_TOKEN)


async def test_a_wrong_seal_key_makes_the_gateway_unready_and_withholding_from_the_start(
    registry: str, tmp_path: Path
) -> None:
    audit_url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    async with AuditLog(AuditConfig(url=audit_url, seal_key=SEAL_KEY)) as audit:
        await audit.write([disclosure(1, dt.datetime.now(dt.UTC))])  # the store's own gateways sealed it

    wrong = _audited(registry, audit_url, "another-key-of-at-least-32-bytes!!")
    async with serve_asgi(create_app(wrong)) as url, httpx.AsyncClient() as client:
        public = await client.get(f"{url}/readyz")  # before any disclosure was attempted
        assert (public.status_code, public.json()) == (503, {"ready": False})
        details = (await client.get(f"{url}/readyz", headers=OPERATOR)).json()
        assert details["degraded"] == ["audit"]
        assert details["audit"]["status"] == "unavailable"
        assert "seal_key" in details["audit"]["last_error"]

        answer = await client.post(f"{url}/graphql", json={"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID}})
        body = answer.json()
        assert body["data"]["person"]["name"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["AUDIT_UNAVAILABLE"]

    right = _audited(registry, audit_url, SEAL_KEY)
    async with serve_asgi(create_app(right)) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/readyz")).status_code == 200
        answer = await client.post(f"{url}/graphql", json={"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID}})
        assert answer.json()["data"]["person"]["name"] == NAME
