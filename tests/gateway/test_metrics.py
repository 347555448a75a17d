from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.config import SourceConfig
from gateway.errors import SourceFault, SourceMaintenance, SourceUnavailable
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.resilience import CircuitOpen, SourceGuard


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
