"""Prometheus metrics for one gateway app, in the app's own registry (nothing registered at import time).

    metrics = GatewayMetrics()                      # in create_app
    guard = SourceGuard(name, source_config, metrics=metrics)
    routes.append(Route("/metrics", metrics_endpoint(metrics.registry)))

Exposed series::

    onewindow_source_calls_total{source, outcome}       outcome: ok, SOURCE_TIMEOUT, ..., CIRCUIT_OPEN
    onewindow_source_retries_total{source}
    onewindow_source_call_seconds{source}               histogram of department call latency
    onewindow_source_breaker_state{source}              0 closed, 1 half-open, 2 open
    onewindow_cache_lookups_total{source, result}       result: hit, miss, stale
    onewindow_cache_coalesced_total{source, load}       keys answered by a load already under way; load: local
                                                        (in this process), remote (another process's, Redis)
    onewindow_graphql_requests_total{outcome}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from cache.store import CoalescedLoad
    from gateway.resilience import BreakerState

__all__ = ["LATENCY_BUCKETS", "CacheResult", "GatewayMetrics", "metrics_endpoint"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Department call latency buckets, in seconds: from a local cache-like answer to a timeout."""

CacheResult = Literal["hit", "miss", "stale"]

_BREAKER_GAUGE = {"closed": 0, "half_open": 1, "open": 2}


class GatewayMetrics:
    """The gateway's counters, histogram and gauges, registered in ``registry`` (a new one by default).

    >>> metrics = GatewayMetrics()
    >>> metrics.source_call("civil_affairs", "ok", 0.012)
    >>> b'onewindow_source_calls_total{outcome="ok",source="civil_affairs"} 1.0' in metrics.exposition()
    True
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self._calls = Counter(
            "onewindow_source_calls",
            "Calls to department systems, by source and outcome code.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._retries = Counter(
            "onewindow_source_retries", "Retries of department calls, by source.", ["source"], registry=self.registry
        )
        self._latency = Histogram(
            "onewindow_source_call_seconds",
            "Latency of department calls, by source.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._breaker = Gauge(
            "onewindow_source_breaker_state",
            "Circuit breaker state by source: 0 closed, 1 half-open, 2 open.",
            ["source"],
            registry=self.registry,
        )
        self._cache = Counter(
            "onewindow_cache_lookups",
            "Record cache lookups, by source and result (hit, miss, stale).",
            ["source", "result"],
            registry=self.registry,
        )
        self._coalesced = Counter(
            "onewindow_cache_coalesced",
            "Record cache keys answered by a load already under way (single-flight), by source and whose load: "
            "local (in this process) or remote (another process's, through Redis).",
            ["source", "load"],
            registry=self.registry,
        )
        self._responses = Counter(
            "onewindow_response_cache_lookups",
            "Whole-answer cache lookups, by result (hit, miss, expired, changed).",
            ["result"],
            registry=self.registry,
        )
        self._graphql = Counter(
            "onewindow_graphql_requests", "GraphQL requests, by outcome.", ["outcome"], registry=self.registry
        )
        # Each series' child once looked up (prometheus_client's labels() checks the values and takes a lock on
        # every call); series are never removed, so a child stays the one the metric holds.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _series(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, in the order of the metric's label names."""
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[(metric, values)] = metric.labels(*values)
        return child

    def source_call(self, source: str, outcome: str, seconds: float | None = None) -> None:
        """One call (or refusal) of a department; ``seconds`` only when the department was actually called."""
        self._series(self._calls, source, outcome).inc()
        if seconds is not None:
            self._series(self._latency, source).observe(seconds)

    def source_retry(self, source: str) -> None:
        self._series(self._retries, source).inc()

    def breaker_state(self, source: str, state: BreakerState) -> None:
        self._series(self._breaker, source).set(_BREAKER_GAUGE[state.value])

    def cache_lookup(self, source: str, result: CacheResult) -> None:
        self._series(self._cache, source, result).inc()

    def cache_coalesced(self, source: str, load: CoalescedLoad) -> None:
        """One key of ``source`` answered by a load this request did not start (:attr:`RecordCache.on_coalesced`)."""
        self._series(self._coalesced, source, load).inc()

    def response_cache(self, result: str) -> None:
        self._series(self._responses, result).inc()

    def graphql_request(self, outcome: str) -> None:
        """One GraphQL request; ``outcome`` such as ``ok``, ``partial`` (some errors) or an error code."""
        self._series(self._graphql, outcome).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving ``registry`` in the Prometheus text format: ``Route("/metrics", ...)``."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
