"""No personal value or credential reaches a log: end-to-end scenarios with every log captured at DEBUG.

The gateway is served over HTTP, with its access log on, in front of the demo departments; callers prove who they
are with OIDC tokens from a real OAuth2 server, the gateway's own session tokens and API keys. Every record of the
root logger and of uvicorn's loggers is captured at DEBUG while refusals, bad ID numbers and credit codes, a
department failing, successful reads, GET requests with the query in the URL and credentials sent in a query string
run; then the captured text is scanned for each ID number, credit code, token and key used -- as the text
formatter prints it and as the JSON lines of ``--log-format json`` say it (every field of every line).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.apikeys import ApiKeyConfig, ApiKeyStore
from auth.principal import Principal, PrincipalKind
from auth.sessions import SessionTokens
from demo.data import SAMPLE_ENTITY_CODE, SAMPLE_PERSON_ID
from demo.departments import HRSS, DemoDepartments
from gateway.app import create_app
from gateway.config import load_config
from gateway.logs import EventFormatter
from gateway.serving import serve_asgi
from tests.demo_config import demo_yaml
from tests.oauth2_server import OAuth2MockServer, start_oauth2_mock_server

SESSION_SECRET = "log-scan-session-secret-with-enough-entropy-0123456789"
BAD_ID_NUMBER = "11010519491231002Y"  # the sample person's, one character mistyped
BAD_CREDIT_CODE = SAMPLE_ENTITY_CODE[:-1] + ("X" if SAMPLE_ENTITY_CODE[-1] != "X" else "Y")
FIELDS = "idNumber name maritalStatus socialInsurance { insured }"
PERSON = f"""query Lookup($id: IdNumber!, $case: String!) {{
  person(idNumber: $id, purpose: {{caseNumber: $case}}) {{ {FIELDS} }}
}}"""
PERSON_NO_PURPOSE = f"query Lookup($id: IdNumber!) {{ person(idNumber: $id) {{ {FIELDS} }} }}"
ENTITY = "query Entity($code: CreditCode!) { legalEntity(creditCode: $code) { creditCode name } }"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@dataclass
class Scene:
    """The served gateway, and every secret a scenario used: none may appear in a log."""

    url: str
    departments: DemoDepartments
    issuer: OAuth2MockServer
    sessions: SessionTokens
    api_key: str
    secrets: set[str] = field(default_factory=set)

    def session(self, principal: Principal) -> str:
        return self.used(self.sessions.issue(principal)[0])

    async def oidc(self, claims: dict[str, Any]) -> str:
        return self.used(await self.issuer.token({"aud": "onewindow", **claims}, expires_in=300))

    def used(self, secret: str) -> str:
        self.secrets.add(secret)
        return secret

    async def post(self, query: str, headers: dict[str, str], **variables: Any) -> dict[str, Any]:
        self.secrets.update(v for v in variables.values() if isinstance(v, str) and len(v) == 18)
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        body: dict[str, Any] = response.json()
        return body

    async def get(self, params: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            csrf = {"X-OneWindow-Request": "1"}  # a GET operation needs it (see gateway.hardening)
            return await client.get(f"{self.url}/graphql", params=params, headers={**csrf, **(headers or {})})


def _configure(data: dict[str, Any], tmp_path: Path, issuer: OAuth2MockServer) -> None:
    data["security"]["production"] = True
    data["cache"]["enabled"] = False  # the department that fails at the end is asked, not answered for from the cache
    data["auth"].pop("development_principal")
    data["auth"]["sessions"] = {"secret": SESSION_SECRET, "ttl": "5m"}
    data["auth"]["audit"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"}
    data["auth"]["api_keys"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}
    data["auth"]["issuers"] = {
        "province": {
            "issuer": issuer.issuer,
            "jwks_url": issuer.jwks_url,
            "audience": "onewindow",
            "claims": {"kind": "user_type", "department": "org"},
        }
    }


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path / "departments") as demo:
        yield demo


@pytest.fixture
async def scene(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Scene]:
    async with start_oauth2_mock_server() as issuer:
        path = demo_yaml(tmp_path, open_policy=False, edit=lambda data: _configure(data, tmp_path, issuer))
        config = load_config(path, variables=departments.variables)
        assert config.auth.api_keys is not None
        assert config.auth.sessions is not None
        store = ApiKeyStore(ApiKeyConfig(url=config.auth.api_keys.url))
        await store.open()
        try:
            _, api_key = await store.create(
                subject="hall-3-window-7", kind=PrincipalKind.CLERK, department="民政局", scopes=["read:*"]
            )
        finally:
            await store.aclose()
        application = create_app(config)
        async with serve_asgi(application, log_level="debug", access_log=True) as url:
            scene = Scene(url, departments, issuer, SessionTokens(config.auth.sessions), api_key)
            scene.used(api_key)
            scene.used(api_key.split("_", 2)[2])  # the secret part alone (owk_<key id>_<secret>)
            yield scene


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record at DEBUG: the root logger's, and uvicorn's (whose access log does not propagate)."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in UVICORN_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(caplog.handler)
            logger.setLevel(level)


@pytest.fixture
def json_log(captured: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """The same records as ``--log-format json`` writes them: one JSON object per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EventFormatter())
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in UVICORN_LOGGERS)]
    for logger in loggers:
        if logger is logging.getLogger() or not logger.propagate:
            logger.addHandler(handler)
    try:
        yield stream
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _run_scenarios(scene: Scene) -> None:
    dataset = scene.departments.dataset
    case = dataset.sample_purpose.case_number
    other = scene.used(next(p.id_number for p in dataset.persons if p.id_number != SAMPLE_PERSON_ID))
    scene.used(SAMPLE_PERSON_ID)
    citizen = _bearer(scene.session(Principal("c-1", PrincipalKind.CITIZEN, "cas", id_number=SAMPLE_PERSON_ID)))
    clerk = _bearer(await scene.oidc({"sub": "wang.fang", "user_type": "clerk", "org": "民政局"}))

    # successful reads: a citizen's own record, a clerk's with a purpose, a legal entity
    own = await scene.post(PERSON_NO_PURPOSE, citizen, id=SAMPLE_PERSON_ID)
    assert own["data"]["person"]["name"], own
    with_purpose = await scene.post(PERSON, clerk, id=SAMPLE_PERSON_ID, case=case)
    assert with_purpose["data"]["person"]["name"], with_purpose
    entity = await scene.post(ENTITY, clerk, code=SAMPLE_ENTITY_CODE)
    assert entity["data"]["legalEntity"]["name"], entity

    # refusals: someone else's record, no purpose
    refused = await scene.post(PERSON_NO_PURPOSE, citizen, id=other)
    assert {e["extensions"]["code"] for e in refused["errors"]} == {"FORBIDDEN"}, refused
    no_purpose = await scene.post(PERSON_NO_PURPOSE, clerk, id=other)
    assert "FORBIDDEN" in {e["extensions"]["code"] for e in no_purpose["errors"]}, no_purpose

    # bad input, as a variable and as a literal
    for body in (
        await scene.post(PERSON, clerk, id=BAD_ID_NUMBER, case=case),
        await scene.post(f'{{ person(idNumber: "{BAD_ID_NUMBER}") {{ name }} }}', clerk),
        await scene.post(ENTITY, clerk, code=BAD_CREDIT_CODE),
    ):
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body

    # API keys, in either header
    api_key = scene.api_key
    by_key = await scene.post(PERSON, {"Authorization": f"ApiKey {api_key}"}, id=SAMPLE_PERSON_ID, case=case)
    assert by_key["data"]["person"]["name"], by_key
    by_header = await scene.post(PERSON_NO_PURPOSE, {"X-API-Key": api_key}, id=other)
    assert "FORBIDDEN" in {e["extensions"]["code"] for e in by_header["errors"]}, by_header
    unknown_key = scene.used(api_key[:-4] + "AAAA")
    unknown = await scene.get({"query": "{ viewer { subject } }"}, {"X-API-Key": unknown_key})
    assert unknown.status_code == 401, unknown.text

    # GET with the query and the variables in the URL; credentials in the query string
    variables = json.dumps({"id": SAMPLE_PERSON_ID, "case": case})
    got = await scene.get({"query": PERSON, "variables": variables, "operationName": "Lookup"}, clerk)
    assert got.json()["data"]["person"]["name"], got.text
    literal = await scene.get({"query": f'{{ person(idNumber: "{other}") {{ name }} }}'}, citizen)
    assert literal.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN", literal.text
    citizen_token = citizen["Authorization"].removeprefix("Bearer ")
    for params in ({"access_token": citizen_token}, {"api_key": api_key}, {"token": clerk["Authorization"][7:]}):
        response = await scene.get({"query": "{ viewer { subject } }", **params})
        assert response.status_code == 401, response.text

    # a department failing
    await scene.departments.stop(HRSS)
    failed = await scene.post(PERSON_NO_PURPOSE, citizen, id=SAMPLE_PERSON_ID)
    assert {e["extensions"]["code"] for e in failed["errors"]} == {"SOURCE_UNAVAILABLE"}, failed


async def test_no_id_number_credit_code_token_or_key_reaches_the_log(
    scene: Scene, captured: pytest.LogCaptureFixture, json_log: io.StringIO
) -> None:
    await _run_scenarios(scene)
    scene.secrets |= {SAMPLE_ENTITY_CODE, BAD_CREDIT_CODE, BAD_ID_NUMBER}

    records = captured.records
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    # the scan saw what it scans: access lines, the outcomes of the scenarios, a line per request and per call
    assert any(r.name == "uvicorn.access" for r in records)
    assert any(r.name.startswith("onewindow") for r in records)
    assert {"onewindow.requests", "onewindow.calls", "onewindow.errors"} <= {line["logger"] for line in lines}
    assert any(line.get("principal") for line in lines if line["logger"] == "onewindow.requests")
    for text in (captured.text, json_log.getvalue(), json.dumps(lines, ensure_ascii=False)):
        leaked = sorted(secret for secret in scene.secrets if secret in text)
        assert not leaked, f"in the log: {leaked}"
        assert SAMPLE_PERSON_ID.lower() not in text.lower()


async def test_expected_outcomes_are_one_line_each_without_a_traceback(
    scene: Scene, captured: pytest.LogCaptureFixture
) -> None:
    await _run_scenarios(scene)

    records = captured.records
    assert "Traceback" not in captured.text
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records if r.levelno >= 40]
    outcomes = [r for r in records if r.name == "onewindow.errors"]
    forbidden = [r for r in outcomes if r.getMessage().startswith("FORBIDDEN ")]
    assert forbidden
    assert all(r.levelno == logging.INFO and "\n" not in r.getMessage() for r in forbidden)
    assert all("request=" in r.getMessage() and "path=person." in r.getMessage() for r in forbidden)
    assert any("operation=Lookup" in r.getMessage() for r in forbidden)
    bad_input = [r for r in outcomes if r.getMessage().startswith("BAD_USER_INPUT ")]
    assert len(bad_input) >= 3
    assert all(r.levelno == logging.INFO for r in bad_input)
    [unavailable] = [r for r in outcomes if r.getMessage().startswith("SOURCE_UNAVAILABLE ")]
    assert unavailable.levelno == logging.WARNING
    assert "source=hrss" in unavailable.getMessage()
    access = [r.getMessage() for r in records if r.name == "uvicorn.access"]
    assert any("/graphql?query=***&variables=***&operationName=Lookup" in line for line in access), access
    assert any("access_token=***" in line for line in access), access
