"""Appends to an audit store in a SQLite file, off the async engine: on the event loop while the disk is quick.

:class:`~auth.audit.log.AuditLog` uses :class:`SqliteFile` for an ``sqlite+aiosqlite`` database file; reads,
verification and pruning still go through the async engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import PoolProxiedConnection

from auth.audit.entry import AuditEntry
from auth.audit.store import ChainHead, DriverAppend, Links, append

__all__ = ["SLOW_COMMIT", "WORKER_SPELL", "SqliteFile"]

SLOW_COMMIT = 0.05
"""Seconds: a commit on the event loop that takes longer sends the commits after it to the worker thread."""
WORKER_SPELL = 60.0
"""Seconds the commits stay in the worker after a slow one, before the event loop tries again."""

_T = TypeVar("_T")
_log = logging.getLogger("onewindow.audit")


def _append_committed(engine: Engine, entries: list[AuditEntry], linked: Links | None, key: bytes | None) -> ChainHead:
    with engine.begin() as conn:
        return append(conn, entries, linked, key=key)


def _busy_code(exc: BaseException | None) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _busy(exc: OperationalError) -> bool:
    return _busy_code(exc.orig)


class SqliteFile:
    """Appends to a SQLite database file: on the event loop, on a connection that never waits for a lock.

    The file is put in WAL mode (it stays so): a commit then appends the changed pages to the log and syncs it once,
    and readers (verify, queries) no longer block the writer. An append is two driver calls compiled once
    (:class:`~auth.audit.store.DriverAppend`) and the commit, on a connection kept open from one append to the next.

    The commit -- the write and sync of the log -- runs on the event loop too. On a local disk it takes about a
    millisecond (four concurrent requests share it on the identity benchmark), and handing it to a thread costs the
    loop more than that: the thread takes the GIL back from a busy loop two or three times per commit. That was
    measured: the identity benchmark's ratio to the audit off went from about 0.85 to 0.88, its rounds far steadier. A
    commit slower than :data:`SLOW_COMMIT` says the disk is slow, and a slow disk must not hold up the requests that
    wait for no audit: the commits after it run in a worker thread of the log's own for :data:`WORKER_SPELL`, then
    the loop tries again. The whole append runs in that worker, through SQLAlchemy, waiting for the lock up to
    ``busy_timeout``, when another process holds the write lock or has moved the chain head since this log's last
    commit, when the log does not know the head (its first append, or after a failure), and for every append to a
    file left in rollback journal mode (another process held it busy when this one opened it).
    """

    def __init__(self, url: URL, options: dict[str, Any], busy_timeout: float, key: bytes | None = None) -> None:
        self._key = key  # the chain's seal key
        url = url.set(drivername="sqlite+pysqlite")
        waits = {} if "timeout" in url.query else {"timeout": busy_timeout}
        self._engine = create_engine(url, connect_args=waits).execution_options(**options)
        self._loop_engine = create_engine(url, connect_args={"timeout": 0}).execution_options(**options)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="onewindow-audit")
        self._driver = DriverAppend(self._loop_engine.dialect, options.get("schema_translate_map"))
        self._staging = False
        self._connection: PoolProxiedConnection | None = None  # the loop's, kept from one append to the next
        self._committing = False  # a commit on it is under way in the worker (perhaps given up by the log)
        self._worker_until = 0.0  # commits go to the worker until then (monotonic clock), after a slow one
        self.slow_commit: tuple[float, dt.datetime] | None = None  # the last commit over SLOW_COMMIT: seconds, when

    @staticmethod
    def serves(url: URL) -> bool:
        """Whether ``url`` is an aiosqlite database file (an in-memory database would be another one per engine)."""
        if url.drivername != "sqlite+aiosqlite":
            return False
        database = url.database or ":memory:"
        return url.query.get("mode") != "memory" and not database.startswith((":memory:", "file::memory:"))

    def _in_thread(self, function: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        return asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def open(self) -> None:
        self._staging = await self._in_thread(self._write_ahead) == "wal"

    def _write_ahead(self) -> str:
        """Switch to WAL mode; the mode the file is in afterwards."""
        try:
            with self._engine.connect() as conn:
                return str(conn.exec_driver_sql("PRAGMA journal_mode=WAL").scalar())
        except OperationalError as exc:
            if not _busy(exc):
                raise
            return "unchanged"

    async def append(self, entries: list[AuditEntry], linked: Links | None) -> ChainHead:
        """Append and commit. Cancelled while the worker commits, the commit goes on there (its outcome unknown to
        the caller) and the next append waits for it in the worker's queue."""
        if self._staging and linked is not None and not self._committing and await self._staged(linked):
            return linked.head
        return await self._in_thread(_append_committed, self._engine, entries, linked, self._key)

    async def _staged(self, linked: Links) -> bool:
        """The statements on the event loop, and the driver's commit there too unless a slow one sent commits to the
        worker; ``False`` (nothing written) when another process holds the lock or moved the head since this log's
        last commit."""
        if self._connection is None:
            self._connection = self._loop_engine.raw_connection()
        connection = self._connection
        cursor = connection.cursor()
        try:
            if not self._driver.run(cursor, linked):
                connection.rollback()
                return False
        except sqlite3.Error as exc:
            self._drop(connection)
            if _busy_code(exc):
                return False
            raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
        except BaseException:
            self._drop(connection)
            raise
        finally:
            cursor.close()
        self._committing = True
        try:
            if time.monotonic() >= self._worker_until:
                self._commit_here(connection)
            else:
                await self._in_thread(self._commit, connection)
        except sqlite3.Error as exc:
            self._drop(connection)
            raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc
        except BaseException:
            self._drop(connection)
            raise
        return True

    def _commit_here(self, connection: PoolProxiedConnection) -> None:
        started = time.monotonic()
        self._commit(connection)
        took = time.monotonic() - started
        if took > SLOW_COMMIT:
            self._worker_until = time.monotonic() + WORKER_SPELL
            self.slow_commit = (took, dt.datetime.now(dt.UTC))
            _log.warning(
                "audit: a commit took %.0f ms on the event loop; committing in a worker thread for the next %gs",
                took * 1000,
                WORKER_SPELL,
            )

    @property
    def commits_in(self) -> str:
        """Where commits run now: ``event loop``, or ``worker thread`` (for a while after a slow one)."""
        return "event loop" if time.monotonic() >= self._worker_until else "worker thread"

    def _commit(self, connection: PoolProxiedConnection) -> None:
        try:
            connection.commit()
        finally:
            self._committing = False

    def _drop(self, connection: PoolProxiedConnection) -> None:
        """Roll back and close the loop's connection (the next append opens another), unless a commit is still under
        way on it in the worker (it then closes on :meth:`aclose`)."""
        if self._committing:
            return
        self._connection = None
        with contextlib.suppress(sqlite3.Error):
            connection.rollback()
        connection.close()

    async def aclose(self, patience: float) -> None:
        """Close the loop's connection and dispose of the engines in the worker, once it is done with what it was
        given (a commit still under way on that connection, say), waiting ``patience`` at most."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._thread.submit(connection.close)
        self._thread.submit(self._loop_engine.dispose)
        await asyncio.wait({self._in_thread(self._engine.dispose)}, timeout=patience)
        self._thread.shutdown(wait=False)
