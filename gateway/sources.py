"""The source layer: which departments provide a field, and asking them as little and as early as possible.

Resolvers never call an adapter. They ask a :class:`RequestSources` (one per GraphQL request) for
``(entity, key, field)``; it finds the providing sources in configuration order, loads through a DataLoader per
``(source, query)`` -- so fifty persons in one query cost one call to a department that can batch, and a bounded
number of concurrent calls to one that cannot -- maps the record into the unified value and remembers where it
came from (:class:`Provenance`).

A source that fails yields its typed :class:`~gateway.errors.SourceError` for the fields it provides; a later
source providing the same field is tried next. Every other field of the answer stands.

Who acts travels with every department call: a request's principal goes down :meth:`SourceSet.fetch` as an argument
and is set (:func:`~adapters.credentials.acting_as`) only around the adapter call itself. A source whose
credentials carry the acting principal (``hmac_headers``) is cached per that principal, as signed (``vary_by_caller``
is forced on at start-up): a load shared by concurrent requests (single-flight) or refreshed in the background
(stale-while-revalidate) is shared only by requests of the same principal, and is signed for it.

    sources = SourceSet(config, adapters)          # once, in the app's lifespan
    request = sources.for_request()                # per GraphQL request
    value = await request.value("Person", "11010519491231002X", "maritalStatus")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from strawberry.dataloader import DataLoader

from adapters.base import Adapter, Record
from adapters.credentials import ACTING_PRINCIPAL, acting_as, acting_scope, carries_acting_principal
from auth.principal import Principal
from cache import Fetched, RecordCache, Stamp
from gateway.config import CachePolicy, FieldMap, GatewayConfig, SourceConfig
from gateway.errors import (
    BadSourceData,
    BadUserInput,
    ConfigError,
    GatewayError,
    SourceError,
    SourceFault,
    SourceTimeout,
)
from gateway.mapping import read_field
from gateway.metrics import CacheResult, GatewayMetrics
from gateway.model import FieldSpec
from gateway.observe import CALLS_LOG, CacheOutcome, DepartmentCall, observed
from gateway.raw import RawField, raw_field
from gateway.resilience import SourceGuard
from gateway.validation import query_of

if TYPE_CHECKING:
    from gateway.telemetry import Tracing

__all__ = ["Fetched", "Page", "Provenance", "Provider", "RequestSources", "SourceSet", "once"]

logger = logging.getLogger("onewindow.sources")

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class Provider:
    """One source's way of providing one unified field."""

    source: str
    department: str
    query: str
    many_query: bool
    spec: FieldSpec
    fmap: FieldMap


class Provenance(NamedTuple):
    """Where a value came from: the field, the source and its department, when it was fetched, whether stale."""

    field: str
    source: str
    department: str
    fetched_at: dt.datetime
    stale: bool = False
    age: float = 0.0


class Resolved(NamedTuple):
    value: Any
    provenance: Provenance | None


@dataclass(frozen=True)
class Page:
    """One page of a listing: entity keys in order, and whether more follow."""

    keys: list[str]
    offset: int
    has_next: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SourceSet:
    """The configured sources with their open adapters, for the life of the app."""

    def __init__(
        self,
        config: GatewayConfig,
        adapters: Mapping[str, Adapter],
        *,
        metrics: GatewayMetrics | None = None,
        cache: RecordCache | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.adapters = dict(adapters)
        self.metrics = metrics
        self.cache = cache
        if cache is not None and metrics is not None:
            cache.on_coalesced = metrics.cache_coalesced  # single-flight, local and across processes, on /metrics
        self.tracing = tracing
        if tracing is not None:  # before open: adapters instrument the clients they create
            for name, adapter in self.adapters.items():
                adapter.instrumentation = tracing.instrumentation(config.sources[name])
        self.guards = {name: SourceGuard(name, src, metrics=metrics) for name, src in config.sources.items()}
        self._limits = {name: asyncio.Semaphore(src.max_concurrency) for name, src in config.sources.items()}
        self._opened: set[str] = set()
        self._open_lock = asyncio.Lock()
        self.open_errors: dict[str, SourceError] = {}
        self.catalog = config.catalog
        # Raw namespaces, once their departments have described their records (describe_raw).
        self.raw: list[RawField] = []
        self._providers: dict[tuple[str, str], list[Provider]] = {}
        for name, src in config.sources.items():
            for target, fmap in src.provides.items():
                entity, _, field_name = target.partition(".")
                query = query_of(src, fmap)
                provider = Provider(
                    source=name,
                    department=src.department,
                    query=query,
                    many_query=src.queries[query].many,
                    spec=self.catalog[entity].fields[field_name],
                    fmap=fmap,
                )
                self._providers.setdefault((entity, field_name), []).append(provider)
        self._policies = {
            (name, query): _query_policy(src, query) for name, src in config.sources.items() for query in src.queries
        }
        # Sources told who acts: what they answer may depend on it, and each call must be signed for its own caller.
        self.acting_sources = frozenset(
            name for name, src in config.sources.items() if carries_acting_principal(src.credentials)
        )

    async def open(self) -> None:
        """Open every adapter at start-up. A wrong configuration (``ConfigError``) stops the start; a department
        that is down only marks its source unavailable -- it is opened again on first use."""
        # traced, the start-up's calls (WSDLs, OpenAPI documents, reflected tables) are one trace, not one each
        with self.tracing.span("open sources") if self.tracing is not None else contextlib.nullcontext():
            results = await asyncio.gather(*(self._open(name) for name in self.adapters), return_exceptions=True)
        for name, result in zip(self.adapters, results, strict=True):
            if isinstance(result, SourceError):
                logger.warning("source %s is not available at start-up: %s", name, result)
                self.open_errors[name] = result
            elif isinstance(result, BaseException):
                raise result

    async def describe_raw(self) -> list[RawField]:
        """Ask each source with ``raw`` to describe its queries' records (after :meth:`open`) and provide them as
        ``raw.<source>.<query>`` fields. A source that could not be opened is left out (its namespace appears once
        the gateway starts with the department up); one that describes nothing is a configuration error."""
        found: list[RawField] = []
        for name, src in self.config.sources.items():
            if src.raw is None or name not in self._opened:
                if src.raw is not None:
                    logger.warning("source %s: raw namespace left out, the department was not reachable", name)
                continue
            for query in src.raw.queries or list(src.queries):
                shape = await self.adapters[name].describe(query)
                if not shape:
                    raise ConfigError(
                        f"sources.{name}.raw",
                        f"the department system describes no record shape for query {query!r} "
                        "(a REST source needs its openapi document)",
                    )
                field = raw_field(src.raw.entity, name, query, shape, many=src.queries[query].many)
                provider = Provider(name, src.department, query, field.spec.many, field.spec, field.fmap)
                self._providers.setdefault((field.entity, field.name), []).append(provider)
                found.append(field)
        self.raw = found
        return found

    async def _open(self, name: str) -> None:
        await self.adapters[name].open()
        self._opened.add(name)
        self.open_errors.pop(name, None)

    async def _ensure_open(self, name: str) -> None:
        if name in self._opened:
            return
        async with self._open_lock:
            if name not in self._opened:
                await self._open(name)

    async def aclose(self) -> None:
        await asyncio.gather(*(a.aclose() for a in self.adapters.values()), return_exceptions=True)
        if self.cache is not None:
            await self.cache.aclose()

    def providers(self, entity: str, field_name: str) -> list[Provider]:
        return self._providers.get((entity, field_name), [])

    def for_request(self, principal: Principal | None = None) -> RequestSources:
        """A request's view, with its deadline (``security.request_deadline`` from now), acting for ``principal``."""
        deadline = asyncio.get_running_loop().time() + self.config.security.request_deadline
        return RequestSources(self, deadline=deadline, principal=principal)

    async def fetch(
        self,
        source: str,
        query: str,
        keys: Sequence[str],
        *,
        deadline: float | None = None,
        scope: str | None = None,
        acting: Principal | None = None,
    ) -> dict[str, Fetched]:
        """Records for ``keys`` from the cache or the department. A department is asked within its concurrency cap
        (queueing up to ``deadline``, in loop time), maintenance windows, circuit breaker, retries and per-attempt
        timeout; only typed errors come out. ``scope`` is the caller, for sources whose answers depend on it;
        ``acting`` the principal a source that is told who acts is told, and then also the scope of its answers.

        Each read is one :class:`~gateway.observe.DepartmentCall`: a span when tracing is on, a line on
        ``onewindow.calls`` when that logger is enabled; neither costs anything when both are off."""
        if self.tracing is None and not CALLS_LOG.isEnabledFor(logging.INFO):
            return await self._fetch(source, query, keys, deadline, scope, acting, None)
        call = DepartmentCall(source, query, len(keys))
        with observed(call, self.tracing, lambda: self.guards[source].breaker.state.value):
            return await self._fetch(source, query, keys, deadline, scope, acting, call)

    async def _fetch(
        self,
        source: str,
        query: str,
        keys: Sequence[str],
        deadline: float | None,
        scope: str | None,
        acting: Principal | None,
        call: DepartmentCall | None,
    ) -> dict[str, Fetched]:
        adapter = self.adapters[source]
        acting = acting if source in self.acting_sources else None
        if source in self.acting_sources:
            scope = acting_scope(acting)  # shared, and cached, only for calls that would be signed alike

        async def department(missing: Sequence[str]) -> Mapping[str, Sequence[Record]]:
            async def read() -> Mapping[str, Sequence[Record]]:
                # set here, in whichever task runs the call (a shared load, a background refresh), for this call only
                with acting_as(acting):
                    await self._ensure_open(source)
                    return await adapter.fetch(query, missing)

            return await self._guarded(source, read, deadline, call)

        if self.cache is None:
            found = await department(keys)
            now = _now()
            return {key: Fetched(tuple(found.get(key, ())), now) for key in keys}
        policy = self._policies[(source, query)]
        answers = await self.cache.fetch(source, query, keys, policy, department, scope=scope)
        results: list[CacheResult] = [
            "stale" if fetched.stale else "hit" if fetched.cached else "miss" for fetched in answers.values()
        ]
        if self.metrics is not None:
            for result in results:
                self.metrics.cache_lookup(source, result)
        if call is not None:
            call.cache = _cache_outcome(results)
        return answers

    async def invalidate(self, source: str, key: str | None = None) -> int:
        """Drop cached answers of ``source`` (for one key, or all); with Redis every gateway process sees it."""
        if source not in self.config.sources:
            raise BadUserInput(f"no source named {source!r}")
        return 0 if self.cache is None else await self.cache.invalidate(source, key)

    async def search(
        self,
        source: str,
        query: str,
        filters: Mapping[str, Any],
        *,
        limit: int,
        offset: int,
        deadline: float | None = None,
        acting: Principal | None = None,
    ) -> list[Record]:
        adapter = self.adapters[source]
        acting = acting if source in self.acting_sources else None

        async def read() -> list[Record]:
            with acting_as(acting):
                await self._ensure_open(source)
                return await adapter.search(query, filters, limit=limit, offset=offset)

        return await self._guarded(source, read, deadline)

    async def _guarded(
        self, source: str, read: Callable[[], Awaitable[T]], deadline: float | None, call: DepartmentCall | None = None
    ) -> T:
        async def attempt() -> T:
            if call is not None:
                call.attempts += 1
            try:
                return await read()
            except GatewayError:
                raise
            except Exception as exc:  # an adapter bug must not take the request down with it
                logger.exception("adapter %s raised an untyped error", source)
                raise SourceFault(source, f"adapter error {type(exc).__name__}") from exc

        limit = self._limits[source]
        try:
            async with asyncio.timeout_at(deadline):
                await limit.acquire()
        except TimeoutError:
            raise SourceTimeout(source, "still queued for the department at the request deadline") from None
        try:
            return await self.guards[source].call(attempt, deadline=deadline)
        finally:
            limit.release()


@dataclass
class RequestSources:
    """The source layer as one GraphQL request sees it: its own DataLoaders and resolved values."""

    sources: SourceSet
    deadline: float | None = None
    # Who is asking, for sources whose answers depend on the caller (``cache.vary_by_caller``).
    scope: str = "anonymous"
    # Who acts, told to the departments that take it (signed headers). Unset, the request's ACTING_PRINCIPAL, read
    # in the request's own context when it first asks a department.
    principal: Principal | None = None
    # What an answer built from this request's values depends on (see cache.responses): the stamp of every record
    # read, and whether every record read was fresh from the cache (a department call, a stale value, an error or a
    # listing makes it false).
    stamps: list[Stamp] = field(default_factory=list)
    all_cached: bool = True
    _loaders: dict[tuple[str, str], DataLoader[str, Fetched]] = field(default_factory=dict)
    # What each loader's ``load`` answered, by (source, query, key): the same future for the request's life (the
    # loaders' caches are never cleared), found here in one look-up when a value is read again.
    _loads: dict[tuple[str, str, str], asyncio.Future[Fetched]] = field(default_factory=dict)
    _resolved: dict[tuple[str, ...], asyncio.Future[Resolved]] = field(default_factory=dict)

    def loader(self, source: str, query: str) -> DataLoader[str, Fetched]:
        loader = self._loaders.get((source, query))
        if loader is None:
            loader = self._loaders[(source, query)] = DataLoader(self._batch_fn(source, query))
        return loader

    def _batch_fn(self, source: str, query: str) -> Any:
        adapter = self.sources.adapters[source]

        async def load(keys: list[str]) -> list[Fetched | BaseException]:
            acting = self.acting()

            def fetch(wanted: list[str]) -> Awaitable[dict[str, Fetched]]:
                return self.sources.fetch(
                    source, query, wanted, deadline=self.deadline, scope=self.scope, acting=acting
                )

            if adapter.capabilities(query).batch:
                try:
                    found = await fetch(keys)
                except SourceError as exc:
                    return self._noted([exc] * len(keys))
                return self._noted([found[k] for k in keys])
            singles = await asyncio.gather(*(fetch([k]) for k in keys), return_exceptions=True)
            return self._noted(
                [r if isinstance(r, BaseException) else r[k] for k, r in zip(keys, singles, strict=True)]
            )

        return load

    def acting(self) -> Principal | None:
        """The principal this request acts for."""
        if self.principal is None:
            self.principal = ACTING_PRINCIPAL.get()
        return self.principal

    def _noted(self, results: list[Fetched | BaseException]) -> list[Fetched | BaseException]:
        for result in results:
            stamp = result.stamp if isinstance(result, Fetched) else None
            if stamp is None:
                self.all_cached = False
            else:
                self.stamps.append(stamp)
        return results

    async def resolve(
        self,
        entity: str,
        key: str,
        field_name: str,
        *,
        only: Sequence[str] | None = None,
        source: str | None = None,
    ) -> Resolved:
        """The unified value of one field with its provenance; raises the first source's error if none answers.
        ``only``: the sources the caller may receive this field from (the policy's choice; fixed per request).
        ``source``: that source's answer alone (a conflict check asks each provider), remembered apart."""
        if source is not None:
            only = [source] if only is None or source in only else []
            slot: tuple[str, ...] = (entity, key, field_name, source)
        else:
            slot = (entity, key, field_name)
        return await once(self._resolved, slot, lambda: self._resolve(entity, key, field_name, only))

    async def value(self, entity: str, key: str, field_name: str) -> Any:
        return (await self.resolve(entity, key, field_name)).value

    async def _resolve(self, entity: str, key: str, field_name: str, only: Sequence[str] | None) -> Resolved:
        while True:
            outcome = self._attempt(entity, key, field_name, only)
            if isinstance(outcome, Resolved):
                return outcome
            if isinstance(outcome, SourceError):
                raise outcome
            with contextlib.suppress(Exception):  # a failed load: the next attempt reads its error
                await outcome

    def _attempt(
        self, entity: str, key: str, field_name: str, only: Sequence[str] | None
    ) -> Resolved | SourceError | asyncio.Future[Fetched]:
        """One pass over the field's providers, in order, with what their loaders hold: the value (or the first
        source's error) once every provider it needs has answered, else the first load still under way (started
        here if need be)."""
        first_error: SourceError | None = None
        empty: Resolved | None = None
        for provider in self.sources.providers(entity, field_name):
            if only is not None and provider.source not in only:
                continue
            slot = (provider.source, provider.query, key)
            loading = self._loads.get(slot)
            if loading is None:
                started = self.loader(provider.source, provider.query).load(key)
                assert isinstance(started, asyncio.Future)
                loading = self._loads[slot] = started
            if not loading.done():
                return loading
            try:
                fetched = loading.result()
                value = read_field(
                    provider.source,
                    field_name,
                    provider.spec,
                    provider.fmap,
                    fetched.records,
                    many_query=provider.many_query,
                )
            except SourceError as exc:
                first_error = first_error or exc
                continue
            provenance = Provenance(
                field_name, provider.source, provider.department, fetched.fetched_at, fetched.stale, fetched.age
            )
            if value is None or value == []:
                empty = empty or Resolved(value, provenance if fetched.records else None)
                continue
            return Resolved(value, provenance)
        if first_error is not None:
            return first_error
        if empty is not None:
            return empty
        spec = self.sources.catalog.field(entity, field_name)
        return Resolved([] if spec is not None and spec.many else None, None)

    def _settle(self, entity: str, key: str, field_name: str, only: Sequence[str] | None) -> asyncio.Future[Any] | None:
        """Remember the field's value (or error) if it can be had without waiting; else what to wait for."""
        slot = (entity, key, field_name)
        memo = self._resolved.get(slot)
        if memo is not None:
            return None if memo.done() else memo
        outcome = self._attempt(entity, key, field_name, only)
        if isinstance(outcome, asyncio.Future):
            return outcome
        memo = self._resolved[slot] = asyncio.get_running_loop().create_future()
        if isinstance(outcome, Resolved):
            memo.set_result(outcome)
        else:
            memo.set_exception(outcome)
            memo.exception()  # retrieved here; whoever reads the field re-raises it
        return None

    def resolve_now(self, entity: str, key: str, field_name: str, *, only: Sequence[str] | None) -> Resolved | None:
        """:meth:`resolve` (without ``source``) when it needs no waiting: the value, or its error raised; ``None``
        while a department has yet to answer (its load is then under way)."""
        slot = (entity, key, field_name)
        memo = self._resolved.get(slot)
        if memo is None or not memo.done():
            if self._settle(entity, key, field_name, only) is not None:
                return None
            memo = self._resolved[slot]
        return memo.result()

    def settled(self, entity: str, key: str, field_name: str) -> Resolved | None:
        """The field's value if it is already resolved without error; nothing is started."""
        memo = self._resolved.get((entity, key, field_name))
        if memo is None or not memo.done() or memo.exception() is not None:
            return None
        return memo.result()

    async def resolve_many(self, entity: str, wanted: Sequence[tuple[str, str, Sequence[str] | None]]) -> None:
        """Resolve many ``(key, field, only)`` of ``entity`` ahead of their readers, with no task per value: each
        round starts every load still needed (one batch per loader) and waits for them together; a provider asked
        after another failed or was empty is the next round's. Errors are remembered for the readers."""
        waiting = list(wanted)
        while waiting:
            loads: dict[int, asyncio.Future[Any]] = {}
            left = []
            for key, field_name, only in waiting:
                load = self._settle(entity, key, field_name, only)
                if load is not None:
                    loads[id(load)] = load
                    left.append((key, field_name, only))
            if loads:
                await asyncio.wait(loads.values())
            waiting = left

    async def provenance(self, entity: str, key: str, fields: Sequence[str]) -> list[Provenance]:
        """Provenance of the given fields, in order; fields that failed or that no department holds are left out."""
        results = await asyncio.gather(
            *(self.resolve(entity, key, f) for f in fields if self.sources.providers(entity, f)),
            return_exceptions=True,
        )
        return [r.provenance for r in results if isinstance(r, Resolved) and r.provenance is not None]

    async def exists(self, entity: str, key: str, field_name: str) -> bool:
        """Whether the first source providing ``field_name`` holds a record for ``key``."""
        for provider in self.sources.providers(entity, field_name):
            fetched = await self.loader(provider.source, provider.query).load(key)
            return bool(fetched.records)
        return False

    async def search(self, entity: str, filters: Mapping[str, Any], *, first: int, after: str | None) -> Page:
        """List entity keys matching unified filters, a page at a time; primes the loaders with what it read."""
        self.all_cached = False  # a listing is asked of the department every time
        offset = decode_cursor(after) + 1 if after else 0
        for name, src in self.sources.config.sources.items():
            search = src.search.get(entity)
            if search is None:
                continue
            raw_filters = {
                search.filters[f]: self._raw_filter(name, entity, f, v) for f, v in filters.items() if v is not None
            }
            unknown = [f for f, v in filters.items() if v is not None and f not in search.filters]
            if unknown:
                raise BadUserInput(f"{entity} listing cannot filter by {', '.join(unknown)}")
            records = await self.sources.search(
                name,
                search.query,
                raw_filters,
                limit=first + 1,
                offset=offset,
                deadline=self.deadline,
                acting=self.acting(),
            )
            loader = self.loader(name, search.query)
            now = _now()
            keys: list[str] = []
            for record in records[:first]:
                raw_key = record.get(search.key) if isinstance(record, Mapping) else None
                if raw_key is None:
                    raise BadSourceData(name, f"a listed record has no key at {search.key}")
                key = str(raw_key)
                if not src.queries[search.query].many:
                    loader.prime(key, Fetched([record], now))
                keys.append(key)
            return Page(keys=keys, offset=offset, has_next=len(records) > first)
        raise BadUserInput(f"no source can list {entity}")

    def _raw_filter(self, source: str, entity: str, filter_name: str, value: Any) -> Any:
        """A unified filter value in the department's own code (the inverse of its code table)."""
        enum_value = getattr(value, "name", None)
        if enum_value is None:
            return value
        for provider in self.sources.providers(entity, filter_name):
            if provider.source == source and provider.fmap.codes:
                for raw, unified in provider.fmap.codes.items():
                    if unified == enum_value:
                        return raw
        return enum_value


async def once(memo: dict[K, asyncio.Future[T]], slot: K, compute: Callable[[], Awaitable[T]]) -> T:
    """``compute()`` for the first asker of ``slot``; later askers share its answer (or its error). The first asker
    computes in its own task: no task per slot, as tasks cost more than most lookups."""
    future = memo.get(slot)
    if future is not None:
        return await asyncio.shield(future)
    future = memo[slot] = asyncio.get_running_loop().create_future()
    try:
        result = await compute()
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved here; later askers re-raise it
        raise
    future.set_result(result)
    return result


def _cache_outcome(results: Sequence[CacheResult]) -> CacheOutcome:
    """One outcome for a read of several keys: stale if any was, a miss if any was asked of the department."""
    if "stale" in results:
        return "stale"
    return "miss" if "miss" in results or not results else "hit"


def _query_policy(source: SourceConfig, query: str) -> CachePolicy:
    """The source's cache policy for one query, tightened by the fields read from it: the shortest ``cache_ttl``
    wins, and one ``never_cache`` field keeps the whole query out of the cache."""
    fields = [f for f in source.provides.values() if query_of(source, f) == query]
    ttls = [f.cache_ttl for f in fields if f.cache_ttl is not None]
    policy = source.cache
    if carries_acting_principal(source.credentials) and not policy.vary_by_caller:
        policy = policy.model_copy(update={"vary_by_caller": True})  # the department's answer may depend on who acts
    if ttls:
        ttl = min(ttls) if policy.ttl is None else min(policy.ttl, *ttls)
        policy = policy.model_copy(update={"ttl": ttl})
    if any(f.never_cache for f in fields):
        policy = policy.model_copy(update={"never_cache": True})
    return policy


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset":
            raise ValueError(cursor)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise BadUserInput(f"{cursor!r} is not a cursor this gateway issued") from None
