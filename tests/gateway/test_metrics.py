from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from demo.data import SAMPLE_PERSON_ID
from demo.departments import HRSS, DemoDepartments
from demo.variants import DEMO_OPERATOR
from gateway.app import create_app
from gateway.config import SourceConfig
from gateway.errors import SourceFault, SourceMaintenance, SourceUnavailable
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.resilience import CircuitOpen, SourceGuard
from gateway.serving import serve_asgi
from tests.demo_config import demo_config

PERSON = """query($id: IdNumber!) { person(idNumber: $id) { name socialInsurance { insured } } }"""


def source_config(**overrides: Any) -> SourceConfig:
    data: dict[str, Any] = {
        "kind": "rest",
        "department": "Civil Affairs Bureau",
        "queries": {"person": {}},
        "provides": {"Person.name": {"query": "person", "value": "XM"}},
        "retry": {"attempts": 2, "backoff": "1ms", "max_backoff": "1ms"},
        "breaker": {"failures": 3},
    }
    data.update(overrides)
    return SourceConfig.model_validate(data)


async def answer() -> str:
    return "answer"


async def refused() -> str:
    raise SourceUnavailable("civil", "connection refused")


async def fault() -> str:
    raise SourceFault("civil", "HTTP 500")


async def test_guard_records_calls_latency_retries_and_breaker_state() -> None:
    metrics = GatewayMetrics()
    guard = SourceGuard("civil", source_config(), metrics=metrics)
    assert b'onewindow_source_breaker_state{source="civil"} 0.0' in metrics.exposition()
    await guard.call(answer, deadline=None)
    with pytest.raises(SourceFault):
        await guard.call(fault, deadline=None)
    with pytest.raises(SourceUnavailable):
        await guard.call(refused, deadline=None)  # two attempts: the breaker opens on the second
    with pytest.raises(CircuitOpen):
        await guard.call(answer, deadline=None)
    text = metrics.exposition().decode()
    for sample in [
        'onewindow_source_calls_total{outcome="ok",source="civil"} 1.0',
        'onewindow_source_calls_total{outcome="SOURCE_FAULT",source="civil"} 1.0',
        'onewindow_source_calls_total{outcome="SOURCE_UNAVAILABLE",source="civil"} 2.0',
        'onewindow_source_calls_total{outcome="CIRCUIT_OPEN",source="civil"} 1.0',
        'onewindow_source_retries_total{source="civil"} 1.0',
        'onewindow_source_call_seconds_count{source="civil"} 4.0',  # refusals cost no latency
        'onewindow_source_breaker_state{source="civil"} 2.0',
    ]:
        assert sample in text


async def test_maintenance_refusals_are_counted() -> None:
    metrics = GatewayMetrics()
    always = {"weekly": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "24:00"}]}
    guard = SourceGuard("civil", source_config(maintenance=always), metrics=metrics)
    with pytest.raises(SourceMaintenance):
        await guard.call(answer, deadline=None)
    assert b'onewindow_source_calls_total{outcome="SOURCE_MAINTENANCE",source="civil"} 1.0' in metrics.exposition()


def test_cache_and_graphql_counters() -> None:
    metrics = GatewayMetrics()
    metrics.cache_lookup("civil", "hit")
    metrics.cache_lookup("civil", "hit")
    metrics.cache_lookup("civil", "stale")
    metrics.graphql_request("ok")
    text = metrics.exposition().decode()
    assert 'onewindow_cache_lookups_total{result="hit",source="civil"} 2.0' in text
    assert 'onewindow_cache_lookups_total{result="stale",source="civil"} 1.0' in text
    assert 'onewindow_graphql_requests_total{outcome="ok"} 1.0' in text


def test_each_app_has_its_own_registry() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()  # no "duplicated timeseries": nothing is global
    first.graphql_request("ok")
    assert b'onewindow_graphql_requests_total{outcome="ok"} 1.0' in first.exposition()
    assert b"onewindow_graphql_requests_total{" not in second.exposition()


async def test_metrics_endpoint_serves_the_text_exposition() -> None:
    metrics = GatewayMetrics()
    metrics.source_call("civil", "ok", 0.02)
    app = Starlette(routes=[Route("/metrics", metrics_endpoint(metrics.registry))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert 'onewindow_source_call_seconds_bucket{le="0.025",source="civil"} 1.0' in response.text


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of the counter ``name`` in an exposition, by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_concurrent_identical_requests_show_their_coalesced_loads_on_metrics(tmp_path: Path) -> None:
    """Ten identical person queries at once against departments that take a while to answer: the gateway asks
    each department once, and every other lookup of the key joined that load -- as /metrics shows."""
    async with DemoDepartments(tmp_path, latency=0.2) as departments:
        config = demo_config(departments.variables, tmp_path)
        async with serve_asgi(create_app(config)) as url, httpx.AsyncClient(timeout=30) as client:
            query = {"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID}}
            answers = await asyncio.gather(*(client.post(f"{url}/graphql", json=query) for _ in range(10)))
            assert all(a.status_code == 200 and "errors" not in a.json() for a in answers)
            exposition = (await client.get(f"{url}/metrics", headers=DEMO_OPERATOR)).text

    assert departments.counters[HRSS].total == 1
    coalesced = samples(exposition, "onewindow_cache_coalesced_total")
    lookups = samples(exposition, "onewindow_cache_lookups_total")
    joined = coalesced[(("load", "local"), ("source", HRSS))]
    assert joined >= 1
    # each of the ten lookups loaded the key, joined that load, or found what it stored
    hits = lookups.get((("result", "hit"), ("source", HRSS)), 0.0)
    assert lookups[(("result", "miss"), ("source", HRSS))] == 1 + joined
    assert 1 + joined + hits == 10
    assert not [labels for labels in coalesced if ("load", "remote") in labels]  # one process, a memory cache
