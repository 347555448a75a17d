"""Probes that tell the truth: one real call to a department, with the gateway's own credentials, checked against
what the configuration reads from its answer.

A source with ``probe: {key, query}`` is asked ``query`` (its first query by default) for ``key``, a key the
department holds; every record path its ``provides`` read from that query (each ``value``, and the ``value`` of
each sub-field under ``fields``) must be in the answer. Missing paths are reported by name, never a value. A
source without ``probe:`` is only reached (:meth:`~adapters.base.Adapter.probe`)::

    report = await probe_source("hrss", config.sources["hrss"], adapter)
    report.ok, report.status, report.detail      # False, "missing_paths", "insured: missing in the answer: months"

:func:`source_readiness` is what ``/readyz`` says of one source: ``ready``, ``degraded``, ``unavailable``, or
``credentials_refused`` (the department refused the gateway's credentials at open or at the last call), with a hint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from adapters.base import Adapter, Record
from gateway.config import FieldMap, GatewayConfig, SourceConfig
from gateway.errors import GatewayError, SourceCredentialsRefused, SourceError
from gateway.resilience import SourceGuard

__all__ = [
    "PROBE_TIMEOUT",
    "ProbeReport",
    "ProbeStatus",
    "credentials_hint",
    "expected_paths",
    "missing_paths",
    "probe_all",
    "probe_source",
    "source_readiness",
]

PROBE_TIMEOUT = 10.0

ProbeStatus = Literal["ok", "reachable", "missing_paths", "key_not_held", "credentials_refused", "failed"]


@dataclass(frozen=True)
class ProbeReport:
    """What one probe found. ``detail`` names paths, queries and error codes, never a value or the probe key."""

    source: str
    status: ProbeStatus
    detail: str
    missing: tuple[str, ...] = ()
    code: str | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "reachable")


@dataclass(frozen=True)
class _Expected:
    """A path a provided field reads: ``base`` (an object field's own ``value``) then ``path`` inside it."""

    target: str
    path: str
    base: str | None = None

    @property
    def name(self) -> str:
        return f"{self.base}.{self.path}" if self.base else self.path


def _query_of(source: SourceConfig, fmap: FieldMap) -> str:
    return fmap.query if fmap.query is not None else next(iter(source.queries))


def _real(path: str | None) -> bool:
    return path is not None and path not in ("", ".")


def expected_paths(source: SourceConfig, query: str) -> list[_Expected]:
    """The record paths ``source``'s ``provides`` read from ``query``'s records, in configuration order.

    >>> from gateway.config import SourceConfig
    >>> src = SourceConfig.model_validate({"kind": "rest", "department": "D", "queries": {"q": {}},
    ...     "provides": {"Person.name": {"value": "XM"}, "Person.socialInsurance": {"value": "si",
    ...     "fields": {"months": {"value": "YS"}}}}})
    >>> [e.name for e in expected_paths(src, "q")]
    ['XM', 'si.YS']
    """
    many_query = source.queries[query].many
    found: list[_Expected] = []
    for target, fmap in source.provides.items():
        if _query_of(source, fmap) != query:
            continue
        if fmap.fields is None:
            paths = (fmap.value, fmap.kind.value if fmap.kind else None)
            found += [_Expected(target, path) for path in paths if path is not None and _real(path)]
            continue
        # An object field: in a query of many records each record is one object; otherwise ``value`` leads to it.
        base = None if many_query or not _real(fmap.value) else fmap.value
        for sub in fmap.fields.values():
            found += [_Expected(target, p, base) for p in _leaf_paths(sub)]
    return found


def _leaf_paths(fmap: FieldMap) -> Iterator[str]:
    if fmap.fields is None:
        if _real(fmap.value):
            assert fmap.value is not None
            yield fmap.value
        return
    for sub in fmap.fields.values():
        for path in _leaf_paths(sub):
            yield f"{fmap.value}.{path}" if _real(fmap.value) else path


_MISSING = object()


def _step(value: Any, part: str) -> Any:
    """One step of a path, as :func:`gateway.mapping.read_path` takes it, telling a missing key from a null."""
    if isinstance(value, Mapping):
        if part in value:
            return value[part]
        folded = part.casefold()  # PostgreSQL folds unquoted legacy column names to lower case
        for key, inner in value.items():
            if isinstance(key, str) and key.casefold() == folded:
                return inner
        return _MISSING
    if isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
        return value[int(part)] if int(part) < len(value) else _MISSING
    return _MISSING


def _present(value: Any, path: str) -> bool | None:
    """Whether ``path`` is in ``value``; ``None`` when it cannot be told (a null or an empty list on the way)."""
    parts = path.split(".")
    for index, part in enumerate(parts):
        if isinstance(value, list) and not part.isdigit():
            # a list of objects: the rest of the path is in each item
            answers = [_present(item, ".".join(parts[index:])) for item in value]
            told = [answer for answer in answers if answer is not None]
            return None if not told else all(told)
        value = _step(value, part)
        if value is _MISSING:
            return False
        if value is None:
            return None if index < len(parts) - 1 else True
    return True


def missing_paths(records: Sequence[Record], expected: Sequence[_Expected]) -> list[str]:
    """The names of ``expected`` paths that no record has (a null value counts as there; a path that no record
    can tell about, under a null or an empty list, is not reported).

    >>> missing_paths([{"XM": "...", "si": [{"YS": 1}]}], [_Expected("a", "XM"), _Expected("b", "YS", "si"),
    ...                                                     _Expected("c", "XB")])
    ['XB']
    """
    missing: list[str] = []
    for want in expected:
        answers = [_present(record, want.name) for record in records]
        if False in answers and True not in answers:
            missing.append(want.name)
    return list(dict.fromkeys(missing))


def credentials_hint(source: str) -> str:
    """What an operator does about refused credentials."""
    return f"the department refused the gateway's credentials: check sources.{source}.credentials"


async def probe_source(
    name: str, source: SourceConfig, adapter: Adapter, *, within: float = PROBE_TIMEOUT
) -> ProbeReport:
    """Probe one source through ``adapter`` (opened here, not closed): the configured ``probe`` call and its
    paths, or only reaching the department when the source has no ``probe``."""
    started = time.perf_counter()

    def report(status: ProbeStatus, detail: str, **extra: Any) -> ProbeReport:
        elapsed = (time.perf_counter() - started) * 1000
        return ProbeReport(name, status, detail, elapsed_ms=elapsed, **extra)

    try:
        async with asyncio.timeout(within):
            if source.probe is None:
                return report("reachable", await adapter.probe())
            query = source.probe.query or next(iter(source.queries))
            if query not in source.queries:
                return report("failed", f"sources.{name}.probe.query: no query named {query!r}", code="CONFIG_ERROR")
            await adapter.open()
            records = (await adapter.fetch(query, [source.probe.key])).get(source.probe.key, [])
    except TimeoutError:
        return report("failed", f"SOURCE_TIMEOUT no answer within {within:g}s", code="SOURCE_TIMEOUT")
    except SourceCredentialsRefused as exc:
        return report("credentials_refused", f"{exc.code} {credentials_hint(name)}", code=exc.code)
    except GatewayError as exc:
        return report("failed", f"{exc.code} {exc.message}", code=exc.code)
    if not records:
        return report(
            "key_not_held",
            f"{query}: the department does not hold the key at sources.{name}.probe.key",
            code="KEY_NOT_HELD",
        )
    missing = missing_paths(records, expected_paths(source, query))
    if missing:
        return report("missing_paths", f"{query}: missing in the answer: {', '.join(missing)}", missing=tuple(missing))
    count = len(expected_paths(source, query))
    return report("ok", f"{query}: {count} path{'s' if count != 1 else ''} present")


async def probe_all(
    config: GatewayConfig, adapters: Mapping[str, Adapter], *, within: float = PROBE_TIMEOUT
) -> dict[str, ProbeReport]:
    """Probe every source at once, closing each adapter after its probe."""

    async def one(name: str) -> ProbeReport:
        try:
            return await probe_source(name, config.sources[name], adapters[name], within=within)
        finally:
            await adapters[name].aclose()

    reports = await asyncio.gather(*(one(name) for name in adapters))
    return dict(zip(adapters, reports, strict=True))


def source_readiness(name: str, guard: SourceGuard, open_error: SourceError | None) -> dict[str, Any]:
    """One source's entry in ``/readyz``: ``credentials_refused`` (at open, or the last call, with a hint),
    ``unavailable`` (not opened), ``degraded`` (breaker not closed) or ``ready``; with the guard's status."""
    status = guard.status()
    last = guard.last_error[0] if guard.last_error is not None else None
    refused = open_error if isinstance(open_error, SourceCredentialsRefused) else None
    if refused is None and isinstance(last, SourceCredentialsRefused) and guard.breaker.consecutive_failures:
        refused = last  # the last call failed, and this is how
    if refused is not None:
        return {"status": "credentials_refused", "error": str(refused), "hint": credentials_hint(name), **status}
    if open_error is not None:
        return {"status": "unavailable", "error": str(open_error), **status}
    if status["breaker"] != "closed":
        return {"status": "degraded", **status}
    return {"status": "ready", **status}
