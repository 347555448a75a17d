"""OpenTelemetry traces of the gateway: a span per request, a span per department call under it.

Off unless the configuration says ``tracing: {enabled: true}`` (:class:`~gateway.config.TracingConfig`); off, this
module is not even imported and nothing is instrumented. On, :class:`Tracing` owns one SDK tracer provider for the
app and wires OpenTelemetry's own instrumentations:

* the request span: ``opentelemetry-instrumentation-asgi`` around the whole app (:meth:`Tracing.middleware`),
  named by the route's template (``GET /prefill/{form}/{applicant}``), never by the path it was given;
* a span per department call (:meth:`Tracing.department_span`), made by the source layer for each read of a
  source: ``onewindow.source``, ``onewindow.operation``, ``onewindow.keys`` (how many), ``onewindow.cache`` (hit,
  miss, stale, off), ``onewindow.breaker`` (closed, open, half_open), ``onewindow.retries`` and, for a failure,
  ``onewindow.error`` (its code) with an error status;
* under it, the department's own client span: ``opentelemetry-instrumentation-httpx`` on the SOAP and REST
  adapters' clients, which also sends the W3C ``traceparent`` header to the department (a source with
  ``trace_context: false`` is sent none, and gets no client span); ``opentelemetry-instrumentation-sqlalchemy`` on
  the SQL adapters' engines (statements with placeholders, never their parameters);
* the gateway's own databases (:mod:`auth.traced`): the same SQLAlchemy instrumentation on the audit log's and the
  API-key store's engines, ``audit write`` under the request that discloses and ``audit commit`` under the first
  write of its group commit, linked to the others; their tables opened at start-up in an ``open stores`` trace.

Spans are exported over OTLP/HTTP in batches, off the request path (``exporter: otlp``), or printed
(``console``). What a span says never includes a personal value or credential: every name, attribute, event and
status leaves through :func:`gateway.logs.redact` -- the redaction the logs go through -- and query strings leave
with their values hidden, so a GraphQL ``GET``'s variables never become an attribute::

    tracing = Tracing(config.tracing)                   # create_app does this when tracing is enabled
    app = create_app(config, tracing=tracing)           # or inject one, with an in-memory exporter in tests
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as _sqlalchemy_instrumentation_version
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match

from gateway.config import SourceConfig, TracingConfig
from gateway.logs import redact, redact_target
from gateway.observe import DepartmentCall

__all__ = ["DEFAULT_SERVICE_NAME", "RedactingSpanExporter", "SourceInstrumentation", "Tracing"]

DEFAULT_SERVICE_NAME = "onewindow"
_SCOPE = "onewindow"


class RedactingSpanExporter(SpanExporter):
    """Hand spans on to ``exporter`` with every name, attribute, event and status description redacted."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([_redacted(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def _clean(value: AttributeValue) -> AttributeValue:
    if isinstance(value, str):
        return redact(redact_target(value)) if "?" in value else redact(value)
    if isinstance(value, Sequence) and value and isinstance(value[0], str):
        return [redact(str(item)) for item in value]
    return value


def _clean_all(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    return {key: _clean(value) for key, value in (attributes or {}).items()}


def _redacted(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_clean_all(span.attributes),
        events=[Event(event.name, _clean_all(event.attributes), event.timestamp) for event in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _exporter(config: TracingConfig) -> SpanExporter | None:
    if config.exporter == "none":
        return None
    if config.exporter == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # unset, the exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS...)
    return OTLPSpanExporter(endpoint=config.endpoint)


class SourceInstrumentation:
    """What a source's adapter instruments when it creates its clients (see :class:`adapters.base.Adapter`):
    its httpx client (a client span, and trace context sent, unless the source says ``trace_context: false``) and
    its SQLAlchemy engine."""

    def __init__(self, provider: TracerProvider, source: SourceConfig) -> None:
        self.provider = provider
        self.trace_context = source.trace_context

    def http_client(self, client: Any) -> None:
        if self.trace_context:
            HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def engine(self, engine: Any) -> None:
        _instrument_engine(self.provider, engine)


def _instrument_engine(provider: TracerProvider, engine: Any) -> None:
    """The SQLAlchemy instrumentation's engine tracer, on this engine alone (its instrumentor would wrap every engine
    the process creates); an AsyncEngine runs its statements on the synchronous engine inside it. Statements are
    recorded as compiled, their parameters as placeholders, never their values."""
    tracer = trace.get_tracer(
        "opentelemetry.instrumentation.sqlalchemy",
        _sqlalchemy_instrumentation_version,
        tracer_provider=provider,
    )
    usage = metrics.get_meter(_SCOPE).create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(tracer, getattr(engine, "sync_engine", engine), usage)  # type: ignore[no-untyped-call]


class Tracing:
    """The app's tracer provider and its instrumentations (see the module's docstring).

    ``exporter`` replaces the configured one (tests pass an in-memory exporter); spans reach it through a
    :class:`RedactingSpanExporter` in a batch processor, so :meth:`flush` before reading what it holds.
    """

    def __init__(self, config: TracingConfig, *, exporter: SpanExporter | None = None) -> None:
        self.config = config
        attributes: dict[str, AttributeValue] = {}
        if config.service_name is not None or "OTEL_SERVICE_NAME" not in os.environ:
            attributes[SERVICE_NAME] = config.service_name or DEFAULT_SERVICE_NAME
        self.provider = TracerProvider(
            resource=Resource.create(attributes),
            sampler=ParentBasedTraceIdRatio(config.sample_ratio),
            shutdown_on_exit=False,  # shut down with the app (shutdown)
        )
        chosen = exporter if exporter is not None else _exporter(config)
        self._processor: SpanProcessor | None = None
        if chosen is not None:
            self._processor = BatchSpanProcessor(RedactingSpanExporter(chosen))
            self.provider.add_span_processor(self._processor)
        self.tracer = self.provider.get_tracer(_SCOPE)

    def middleware(self, routes: Sequence[BaseRoute]) -> Middleware:
        """The request span, outermost: named ``METHOD /route/{template}``, query strings' values hidden."""

        def span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            method = str(scope.get("method", "HTTP"))
            return f"{method} {_template(routes, scope)}", {}

        def request_hook(span: trace.Span, scope: dict[str, Any]) -> None:
            if span.is_recording():
                span.set_attribute("http.route", _template(routes, scope))

        return Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=self.provider,
            default_span_details=span_details,
            server_request_hook=request_hook,
            exclude_spans=["receive", "send"],
        )

    def instrumentation(self, source: SourceConfig) -> SourceInstrumentation:
        return SourceInstrumentation(self.provider, source)

    @contextlib.contextmanager
    def department_span(self, call: DepartmentCall) -> Iterator[Callable[[DepartmentCall], None]]:
        """The span of one department call, current while it runs; the function given records how it ended."""
        attributes = {"onewindow.source": call.source, "onewindow.operation": call.operation}
        with self.tracer.start_as_current_span(
            f"{call.source} {call.operation}",
            attributes=attributes,
            record_exception=False,  # the error's code is recorded; its message and traceback are not wanted
            set_status_on_exception=False,
        ) as span:

            def ended(done: DepartmentCall) -> None:
                if not span.is_recording():
                    return
                span.set_attributes(
                    {
                        "onewindow.keys": done.keys,
                        "onewindow.cache": done.cache,
                        "onewindow.breaker": done.breaker,
                        "onewindow.retries": done.retries,
                    }
                )
                if done.error is not None:
                    span.set_attribute("onewindow.error", done.error)
                    span.set_status(Status(StatusCode.ERROR, done.error))

            yield ended

    def engine(self, engine: Any) -> None:
        """Trace the statements of one of the gateway's own databases (the audit log, the API-key store)."""
        _instrument_engine(self.provider, engine)

    def current(self) -> object:
        """The current span context, to parent work another task does for this one (:meth:`span`'s ``under``)."""
        return trace.get_current_span().get_span_context()

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
        under: Sequence[object] = (),
    ) -> Iterator[None]:
        """A span of the gateway's own (``open sources``, ``audit commit``), current while the block runs: under the
        first of ``under`` (span contexts from :meth:`current`) and linked to the others, else under the current
        span. An exception ends it with an error status naming the exception's type, never its message."""
        parents = [c for c in under if isinstance(c, trace.SpanContext) and c.is_valid]
        context = trace.set_span_in_context(trace.NonRecordingSpan(parents[0])) if parents else None
        with self.tracer.start_as_current_span(
            name,
            context=context,
            attributes=attributes,
            links=[trace.Link(c) for c in parents[1:]],
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    def trace_id(self) -> str | None:
        """The current trace's id (32 hex digits), for log lines; ``None`` outside a sampled span."""
        context = trace.get_current_span().get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def flush(self) -> None:
        """Export every span ended so far."""
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()


def _template(routes: Sequence[BaseRoute], scope: Mapping[str, Any]) -> str:
    """The template of the route ``scope`` goes to (``/prefill/{form}/{applicant}``), or ``(unmatched)``."""
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            return str(getattr(route, "path", "(unnamed)"))
    return "(unmatched)"
