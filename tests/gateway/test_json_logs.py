"""``--log-format json`` (gateway/logs.py): one JSON line per request and one per department call, with the
request's id, the principal as a pseudonym, the source, the outcome and the duration; the text format as before.

A gateway on the demo configuration is served over HTTP in front of the demo departments; its records are written
by the formatter ``onewindow serve --log-format json`` installs, and read back as JSON.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.data import SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, EDUCATION, HRSS, PUBLIC_SECURITY, DemoDepartments
from demo.variants import DATA_PLANE_PRINCIPAL
from gateway.app import create_app
from gateway.logs import EventFormatter, RedactingFilter, logging_config, pseudonym
from gateway.serving import serve_asgi
from tests.demo_config import demo_config

PERSON = """query($id: IdNumber!) {
  person(idNumber: $id) { name maritalStatus socialInsurance { insured } degrees { degree } }
}"""


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger at INFO, writing JSON lines as ``--log-format json`` does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EventFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO, logger: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, stream.getvalue().splitlines()) if line["logger"] == logger]


async def _ask(departments: DemoDepartments, tmp_path: Path) -> httpx.Response:
    config = demo_config(departments.variables, tmp_path)
    async with serve_asgi(create_app(config)) as url, httpx.AsyncClient(timeout=30) as client:
        return await client.post(f"{url}/graphql", json={"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID}})


async def test_one_line_per_request_and_per_department_call(
    departments: DemoDepartments, tmp_path: Path, json_lines: io.StringIO
) -> None:
    response = await _ask(departments, tmp_path)
    assert response.status_code == 200, response.text
    request_id = response.headers["X-Request-Id"]

    [request] = [line for line in _lines(json_lines, "onewindow.requests") if line["path"] == "/graphql"]
    assert request["request_id"] == request_id
    assert request["level"] == "INFO"
    assert request["time"].endswith("+00:00")
    assert (request["method"], request["status"], request["outcome"]) == ("POST", 200, "ok")
    assert request["principal"] == pseudonym(DATA_PLANE_PRINCIPAL["subject"])
    assert request["duration_ms"] > 0
    calls = [line for line in _lines(json_lines, "onewindow.calls") if line["request_id"] == request_id]
    assert sorted(line["source"] for line in calls) == sorted([PUBLIC_SECURITY, CIVIL_AFFAIRS, HRSS, EDUCATION])
    for line in calls:
        assert (line["outcome"], line["cache"], line["retries"], line["keys"]) == ("ok", "miss", 0, 1), line
        assert line["operation"]
        assert line["duration_ms"] > 0
    text = json_lines.getvalue()
    assert SAMPLE_PERSON_ID not in text
    assert DATA_PLANE_PRINCIPAL["subject"] not in text


async def test_a_failed_department_call_is_a_warning_with_its_code(
    departments: DemoDepartments, tmp_path: Path, json_lines: io.StringIO
) -> None:
    await departments.stop(HRSS)

    response = await _ask(departments, tmp_path)

    assert response.json()["data"]["person"]["name"]
    [failed] = [line for line in _lines(json_lines, "onewindow.calls") if line["source"] == HRSS]
    assert (failed["level"], failed["outcome"], failed["retries"]) == ("WARNING", "SOURCE_UNAVAILABLE", 1)
    [request] = [line for line in _lines(json_lines, "onewindow.requests") if line["path"] == "/graphql"]
    assert request["outcome"] == "partial"


def test_json_mode_formats_every_handler_and_replaces_the_access_log() -> None:
    config = logging_config("info", "json")
    assert config["formatters"] == {"event": {"()": EventFormatter}}
    assert {handler["formatter"] for handler in config["handlers"].values()} == {"event"}
    assert all(handler["filters"] == ["redact"] for handler in config["handlers"].values())
    assert config["loggers"]["uvicorn.access"] == {"handlers": [], "level": "WARNING", "propagate": False}
    record = logging.LogRecord(
        "onewindow.sources", logging.WARNING, __file__, 1, "%s has no record of %s", (HRSS, SAMPLE_PERSON_ID), None
    )
    RedactingFilter().filter(record)
    line = json.loads(EventFormatter().format(record))
    assert (line["level"], line["logger"]) == ("WARNING", "onewindow.sources")
    assert line["message"].startswith("hrss has no record of id:")


def test_text_mode_shows_the_request_and_call_lines_only_at_debug() -> None:
    quiet = logging_config("info", "text")["loggers"]
    assert quiet["onewindow.requests"]["level"] == quiet["onewindow.calls"]["level"] == "ERROR"
    assert "onewindow.calls" not in logging_config("debug", "text")["loggers"]
    assert logging_config("info", "text")["formatters"]["gateway"]["()"] == "uvicorn.logging.DefaultFormatter"
