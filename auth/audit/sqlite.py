"""Appends to an audit store in a SQLite file, off the async engine: statements on the loop, the commit in a thread.

:class:`~auth.audit.log.AuditLog` uses :class:`SqliteFile` for an ``sqlite+aiosqlite`` database file; reads,
verification and pruning still go through the async engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.exc import OperationalError

from auth.audit.entry import AuditEntry
from auth.audit.store import ChainHead, Links, append

__all__ = ["SqliteFile"]

_T = TypeVar("_T")


def _append_committed(engine: Engine, entries: list[AuditEntry], linked: Links | None) -> ChainHead:
    with engine.begin() as conn:
        return append(conn, entries, linked)


def _busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteFile:
    """Appends to a SQLite database file: the statements on the event loop, the commit in a worker thread.

    The file is put in WAL mode (it stays so): a commit then syncs the log once instead of writing and syncing a
    rollback journal and the database, and readers (verify, queries) no longer block the writer. In that mode the
    statements of an append work on pages held in memory, so they run where they are called, on a connection that
    never waits for a lock; the driver's commit -- the write and sync of the log -- runs in the worker. When
    another process holds the write lock, the whole append runs in the worker instead, which waits for the lock up
    to ``busy_timeout``; so does every append to a file left in rollback journal mode (another process held it
    busy when this one opened it).

    The worker gets one call per commit: in a busy process, a second thread waits for the GIL after every driver
    call it makes (through aiosqlite, each statement, fetch and commit would be such a crossing).
    """

    def __init__(self, url: URL, options: dict[str, Any], busy_timeout: float) -> None:
        url = url.set(drivername="sqlite+pysqlite")
        waits = {} if "timeout" in url.query else {"timeout": busy_timeout}
        self._engine = create_engine(url, connect_args=waits).execution_options(**options)
        self._loop_engine = create_engine(url, connect_args={"timeout": 0}).execution_options(**options)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="onewindow-audit")
        self._staging = False

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
        """Append and commit. Not to be cancelled: the worker may be committing on a connection this closes."""
        if self._staging:
            head = await self._staged(entries, linked)
            if head is not None:
                return head
        return await self._in_thread(_append_committed, self._engine, entries, linked)

    async def _staged(self, entries: list[AuditEntry], linked: Links | None) -> ChainHead | None:
        """The statements here, the driver's commit in the worker; ``None`` when another process holds the lock."""
        connection = self._loop_engine.connect()
        try:
            transaction = connection.begin()
            try:
                head = append(connection, entries, linked)
            except OperationalError as exc:
                if _busy(exc):
                    return None
                raise
            driver = connection.connection.dbapi_connection
            assert driver is not None
            await self._in_thread(driver.commit)
            transaction.commit()  # SQLAlchemy's side of it: nothing is left for the driver to commit
            return head
        finally:
            connection.close()  # rolls back what was not committed

    async def aclose(self, patience: float) -> None:
        """Dispose of the engines once the worker is done with what it was given (waiting ``patience`` at most)."""
        await asyncio.wait({self._in_thread(self._engine.dispose)}, timeout=patience)
        self._loop_engine.dispose()
        self._thread.shutdown(wait=False)
