"""Print the trace of one fan-out person query against the demo departments: the sample in docs/operations.md.

    .venv/bin/python scripts/sample_trace.py            # the span tree, then the hrss department span as exported
    .venv/bin/python scripts/sample_trace.py --latency 0.05

The demo departments and a gateway on the open demo configuration (demo.variants) are started on loopback with
tracing on, spans kept in memory (through the same redaction as an OTLP export); the person's name, marital status,
social insurance and degrees are asked once, then the gateway stops and its spans are printed, children under their
parent.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from demo.data import SAMPLE_PERSON_ID
from demo.departments import DemoDepartments
from demo.variants import demo_yaml
from gateway.app import create_app
from gateway.config import load_config
from gateway.serving import serve_asgi
from gateway.telemetry import Tracing

QUERY = """query($id: IdNumber!) {
  person(idNumber: $id) { name maritalStatus socialInsurance { insured } degrees { degree } }
}"""
SHOWN = ("onewindow.", "http.method", "http.url", "http.status_code", "db.system", "db.statement")


def _tree(spans: Sequence[ReadableSpan], request_trace: int) -> list[str]:
    mine = sorted((s for s in spans if s.context.trace_id == request_trace), key=lambda s: s.start_time or 0)
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in mine:
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)
    start = min(s.start_time or 0 for s in mine)
    lines = [f"trace {request_trace:032x}"]

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            begin = ((span.start_time or 0) - start) / 1e6
            took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            attributes = {k: v for k, v in (span.attributes or {}).items() if k.startswith(SHOWN)}
            shown = " ".join(f"{k}={' '.join(str(v).split())}" for k, v in attributes.items())
            kind = span.kind.name.lower()
            lines.append(f"{'  ' * depth}{span.name} [{kind}] +{begin:.1f}ms {took:.1f}ms {shown}".rstrip())
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


async def _run(latency: float) -> None:
    with tempfile.TemporaryDirectory(prefix="onewindow-trace-") as name:
        tmp = Path(name)
        async with DemoDepartments(tmp, latency=latency) as departments:

            def edit(data: dict[str, Any]) -> None:
                data["auth"]["audit"] = None
                data["tracing"] = {"enabled": True}

            config = load_config(demo_yaml(tmp, edit=edit), variables={**departments.variables, "DEMO_CACHE": "true"})
            exporter = InMemorySpanExporter()
            app = create_app(config, tracing=Tracing(config.tracing, exporter=exporter))
            async with serve_asgi(app) as url, httpx.AsyncClient(timeout=30) as client:
                answer = await client.post(
                    f"{url}/graphql", json={"query": QUERY, "variables": {"id": SAMPLE_PERSON_ID}}
                )
                answer.raise_for_status()
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.name == "POST /graphql"]
    print("\n".join(_tree(spans, request.context.trace_id)))
    [hrss] = [s for s in spans if (s.attributes or {}).get("onewindow.source") == "hrss"]
    print(hrss.to_json())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0, help="each department's latency, seconds")
    asyncio.run(_run(parser.parse_args().latency))


if __name__ == "__main__":
    main()
