"""Probes against real departments: the paths a source reads, a key not held, refused credentials, and /readyz.

The department here is a Starlette ledger that wants a bearer token; it is spoken to by a small adapter of the
kind a third party writes (``ledger``, registered as such), which says ``SourceCredentialsRefused`` on a 401.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from adapters.base import Adapter, AdapterOptions, AdapterQuery, Record
from adapters.registry import register_adapter
from demo.departments import DemoDepartments
from demo.variants import DEMO_OPERATOR, DEMO_OPERATOR_TOKEN
from gateway.app import create_app
from gateway.cli import DEMO_CONFIG, app
from gateway.config import GatewayConfig, ProbeConfig, parse_config
from gateway.errors import SourceCredentialsRefused, SourceUnavailable
from gateway.probe import probe_source, source_readiness
from gateway.resilience import SourceGuard
from gateway.serving import serve_asgi

PERSON = "11010519491231002X"
NOT_HELD = "110105188002290014"  # a valid ID number no department of the demo holds
TOKEN = "ledger-token-0123456789"


class LedgerOptions(AdapterOptions):
    base_url: str
    token: str


class LedgerQuery(AdapterQuery):
    path: str


class LedgerAdapter(Adapter):
    """GET ``{base_url}{path}`` with ``{key}`` filled in, a bearer token; 401/403 is a refusal of credentials."""

    Options = LedgerOptions
    Query = LedgerQuery

    def __init__(self, name: str, config: Any) -> None:
        super().__init__(name, config)
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(headers={"Authorization": f"Bearer {self.options.token}"}, timeout=5)
        await self._get("/health")

    async def fetch(self, query: str, keys: Sequence[str]) -> dict[str, list[Record]]:
        response = await self._get(self.queries[query].path.replace("{key}", keys[0]))
        return {} if response.status_code == 404 else {keys[0]: [response.json()]}

    async def _get(self, path: str) -> httpx.Response:
        assert self._client is not None
        try:
            response = await self._client.get(f"{self.options.base_url}{path}")
        except httpx.TransportError as exc:
            raise SourceUnavailable(self.name, f"cannot reach the ledger: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise SourceCredentialsRefused(self.name, f"the ledger answered {response.status_code}")
        return response

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


register_adapter("ledger", LedgerAdapter)


def _ledger_app() -> Starlette:
    people = {PERSON: {"XM": "Wang Fang", "address": {"city": "Beijing", "street": None}, "phones": []}}

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True}) if authorized(request) else JSONResponse({}, status_code=401)

    async def person(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": "bad token"}, status_code=401)
        found = people.get(request.path_params["key"])
        return JSONResponse(found) if found else JSONResponse({}, status_code=404)

    return Starlette(routes=[Route("/health", health), Route("/people/{key}", person)])


@pytest.fixture
async def ledger() -> AsyncIterator[str]:
    async with serve_asgi(_ledger_app()) as url:
        yield url


def _config(url: str, *, token: str = TOKEN, probe_key: str | None = PERSON, **provides: Any) -> GatewayConfig:
    source: dict[str, Any] = {
        "kind": "ledger",
        "department": "Ledger",
        "base_url": url,
        "token": token,
        "queries": {"person": {"path": "/people/{key}"}},
        "provides": provides or {"Person.name": {"value": "XM"}},
    }
    if probe_key is not None:
        source["probe"] = {"key": probe_key}
    http = {"operator_token": DEMO_OPERATOR_TOKEN}
    return parse_config({"http": http, "security": {"production": False}, "sources": {"ledger": source}})


async def _probe(config: GatewayConfig) -> Any:
    async with contextlib.AsyncExitStack() as stack:
        adapter = LedgerAdapter("ledger", config.sources["ledger"])
        stack.push_async_callback(adapter.aclose)
        return await probe_source("ledger", config.sources["ledger"], adapter)


async def test_a_probe_checks_every_path_the_source_reads(ledger: str) -> None:
    config = _config(
        ledger,
        **{
            "Person.name": {"value": "XM"},
            "Person.registeredAddress": {"value": "address.street"},  # null in the answer: there all the same
        },
    )
    report = await _probe(config)
    assert report.ok, report.detail
    assert report.status == "ok"
    assert "2 paths present" in report.detail


async def test_a_probe_names_the_paths_missing_from_the_answer_and_no_value(ledger: str) -> None:
    config = _config(
        ledger,
        **{"Person.name": {"value": "XM_TYPO"}, "Person.registeredAddress": {"value": "address.district"}},
    )
    report = await _probe(config)
    assert not report.ok
    assert report.status == "missing_paths"
    assert report.missing == ("XM_TYPO", "address.district")
    assert "Wang" not in report.detail
    assert "Beijing" not in report.detail


async def test_a_key_the_department_does_not_hold_is_reported_as_such(ledger: str) -> None:
    report = await _probe(_config(ledger, probe_key=NOT_HELD))
    assert report.status == "key_not_held"
    assert "sources.ledger.probe.key" in report.detail
    assert NOT_HELD not in report.detail


async def test_refused_credentials_are_reported_with_a_hint(ledger: str) -> None:
    report = await _probe(_config(ledger, token="a-token-the-ledger-never-issued"))
    assert report.status == "credentials_refused"
    assert report.code == "SOURCE_CREDENTIALS_REFUSED"
    assert "sources.ledger.credentials" in report.detail


async def test_a_source_without_probe_is_only_reached(ledger: str) -> None:
    report = await _probe(_config(ledger, probe_key=None))
    assert report.status == "reachable"


async def test_a_probe_query_the_source_does_not_have_is_named(ledger: str) -> None:
    config = _config(ledger)
    source = config.sources["ledger"].model_copy(update={"probe": ProbeConfig(key=PERSON, query="persn")})
    async with LedgerAdapter("ledger", source) as adapter:
        report = await probe_source("ledger", source, adapter)
    assert report.status == "failed"
    assert "sources.ledger.probe.query" in report.detail


async def test_readyz_reports_credentials_refused_at_open_apart_from_unavailable(ledger: str) -> None:
    config = _config(ledger, token="a-token-the-ledger-never-issued")
    async with serve_asgi(create_app(config)) as url, httpx.AsyncClient() as client:
        ready = (await client.get(f"{url}/readyz", headers=DEMO_OPERATOR)).json()
    entry = ready["sources"]["ledger"]
    assert entry["status"] == "credentials_refused"
    assert "sources.ledger.credentials" in entry["hint"]
    assert ready["degraded"] == ["ledger"]


async def test_readiness_follows_the_last_call(ledger: str) -> None:
    refused = _config(ledger, token="a-token-the-ledger-never-issued").sources["ledger"]
    good = _config(ledger).sources["ledger"]
    guard = SourceGuard("ledger", good)
    adapter = LedgerAdapter("ledger", refused)
    try:
        with pytest.raises(SourceCredentialsRefused):
            await guard.call(adapter.open, deadline=None)
        assert source_readiness("ledger", guard, None)["status"] == "credentials_refused"
    finally:
        await adapter.aclose()
    async with LedgerAdapter("ledger", good) as fixed:
        await guard.call(lambda: fixed.fetch("person", [PERSON]), deadline=None)
    assert source_readiness("ledger", guard, None)["status"] == "ready"
    unreachable = SourceUnavailable("ledger", "connection refused")
    assert source_readiness("ledger", guard, unreachable)["status"] == "unavailable"


async def test_check_probe_against_the_demo_departments(tmp_path: Path) -> None:
    document = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    sources = document["sources"]
    sources["public_security"]["probe"] = {"key": PERSON, "query": "person"}
    sources["public_security"]["provides"]["Person.phone"]["value"] = "LXDH_TYPO"
    sources["hrss"]["probe"] = {"key": PERSON}
    sources["market_regulation"]["probe"] = {"key": "91110000600037341L", "query": "enterprise"}
    sources["civil_affairs"]["probe"] = {"key": NOT_HELD}
    path = tmp_path / "probed.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    async with DemoDepartments(tmp_path) as departments:
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["check", str(path), "--probe"], env=departments.variables
        )
    assert result.exit_code == 1, result.output
    output = result.output
    assert "probe failed public_security: person: missing in the answer: LXDH_TYPO" in output
    assert "probe failed civil_affairs: marriage: the department does not hold the key at sources.civil" in output
    assert PERSON not in output
    assert NOT_HELD not in output
    assert "probe failed hrss" not in output
    assert "probe failed market_regulation" not in output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 4}
    assert "ok" in lines["hrss"]
    assert "ok" in lines["market_regulation"]
    assert "ok" in lines["education"]  # no probe: reached
