"""The audit log the gateway writes to: group commit, fail closed, verify, prune, query.

A request hands its entries to :meth:`AuditLog.write` and may release personal data only once that returns: the
entries are then committed. One background writer drains the queue and commits everything waiting (up to
``batch_max`` entries) in one transaction, so a hundred concurrent requests share a few commits; each caller
awaits its own future. A caller whose entries are not committed within ``write_timeout`` gets
:class:`~gateway.errors.AuditUnavailable`, and the gateway withholds the data (fail closed).

An append is one trip to the database driver, not one per statement: on a SQLite file it runs on the event loop
while the disk is quick, in a worker thread of the log's own when it is not (:class:`SqliteFile`); on PostgreSQL
(asyncpg) it is one statement outside a transaction block (:class:`PostgresAppend`); on other databases it runs in
one greenlet (``AsyncConnection.run_sync``). The log also remembers where it left the chain, so an append normally
checks the head instead of reading it (see :func:`~auth.audit.store.append`). Reads, verification and pruning go
through the async engine.

With tracing on (:attr:`AuditLog.tracing`), a request's :meth:`~AuditLog.write` is an ``audit write`` span, and the
group commit that takes its entries an ``audit commit`` span under the first request's write, linked to the
others' (the number of entries as ``onewindow.audit.entries``); statements run through the engine are client spans
beneath them, with placeholders for values.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from auth.audit.chain import VerifyReport, utc_text
from auth.audit.config import AuditConfig
from auth.audit.entry import AuditEntry
from auth.audit.postgres import PostgresAppend
from auth.audit.query import AuditFilter, AuditRecord
from auth.audit.retention import PruneReport, prune_store
from auth.audit.sqlite import SqliteFile
from auth.audit.store import (
    ChainHead,
    ChainHeadMissing,
    ChainSealMismatch,
    DriverAppend,
    Links,
    append,
    check_seal,
    create_store,
    link,
    walk_store,
)
from auth.traced import StoreTracing
from gateway.errors import AuditUnavailable, ConfigError

__all__ = ["OPEN_TIMEOUT", "RECONNECT_BACKOFF", "AuditLog"]

OPEN_TIMEOUT = 30.0
"""How long :meth:`AuditLog.open` may take to reach the store and create its tables."""

RECONNECT_BACKOFF = (0.5, 30.0)
"""Seconds before the first, and at most between later, attempts to reach a store unreachable at start."""
_UNREACHABLE = (SQLAlchemyError, OSError, TimeoutError)

_GATHER_TURNS = 8
"""Turns of the event loop the writer lets pass between waking up and taking a batch."""

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    entries: tuple[AuditEntry, ...]
    committed: asyncio.Future[None]
    traced: object = None  # the writing request's span context, when tracing is on


def _refusal(conn: Connection, key: bytes | None) -> ChainHeadMissing | ChainSealMismatch | None:
    """Why this log must not append to the store (:func:`~auth.audit.store.check_seal`), or ``None``."""
    try:
        check_seal(conn, key)
    except (ChainHeadMissing, ChainSealMismatch) as exc:
        return exc
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer from the audit store"
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


class AuditLog:
    """The tamper-evident disclosure audit in a SQL database (SQLite, or PostgreSQL shared by several gateways).

    >>> async def example(entry: AuditEntry) -> None:
    ...     async with AuditLog(AuditConfig(url="sqlite+aiosqlite:///audit.db")) as audit:
    ...         await audit.write([entry])              # returns once committed, or raises AuditUnavailable
    ...         assert (await audit.verify()).ok
    ...         mine = await audit.access_log(entry.applicant)  # what the applicant may see

    ``engine`` shares an engine the caller owns: :meth:`aclose` disposes only an engine the log created (and traces
    only that one).
    """

    tracing: StoreTracing | None = None
    """Set before :meth:`open` when tracing is on (see the module's docstring); ``None`` otherwise."""

    def __init__(self, config: AuditConfig, *, engine: AsyncEngine | None = None) -> None:
        self.config = config
        self._given = engine
        self._owned: AsyncEngine | None = None
        self._engine: AsyncEngine | None = None
        self._sqlite: SqliteFile | None = None  # an owned SQLite file: appends bypass the async engine
        # where this log's last commit left the chain; None when unknown (not yet written, or a commit failed)
        self._head: ChainHead | None = None
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._last_error: str | None = None
        self._last_commit: dt.datetime | None = None
        self._transactions = 0
        self._abandoned: set[asyncio.Task[ChainHead]] = set()
        self._connecting: asyncio.Task[None] | None = None  # reconnecting to a store unreachable at start
        self._seal = config.seal  # the chain's seal key, or None
        # found when the log opened: the chain does not take this log's appends (another seal key, no head)
        self._refused: ChainHeadMissing | ChainSealMismatch | None = None
        self._driver: DriverAppend | None = None  # the usual append on the driver's cursor (see _append)
        self._postgres: PostgresAppend | None = None  # the usual append in one statement (asyncpg)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self, *, retry: bool = False) -> None:
        """Connect, create the tables that are missing and start the writer.

        A store that cannot be reached fails with :class:`~gateway.errors.ConfigError` naming ``auth.audit``; with
        ``retry`` (the gateway) the log opens unavailable instead: every write fails closed, :attr:`healthy` is
        false and :meth:`status` says why, while it reconnects in the background (jittered exponential backoff,
        :data:`RECONNECT_BACKOFF`) until the store answers or the log is closed.
        """
        options: dict[str, Any] = {}
        if self.config.db_schema is not None:
            options["schema_translate_map"] = {None: self.config.db_schema}
        if self._given is None:
            # no pre-ping: a commit that fails invalidates its connection instead (see _append)
            self._owned = create_async_engine(self.config.url)
            if self.tracing is not None:
                self.tracing.engine(self._owned)
            if SqliteFile.serves(self._owned.url):
                self._sqlite = SqliteFile(
                    self._owned.url, options, busy_timeout=self.config.write_timeout, key=self._seal
                )
        engine = self._given or self._owned
        assert engine is not None
        if options:
            engine = engine.execution_options(**options)
        if PostgresAppend.serves(engine):
            self._postgres = PostgresAppend(engine, options.get("schema_translate_map"))
        elif self._sqlite is None:  # SqliteFile and PostgresAppend have their own usual append
            self._driver = DriverAppend(engine.dialect, options.get("schema_translate_map"))
        self._closing = False
        try:
            await self._prepare(engine)
        except _UNREACHABLE as exc:
            if not retry:
                await self._dispose()
                raise ConfigError("auth.audit", f"cannot open the audit store: {_reason(exc)}") from exc
            self._unreachable(exc)
            self._connecting = asyncio.create_task(self._reconnect(engine), name="onewindow-audit-connect")
            return
        self._start(engine)

    async def _prepare(self, engine: AsyncEngine) -> None:
        async with asyncio.timeout(OPEN_TIMEOUT):
            async with engine.begin() as conn:
                await create_store(conn)
                # the chain's end only (the last record and checkpoint), not a walk: a wrong seal key shows now,
                # not at the first disclosure
                self._refused = await conn.run_sync(_refusal, self._seal)
            if self._sqlite is not None:
                await self._sqlite.open()

    def _start(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._last_error = None
        if self._refused is not None:
            self._last_error = _reason(self._refused)
            _log.error("audit: %s; personal data is withheld", self._last_error)
        # in a context of its own: the writer works for every request, and is part of none's trace (nor of the
        # start-up's, whose span would otherwise stay its parent)
        self._writer = asyncio.create_task(
            self._write_batches(), name="onewindow-audit-writer", context=contextvars.Context()
        )

    def _unreachable(self, exc: BaseException | None) -> None:
        error = f"cannot reach the audit store: {_reason(exc) if exc else 'no answer'}"
        level = logging.DEBUG if error == self._last_error else logging.ERROR  # once per reason, not per attempt
        self._last_error = error
        _log.log(level, "audit: %s; personal data is withheld until it answers", error)

    async def _reconnect(self, engine: AsyncEngine) -> None:
        initial, longest = RECONNECT_BACKOFF
        retrying = AsyncRetrying(
            wait=wait_random_exponential(multiplier=initial, max=longest),
            retry=retry_if_exception_type(_UNREACHABLE),
            before_sleep=lambda state: self._unreachable(state.outcome.exception() if state.outcome else None),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._prepare(engine)
        except Exception as exc:  # a bug: the log stays closed (fail closed), and says why
            self._last_error = f"the audit log cannot reconnect: {_reason(exc)}"
            _log.exception("audit: reconnecting to the audit store failed; personal data stays withheld")
            return
        self._connecting = None
        self._start(engine)
        _log.warning("audit: the audit store answers; disclosures are written again")

    async def aclose(self) -> None:
        """Commit what is waiting (each batch within ``write_timeout``), stop the writer, dispose an owned engine."""
        self._closing = True
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        writer, self._writer = self._writer, None
        if writer is not None:
            self._wakeup.set()
            _, running = await asyncio.wait({writer}, timeout=2 * self.config.write_timeout)
            if running:
                writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        while self._pending:
            self._fail(self._pending.popleft(), "the audit log was closed before the entries were committed")
        await asyncio.gather(*self._abandoned, return_exceptions=True)
        self._engine = None
        await self._dispose()

    async def _dispose(self) -> None:
        postgres, self._postgres = self._postgres, None
        if postgres is not None:
            await postgres.aclose()
        owned, self._owned = self._owned, None
        if owned is not None:
            await owned.dispose()
        sqlite, self._sqlite = self._sqlite, None
        if sqlite is not None:
            await sqlite.aclose(patience=2 * self.config.write_timeout)

    @property
    def healthy(self) -> bool:
        """Whether the last attempt to commit succeeded, and the store takes this log's appends (for ``/readyz``)."""
        return self._writer is not None and not self._closing and self._last_error is None and self._refused is None

    @property
    def seal_mismatch(self) -> bool:
        """Whether the chain's end, checked when the log opened, does not hash under this log's seal key: a fault of
        this process's configuration (or the store was tampered with), which no retry mends. Writes fail closed."""
        return isinstance(self._refused, ChainSealMismatch)

    def status(self) -> dict[str, Any]:
        """``status`` (``ok`` / ``unavailable``), ``last_error``, ``pending`` entries, committed ``transactions``;
        for a SQLite file also where its commits run (``commits_in``) and the last ``slow_commit``."""
        status: dict[str, Any] = {
            "status": "ok" if self.healthy else "unavailable",
            "last_error": self._last_error if self._writer or self._connecting else "the audit log is not open",
            "pending": sum(len(p.entries) for p in self._pending if not p.committed.done()),
            "transactions": self._transactions,
            "last_commit_at": None if self._last_commit is None else utc_text(self._last_commit),
        }
        sqlite = self._sqlite
        if sqlite is not None:
            slow = None
            if sqlite.slow_commit is not None:
                took, at = sqlite.slow_commit
                slow = {"ms": round(took * 1000), "at": utc_text(at)}
            status |= {"commits_in": sqlite.commits_in, "slow_commit": slow}
        return status

    async def write(self, entries: Sequence[AuditEntry]) -> None:
        """Return once ``entries`` are committed; raise :class:`AuditUnavailable` if that takes over ``write_timeout``.

        The entries of one call are committed together, in order, in one transaction (even beyond ``batch_max``).
        """
        if not entries:
            return
        for entry in entries:
            utc_text(entry.at)  # a timestamp without a zone is the caller's bug: refuse it here, not in the writer
        if self._writer is None or self._closing:
            raise AuditUnavailable(self._not_open())
        if self._refused is not None:
            raise AuditUnavailable(f"the audit store cannot commit: {_reason(self._refused)}")
        if self.tracing is None:
            await self._enqueue(entries, None)
            return
        with self.tracing.span("audit write", attributes={"onewindow.audit.entries": len(entries)}):
            await self._enqueue(entries, self.tracing.current())

    async def _enqueue(self, entries: Sequence[AuditEntry], traced: object) -> None:
        loop = asyncio.get_running_loop()
        pending = _Pending(tuple(entries), loop.create_future(), traced)
        self._pending.append(pending)
        self._wakeup.set()
        # The caller awaits the future the writer resolves (not a wrapper of it: each wrapper is one more turn of a
        # busy loop before the response leaves). On timeout the future fails, and when the request is cancelled it
        # is cancelled: either way the writer then skips the entries, unless they are already in a transaction,
        # whose outcome nobody can take back.
        timer = loop.call_later(self.config.write_timeout, self._expire, pending)
        try:
            await pending.committed
        finally:
            timer.cancel()

    def _expire(self, pending: _Pending) -> None:
        if pending.committed.done():
            return
        self._last_error = self._timed_out()
        message = f"the audit store did not commit within {self.config.write_timeout:g}s"
        pending.committed.set_exception(AuditUnavailable(message))

    async def _write_batches(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            for _ in range(_GATHER_TURNS):
                # requests finishing their work in these turns of the loop join this transaction: fewer commits for
                # the cost of a few turns (a timed wait would hold back every request in the batch by its length)
                await asyncio.sleep(0)
            batch = self._take_batch()
            if batch:
                await self._commit(batch)

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self._pending:
            pending = self._pending[0]
            if pending.committed.done():  # its caller gave up
                self._pending.popleft()
                continue
            if batch and size + len(pending.entries) > self.config.batch_max:
                break
            batch.append(self._pending.popleft())
            size += len(pending.entries)
        return batch

    async def _append(self, entries: list[AuditEntry], linked: Links | None) -> ChainHead:
        assert self._engine is not None
        if linked is not None and self._postgres is not None:
            if await self._postgres.run(linked):
                return linked.head
            linked = None  # another writer moved the head: chain the entries after where it is now
        async with self._engine.connect() as conn:
            try:
                async with conn.begin():
                    return await conn.run_sync(append, entries, linked, self._driver, self._seal)
            except (ChainHeadMissing, ChainSealMismatch):
                raise
            except BaseException:
                # the connection may be dead (the server restarted, the network dropped, the attempt was given up
                # while waiting for an answer): the pool must not hand it to the next commit
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await conn.invalidate()
                raise

    async def _commit(self, batch: list[_Pending]) -> None:
        entries = [entry for pending in batch for entry in pending.entries]
        # chained here, in the loop: the transaction then only checks that the head has not moved meanwhile
        linked = link(self._head, entries, self._seal) if self._head is not None else None
        self._head = None
        try:
            if self.tracing is None:
                self._head = await self._attempt(entries, linked)
            else:
                with self.tracing.span(
                    "audit commit",
                    attributes={"onewindow.audit.entries": len(entries)},
                    under=[pending.traced for pending in batch],
                ):
                    self._head = await self._attempt(entries, linked)
        except (SQLAlchemyError, OSError, TimeoutError, ChainHeadMissing, ChainSealMismatch) as exc:
            self._fail_batch(batch, exc)
            return
        except Exception as exc:  # a bug must not stop the writer: every waiting caller fails closed instead
            self._last_error = _reason(exc)
            _log.exception("audit: %d entries not committed", len(entries))
            for pending in batch:
                self._fail(pending, f"the audit log failed: {self._last_error}", exc)
            return
        self._last_error = None
        self._last_commit = dt.datetime.now(dt.UTC)
        self._transactions += 1
        for pending in batch:
            if not pending.committed.done():
                pending.committed.set_result(None)

    async def _attempt(self, entries: list[AuditEntry], linked: Links | None) -> ChainHead:
        """One append within ``write_timeout`` (:class:`TimeoutError` after it)."""
        if self._sqlite is not None:
            # awaited in place: a commit under way in the worker when the time is up goes on there, and whatever
            # its outcome, the callers are told that their entries are not committed
            async with asyncio.timeout(self.config.write_timeout):
                return await self._sqlite.append(entries, linked)
        attempt = asyncio.create_task(self._append(entries, linked))
        try:
            await asyncio.wait({attempt}, timeout=self.config.write_timeout)
        finally:
            if not attempt.done():
                self._abandon(attempt)
        if not attempt.done():
            raise TimeoutError
        return attempt.result()

    def _abandon(self, attempt: asyncio.Task[ChainHead]) -> None:
        # The next batch need not wait for the cancelled attempt: SQLAlchemy gives a dead connection seconds to close
        # gracefully.
        attempt.cancel()
        self._abandoned.add(attempt)
        attempt.add_done_callback(self._forget)

    def _timed_out(self) -> str:
        return f"no commit within {self.config.write_timeout:g}s"

    def _fail_batch(self, batch: list[_Pending], exc: BaseException) -> None:
        # The write timeout ran out: said as the callers' own timers say it (:meth:`_expire`), whichever comes first.
        self._last_error = self._timed_out() if isinstance(exc, TimeoutError) else _reason(exc)
        _log.warning("audit: %d entries not committed: %s", sum(len(p.entries) for p in batch), self._last_error)
        for pending in batch:
            self._fail(pending, f"the audit store cannot commit: {self._last_error}", exc)

    def _forget(self, attempt: asyncio.Task[ChainHead]) -> None:
        self._abandoned.discard(attempt)
        if not attempt.cancelled():
            attempt.exception()  # retrieved: the batch has already failed on the timeout

    @staticmethod
    def _fail(pending: _Pending, message: str, cause: BaseException | None = None) -> None:
        if pending.committed.done():
            return
        failure = AuditUnavailable(message)
        failure.__cause__ = cause
        pending.committed.set_exception(failure)

    def _connected(self) -> AsyncEngine:
        if self._engine is None:
            raise AuditUnavailable(self._not_open())
        return self._engine

    def _not_open(self) -> str:
        if self._connecting is not None and self._last_error is not None:
            return self._last_error
        return "the audit log is not open"

    async def query(self, filter: AuditFilter, *, limit: int = 50, before_seq: int | None = None) -> list[AuditRecord]:
        """The newest ``limit`` records matching ``filter``; pass the last seq returned as ``before_seq`` to page on."""
        stmt = filter.statement(limit=limit, before_seq=before_seq)
        try:
            async with self._connected().connect() as conn:
                rows = (await conn.execute(stmt)).all()
        except (SQLAlchemyError, OSError) as exc:
            raise AuditUnavailable(f"the audit store cannot be read: {_reason(exc)}") from exc
        return [AuditRecord.from_row(row) for row in rows]

    async def access_log(self, applicant: str, *, limit: int = 50, before_seq: int | None = None) -> list[AuditRecord]:
        """Who received ``applicant``'s data, newest first, as the applicant may see it (staff subjects masked
        unless ``mask_principals_for_citizens`` is off)."""
        found = await self.query(AuditFilter(applicant=applicant), limit=limit, before_seq=before_seq)
        if not self.config.mask_principals_for_citizens:
            return found
        return [record.for_citizen() for record in found]

    async def verify(self) -> VerifyReport:
        """Check the whole chain: checkpoints, every record's hash and link, the head."""
        try:
            async with self._connected().connect() as conn:
                if conn.dialect.name == "postgresql":
                    # one snapshot: a prune or append committed meanwhile must not look like a gap
                    await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    return await walk_store(conn, self._seal)
        except (SQLAlchemyError, OSError) as exc:
            raise AuditUnavailable(f"the audit store cannot be read: {_reason(exc)}") from exc

    async def prune(self, now: dt.datetime | None = None) -> PruneReport:
        """Delete the records older than ``retention`` and anchor them with a checkpoint, in one transaction."""
        if now is not None and now.tzinfo is None:
            raise ValueError(f"prune(now=...) must carry a time zone, got {now.isoformat()}")
        now = dt.datetime.now(dt.UTC) if now is None else now.astimezone(dt.UTC)
        cutoff = now - dt.timedelta(seconds=self.config.retention)
        try:
            async with self._connected().begin() as conn:
                return await prune_store(conn, cutoff=cutoff, now=now, key=self._seal)
        except ChainHeadMissing as exc:
            return PruneReport(cutoff=cutoff, at=now, pruned=0, refused=str(exc))
        except (SQLAlchemyError, OSError) as exc:
            raise AuditUnavailable(f"the audit store cannot be pruned: {_reason(exc)}") from exc
