"""The fault matrix, end to end: each kind of department (SOAP, REST, SQL) × each way a department fails.

Faults are injected into real servers by a TCP proxy (tests/gateway/faults.py) between the gateway and the demo
department (PostgreSQL for SQL: SQLite has no wire). The proxy forwards faithfully while the gateway starts (it
reads WSDLs, OpenAPI documents and table definitions then) and turns faulty just before the query. Each cell checks
that the answer comes within the faulty source's timeout, that the other departments' fields are intact, and that
the faulty source's field is null with exactly one typed error naming that source.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.ext.asyncio.engine import AsyncEngine

from demo.data import SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, EDUCATION, HRSS, DemoDepartments
from demo.model import Dataset
from demo.sql_departments import EDUCATION_METADATA, education_rows
from gateway.app import create_app
from gateway.config import load_config
from gateway.serving import serve_asgi
from tests.conftest import unused_port
from tests.demo_config import demo_yaml
from tests.gateway.faults import Fault, FaultProxy, http_response

TIMEOUT = 1.0  # the faulty source's timeout
SLACK = 1.0  # what the whole request may take beyond it (every cell answers within about 0.15 s of it)

QUERY = """
query($id: IdNumber!) {
  person(idNumber: $id) {
    name maritalStatus
    socialInsurance { insured contributionMonths city }
    degrees { degree school graduatedOn }
  }
}
"""

# The GraphQL field each faulty source provides.
FIELD = {CIVIL_AFFAIRS: "maritalStatus", HRSS: "socialInsurance", EDUCATION: "degrees"}

SOAP_FAULT = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault><faultcode>soap:Server</faultcode><faultstring>registry offline</faultstring></soap:Fault>
  </soap:Body>
</soap:Envelope>"""

REFUSED = "refused"
TIMEOUT_FAULT = "timeout"
ERROR = "error"  # HTTP 5xx, or a SQL error
MALFORMED = "malformed"
SOAP_FAULT_CASE = "soap-fault"
TRICKLE = "trickle"


@dataclass(frozen=True)
class Cell:
    source: str
    fault: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.source}-{self.fault}"


CELLS = [
    Cell(CIVIL_AFFAIRS, REFUSED, "SOURCE_UNAVAILABLE"),
    Cell(CIVIL_AFFAIRS, TIMEOUT_FAULT, "SOURCE_TIMEOUT"),
    Cell(CIVIL_AFFAIRS, ERROR, "SOURCE_FAULT"),
    Cell(CIVIL_AFFAIRS, MALFORMED, "BAD_SOURCE_DATA"),
    Cell(CIVIL_AFFAIRS, SOAP_FAULT_CASE, "SOURCE_FAULT"),
    Cell(CIVIL_AFFAIRS, TRICKLE, "SOURCE_TIMEOUT"),
    Cell(HRSS, REFUSED, "SOURCE_UNAVAILABLE"),
    Cell(HRSS, TIMEOUT_FAULT, "SOURCE_TIMEOUT"),
    Cell(HRSS, ERROR, "SOURCE_FAULT"),
    Cell(HRSS, MALFORMED, "BAD_SOURCE_DATA"),
    Cell(HRSS, TRICKLE, "SOURCE_TIMEOUT"),
    Cell(EDUCATION, REFUSED, "SOURCE_UNAVAILABLE"),
    # A stalled or trickling PostgreSQL: the driver would close the cancelled connection gracefully for up to 2 s;
    # the SQL adapter answers SOURCE_TIMEOUT at 1 s and lets the connection close in the background.
    Cell(EDUCATION, TIMEOUT_FAULT, "SOURCE_TIMEOUT"),
    Cell(EDUCATION, ERROR, "SOURCE_FAULT"),
    # Not BAD_SOURCE_DATA: the corrupt PostgreSQL frame (the proxy flips the message type of the answer to the pool's
    # pre-ping) makes asyncpg itself fail with an AttributeError ('NoneType' object has no attribute 'decode'),
    # which the SQL adapter does not translate; the gateway's catch-all turns it into SOURCE_FAULT ("adapter error
    # AttributeError"). Still a typed error for that source only, in time. (Flipping every byte instead garbles
    # the frame lengths, so asyncpg waits for bytes that never come: SOURCE_TIMEOUT.)
    Cell(EDUCATION, MALFORMED, "SOURCE_FAULT"),
    Cell(EDUCATION, TRICKLE, "SOURCE_TIMEOUT"),
]


def _canned(cell: Cell) -> bytes:
    soap = cell.source == CIVIL_AFFAIRS
    if cell.fault == ERROR:
        return http_response("500 Internal Server Error", b"<html>Internal Server Error</html>", "text/html")
    if cell.fault == SOAP_FAULT_CASE:
        return http_response("500 Internal Server Error", SOAP_FAULT, "text/xml; charset=utf-8")
    assert cell.fault == MALFORMED
    if soap:
        return http_response("200 OK", b"<soap:Envelope><soap:Body><QueryMarriageResp", "text/xml; charset=utf-8")
    return http_response("200 OK", b'{"idNumber": "1101', "application/json")


async def _education_schema(engine: AsyncEngine, dataset: Dataset) -> str:
    """The education tables and rows (as demo.sql_departments.write_education writes them) in a schema of their own."""
    schema = f"ow_fault_{uuid.uuid4().hex[:12]}"
    rows = education_rows(dataset)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
        translated = await conn.execution_options(schema_translate_map={None: schema})
        await translated.run_sync(EDUCATION_METADATA.create_all)
        await translated.execute(insert(EDUCATION_METADATA.tables["T_XL_XX"]), rows)
    return schema


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path) as demo:
        yield demo


def _config_path(tmp_path: Path, source: str, options: dict[str, Any]) -> Path:
    """demo/onewindow.yaml with the faulty source's timeout, retries and connection options changed."""

    def edit(data: dict[str, Any]) -> None:
        data["sources"][source] |= {"timeout": f"{TIMEOUT:g}s", "retry": {"attempts": 1}, **options}

    return demo_yaml(tmp_path, edit=edit)


@pytest.mark.parametrize("cell", CELLS, ids=lambda cell: cell.id)
async def test_fault_costs_only_the_faulty_departments_field(
    cell: Cell, departments: DemoDepartments, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    variables = departments.variables | {"DEMO_CACHE": "false"}
    engine: AsyncEngine | None = None
    schema: str | None = None
    options: dict[str, Any] = {}
    if cell.source == EDUCATION:
        pg_url: str = request.getfixturevalue("postgres_url")
        engine = create_async_engine(pg_url)
        schema = await _education_schema(engine, departments.dataset)
        upstream = engine.url.port or 5432
        options["schema"] = schema
    else:
        upstream = httpx.URL(departments.urls[cell.source]).port or 80
    try:
        async with FaultProxy(upstream) as proxy:
            port = unused_port() if cell.fault == REFUSED else proxy.port
            if cell.source == EDUCATION:
                assert engine is not None
                url = engine.url.set(port=port).render_as_string(hide_password=False)
                variables["DEMO_EDUCATION_DB_URL"] = url
            elif cell.source == HRSS:
                variables["DEMO_HRSS_URL"] = f"http://127.0.0.1:{port}"
            else:  # the WSDL still comes from the department; the calls go through the proxy
                options["address"] = f"http://127.0.0.1:{port}/marriage"
            config = load_config(_config_path(tmp_path, cell.source, options), variables=variables)
            async with serve_asgi(create_app(config)) as gateway_url:
                await _inject(cell, proxy, engine, schema)
                started = time.monotonic()
                async with httpx.AsyncClient(timeout=30) as client:
                    response = await client.post(
                        f"{gateway_url}/graphql", json={"query": QUERY, "variables": {"id": SAMPLE_PERSON_ID}}
                    )
                elapsed = time.monotonic() - started
    finally:
        if engine is not None:
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            await engine.dispose()

    body = response.json()
    assert elapsed < TIMEOUT + SLACK, f"{cell.id} answered after {elapsed:.1f}s"
    assert elapsed < config.security.request_deadline
    person = body["data"]["person"]
    expected = departments.dataset.sample_person
    assert person["name"] == expected.name
    assert person[FIELD[cell.source]] is None
    if cell.source != EDUCATION:
        assert person["degrees"] == [
            {"degree": d.degree, "school": d.school, "graduatedOn": d.graduated_on.isoformat()}
            for d in sorted(expected.degrees, key=lambda d: d.graduated_on)
        ]
    if cell.source != HRSS:
        insurance = expected.social_insurance
        assert insurance is not None
        assert person["socialInsurance"] == {
            "insured": insurance.insured,
            "contributionMonths": insurance.months,
            "city": insurance.city,
        }
    if cell.source != CIVIL_AFFAIRS:
        assert person["maritalStatus"] is not None
    [error] = body["errors"]
    assert error["extensions"]["source"] == cell.source, error
    assert error["extensions"]["code"] == cell.code, error


async def _inject(cell: Cell, proxy: FaultProxy, engine: AsyncEngine | None, schema: str | None) -> None:
    """Turn the (so far faithful) department faulty."""
    if cell.fault == REFUSED:
        return
    if cell.fault == TIMEOUT_FAULT:
        proxy.mode = Fault.STALL
    elif cell.fault == TRICKLE:
        proxy.mode = Fault.TRICKLE
    elif cell.source == EDUCATION and cell.fault == ERROR:
        assert engine is not None
        async with engine.begin() as conn:  # the table the gateway found at start-up is gone: the SELECT fails
            await conn.execute(text(f'DROP TABLE {schema}."T_XL_XX"'))
    elif cell.source == EDUCATION and cell.fault == MALFORMED:
        proxy.mode = Fault.CORRUPT
    else:
        proxy.canned = _canned(cell)
        proxy.mode = Fault.CANNED
