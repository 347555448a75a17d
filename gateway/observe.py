"""What each department call was, for its trace span and its log line.

:meth:`gateway.sources.SourceSet.fetch` describes every read it makes of a source -- through the cache or from the
department -- as a :class:`DepartmentCall`, inside :func:`observed`: one span (when tracing is on, see
:mod:`gateway.telemetry`) and one line on the ``onewindow.calls`` logger (when it is enabled)::

    call = DepartmentCall("hrss", "insured", keys=1)
    with observed(call, tracing, lambda: "closed"):
        call.attempts += 1            # the source layer counts the attempts it makes
        call.cache = "miss"

The line carries the request's id (:data:`REQUEST_ID`, set per request by
:class:`~gateway.middleware.request_log.RequestLog`), never a key: how many keys were asked, not which.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.telemetry import Tracing

__all__ = ["CALLS_LOG", "REQUEST_ID", "CacheOutcome", "DepartmentCall", "observed"]

CALLS_LOG = logging.getLogger("onewindow.calls")
REQUEST_ID: ContextVar[str | None] = ContextVar("onewindow_request_id", default=None)
"""The gateway's id of the request being served (see :mod:`gateway.middleware.request_id`), for log lines."""

CacheOutcome = Literal["hit", "miss", "stale", "off"]


@dataclass
class DepartmentCall:
    """One read of a source: which, how many keys, the cache's outcome, the attempts made and how it ended.

    >>> call = DepartmentCall("hrss", "insured", keys=2, attempts=2, error="SOURCE_TIMEOUT")
    >>> call.retries, call.outcome
    (1, 'SOURCE_TIMEOUT')
    """

    source: str
    operation: str
    keys: int
    cache: CacheOutcome = "off"
    attempts: int = 0
    error: str | None = None
    breaker: str = "closed"
    duration_ms: float = 0.0

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def outcome(self) -> str:
        """``ok``, or the error code of the failure (``SOURCE_TIMEOUT``, ``CIRCUIT_OPEN``...)."""
        return self.error or "ok"


@contextlib.contextmanager
def observed(call: DepartmentCall, tracing: Tracing | None, breaker: Callable[[], str]) -> Iterator[DepartmentCall]:
    """Time ``call`` and report it when the block ends: its span ends, its log line is written. ``breaker`` tells
    the source's circuit breaker state at the end."""
    started = time.perf_counter()
    span = tracing.department_span(call) if tracing is not None else contextlib.nullcontext()
    with span as recorder:
        try:
            yield call
        except GatewayError as exc:
            call.error = exc.code
            raise
        except BaseException as exc:  # cancelled with its request, or an adapter bug the guard let through
            call.error = type(exc).__name__
            raise
        finally:
            call.duration_ms = (time.perf_counter() - started) * 1000
            call.breaker = breaker()
            if recorder is not None:
                recorder(call)
            if CALLS_LOG.isEnabledFor(logging.INFO):
                _log(call, tracing)


def _log(call: DepartmentCall, tracing: Tracing | None) -> None:
    level = logging.INFO if call.error is None else logging.WARNING
    CALLS_LOG.log(
        level,
        "%s %s %s cache=%s retries=%d %.1fms",
        call.source,
        call.operation,
        call.outcome,
        call.cache,
        call.retries,
        call.duration_ms,
        extra={
            "request_id": REQUEST_ID.get(),
            "source": call.source,
            "operation": call.operation,
            "keys": call.keys,
            "outcome": call.outcome,
            "cache": call.cache,
            "retries": call.retries,
            "breaker": call.breaker,
            "duration_ms": round(call.duration_ms, 2),
            "trace_id": tracing.trace_id() if tracing is not None else None,
        },
    )
