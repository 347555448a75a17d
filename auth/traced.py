"""What traces the gateway's own databases -- the audit log and the API-key store -- when tracing is on.

:class:`~gateway.telemetry.Tracing` is one; the stores take it as an attribute set before they open, and never
import OpenTelemetry themselves (it is an optional extra)::

    audit.tracing = tracing             # create_app does this when tracing is on
    await audit.open()                  # its engine now gets a span per statement

A store hands the tracer the engine it creates (:meth:`StoreTracing.engine`) and wraps its own steps in spans
(:meth:`StoreTracing.span`). Work done later on behalf of a request, in a task of the store's own (the audit's group
commit), is parented by the span context the request had (:meth:`StoreTracing.current`), so that it shows under
the request. Spans carry counts and statements with placeholders, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["StoreTracing"]


class StoreTracing(Protocol):
    def engine(self, engine: Any) -> None:
        """Trace every statement ``engine`` (an ``AsyncEngine`` or ``Engine``) runs, as a client span."""

    def current(self) -> object:
        """The current span context: a parent for :meth:`span` in another task."""

    def span(
        self, name: str, *, attributes: Mapping[str, int | str] | None = None, under: Sequence[object] = ()
    ) -> AbstractContextManager[None]:
        """A span, current while the block runs: a child of ``under[0]`` and linked to the rest when given (work
        done for several requests at once), else of the current span. An exception sets an error status naming
        its type only."""
