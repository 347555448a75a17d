"""Traces of the gateway (gateway/telemetry.py): one request span over a span per department call, trace context
sent to the departments, OTLP/HTTP export to a real receiver, and nothing personal in any span.

The departments are the demo's, served on loopback; spans are read from the SDK's in-memory exporter once the
gateway has stopped (its lifespan flushes them), or decoded by a small OTLP/HTTP receiver.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth.apikeys import ApiKeyStore
from auth.principal import PrincipalKind
from demo.data import SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, EDUCATION, HRSS, PUBLIC_SECURITY, DemoDepartments
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.serving import serve_asgi
from gateway.telemetry import Tracing
from tests.demo_config import demo_config

FAN_OUT = """query($id: IdNumber!) {
  person(idNumber: $id) { name maritalStatus socialInsurance { insured } degrees { degree } }
}"""
FOUR = {PUBLIC_SECURITY, CIVIL_AFFAIRS, HRSS, EDUCATION}
HTTP_SOURCES = (PUBLIC_SECURITY, CIVIL_AFFAIRS, HRSS)


def _config(departments: DemoDepartments, tmp_path: Path, **tracing: Any) -> GatewayConfig:
    def edit(data: dict[str, Any]) -> None:
        data["tracing"] = {"enabled": True, **tracing}
        for source, options in sources.items():
            data["sources"][source].update(options)

    sources: dict[str, dict[str, Any]] = tracing.pop("sources", {})
    return demo_config(departments.variables, tmp_path, edit=edit)


async def _ask(url: str, query: str = FAN_OUT, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{url}/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _traced(config: GatewayConfig, ask: Callable[[str], Any]) -> list[ReadableSpan]:
    """Serve ``config`` traced into memory, run ``ask(url)``, stop, and return every span it ended."""
    exporter = InMemorySpanExporter()
    async with serve_asgi(create_app(config, tracing=Tracing(config.tracing, exporter=exporter))) as url:
        await ask(url)
    return list(exporter.get_finished_spans())


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _request_span(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    [request] = [s for s in spans if s.kind is SpanKind.SERVER]
    return request


def _department_spans(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    found = {
        str((s.attributes or {})["onewindow.source"]): s for s in spans if "onewindow.source" in (s.attributes or {})
    }
    assert len(found) == len([s for s in spans if "onewindow.source" in (s.attributes or {})]), "one span per source"
    return found


def _everything_said(spans: Sequence[ReadableSpan]) -> str:
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
        parts.append(span.status.description or "")
    return "\n".join(parts)


async def test_a_person_fan_out_is_one_request_span_over_four_department_spans(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    async def ask(url: str) -> None:
        body = await _ask(url, id=SAMPLE_PERSON_ID)
        assert "errors" not in body, body

    spans = await _traced(_config(departments, tmp_path), ask)

    request = _request_span(spans)
    assert request.name == "POST /graphql"
    assert request.parent is None
    calls = _department_spans(spans)
    assert set(calls) == FOUR
    for source, span in calls.items():
        assert _parent(span) == request.context.span_id, source
        assert span.context.trace_id == request.context.trace_id
        attributes = span.attributes or {}
        assert attributes["onewindow.cache"] == "miss"
        assert attributes["onewindow.breaker"] == "closed"
        assert attributes["onewindow.retries"] == 0
        assert attributes["onewindow.keys"] == 1
        assert span.status.status_code is StatusCode.UNSET
    # the instrumentations' own spans sit under the department's: an HTTP client span, SQL statements
    for source in (*HTTP_SOURCES, EDUCATION):
        children = [s for s in spans if _parent(s) == calls[source].context.span_id]
        assert children, source
        assert all(s.kind is SpanKind.CLIENT for s in children), source
    # the ID number asked for is in no name, attribute or status (a REST path holds it, hashed)
    said = _everything_said(spans)
    assert SAMPLE_PERSON_ID not in said
    assert "/insured/id:" in said


async def test_departments_receive_the_request_trace_context_unless_their_source_says_not(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    config = _config(departments, tmp_path, sources={CIVIL_AFFAIRS: {"trace_context": False}})

    spans = await _traced(config, lambda url: _ask(url, id=SAMPLE_PERSON_ID))

    request = _request_span(spans)
    calls = _department_spans(spans)
    for source in (PUBLIC_SECURITY, HRSS):
        [parent] = departments.counters[source].trace_parents
        version, trace_id, span_id, flags = parent.split("-")
        assert version == "00"
        assert int(flags, 16) & 1  # sampled
        assert trace_id == format(request.context.trace_id, "032x")
        # the department was called from the HTTP client span under the source's span
        [client] = [s for s in spans if s.context.span_id == int(span_id, 16)]
        assert _parent(client) == calls[source].context.span_id
    assert not departments.counters[CIVIL_AFFAIRS].trace_parents
    assert departments.counters[CIVIL_AFFAIRS].operations  # asked all the same, its span traced
    assert CIVIL_AFFAIRS in calls


async def test_a_failing_department_is_an_error_span_with_its_code_and_retries(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    config = _config(departments, tmp_path)
    await departments.stop(HRSS)

    spans = await _traced(config, lambda url: _ask(url, id=SAMPLE_PERSON_ID))

    failed = _department_spans(spans)[HRSS]
    attributes = failed.attributes or {}
    assert failed.status.status_code is StatusCode.ERROR
    assert attributes["onewindow.error"] == "SOURCE_UNAVAILABLE"
    assert attributes["onewindow.retries"] == 1  # retry.attempts is 2 by default
    assert attributes["onewindow.breaker"] == "closed"
    assert not failed.events  # the code, not the exception's message and traceback


async def test_tracing_is_off_by_default_and_then_sends_no_trace_context(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    config = demo_config(departments.variables, tmp_path)
    assert not config.tracing.enabled
    application = create_app(config)
    assert not [m for m in application.user_middleware if "OpenTelemetry" in m.cls.__name__]

    async with serve_asgi(application) as url:
        body = await _ask(url, id=SAMPLE_PERSON_ID)

    assert body["data"]["person"]["name"]
    for source in HTTP_SOURCES:
        assert departments.counters[source].operations, source
        assert not departments.counters[source].trace_parents, source


@contextlib.asynccontextmanager
async def _otlp_receiver() -> AsyncIterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A collector's OTLP/HTTP traces endpoint: protobuf requests decoded and kept."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        received.append(message)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    async with serve_asgi(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as url:
        yield url, received


async def test_spans_are_exported_over_otlp_http_to_a_collector(departments: DemoDepartments, tmp_path: Path) -> None:
    async with _otlp_receiver() as (collector, received):
        config = _config(departments, tmp_path, endpoint=f"{collector}/v1/traces", service_name="hall-7")
        async with serve_asgi(create_app(config)) as url:
            await _ask(url, id=SAMPLE_PERSON_ID)

    spans = [
        (resource.resource, span)
        for message in received
        for resource in message.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    services = {a.value.string_value for resource, _ in spans for a in resource.attributes if a.key == "service.name"}
    assert services == {"hall-7"}
    [request] = [span for _, span in spans if span.name == "POST /graphql"]
    sources = {a.value.string_value for _, span in spans for a in span.attributes if a.key == "onewindow.source"}
    assert sources == FOUR
    department_parents = {
        span.parent_span_id for _, span in spans if any(a.key == "onewindow.source" for a in span.attributes)
    }
    assert department_parents == {request.span_id}
    # besides the request's trace, only the start-up's: the gateway's own stores opened (their tables created), the
    # departments' descriptions read, the tables reflected
    [stores] = [span for _, span in spans if span.name == "open stores"]
    [opening] = [span for _, span in spans if span.name == "open sources"]
    assert {span.trace_id for _, span in spans} == {request.trace_id, stores.trace_id, opening.trace_id}
    assert SAMPLE_PERSON_ID.encode() not in b"".join(m.SerializeToString() for m in received)


async def test_the_audit_and_the_key_store_are_traced_under_the_request_without_a_value(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    config = _config(departments, tmp_path)
    assert config.auth.api_keys is not None
    async with ApiKeyStore(config.auth.api_keys) as store:
        _, key = await store.create(
            subject="hall-3-window-7", kind=PrincipalKind.SERVICE, roles=["case_handler"], scopes=["read:Person"]
        )
    key_id = key.split("_")[1]

    async def ask(url: str) -> None:
        async with httpx.AsyncClient(timeout=30, headers={"X-API-Key": key}) as client:
            query = {"query": FAN_OUT, "variables": {"id": SAMPLE_PERSON_ID}}
            response = await client.post(f"{url}/graphql", json=query)
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text

    spans = await _traced(config, ask)

    request = _request_span(spans)
    in_request = [s for s in spans if s.context.trace_id == request.context.trace_id]
    # the key store's lookup: a client span of the SQLAlchemy instrumentation, the key id a placeholder
    lookups = [s for s in in_request if "api_keys" in str((s.attributes or {}).get("db.statement", ""))]
    assert lookups, [s.name for s in in_request]
    for lookup in lookups:
        assert lookup.kind is SpanKind.CLIENT
        assert "?" in str((lookup.attributes or {})["db.statement"])
    # one disclosure: written under the request, committed under the write
    [write] = [s for s in spans if s.name == "audit write"]
    [commit] = [s for s in spans if s.name == "audit commit"]
    assert _parent(write) == request.context.span_id
    assert _parent(commit) == write.context.span_id
    assert (write.attributes or {})["onewindow.audit.entries"] == 1
    assert (commit.attributes or {})["onewindow.audit.entries"] == 1
    assert commit.status.status_code is StatusCode.UNSET
    # both engines are traced from the start: their tables checked and created, in the stores' span
    [stores] = [s for s in spans if s.name == "open stores"]
    started = [s for s in spans if s.context.trace_id == stores.context.trace_id]
    at_start = " ".join(str((s.attributes or {}).get("db.statement", "")) for s in started)
    assert "onewindow_audit_records" in at_start
    assert "onewindow_api_keys" in at_start
    said = _everything_said(spans)
    for secret in (SAMPLE_PERSON_ID, key_id, key, "hall-3-window-7"):
        assert secret not in said


def test_an_unknown_exporter_is_refused_naming_the_key(departments: DemoDepartments, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tracing\.exporter"):
        _config(departments, tmp_path, exporter="jaeger")
