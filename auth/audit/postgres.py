"""Appends to an audit store on PostgreSQL (asyncpg) in one statement: one round trip, outside a transaction block.

:class:`~auth.audit.log.AuditLog` uses :class:`PostgresAppend` for the usual append -- the chain head is still where
this log left it -- and the full append of :func:`~auth.audit.store.append` (head locked ``FOR UPDATE`` and read,
in a transaction) when it is not.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, bindparam, cast, column, exists, func, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from auth.audit.chain import encode_value
from auth.audit.store import ADVANCE_HEAD, Links, Statement
from auth.audit.tables import head, records

__all__ = ["PostgresAppend"]


def _one_statement_append() -> Any:
    """``WITH moved AS (UPDATE head ... WHERE seq = :from_seq AND hash = :from_hash RETURNING seq) INSERT INTO
    records (...) SELECT ... FROM jsonb_to_recordset(:rows) AS r(...) WHERE EXISTS (SELECT seq FROM moved)``."""
    moved = ADVANCE_HEAD.returning(head.c.seq).cte("moved")
    shapes = [column(c.name, c.type) for c in records.c]
    rows = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=String), JSONB))
        .table_valued(*shapes)
        .render_derived("r", with_types=True)
    )
    chosen = select(*rows.c).where(exists(select(moved.c.seq)))
    return insert(records).from_select([c.name for c in records.c], chosen).add_cte(moved)


class PostgresAppend:
    """The usual append as one statement, on a connection of the log's own kept from one append to the next.

    The head moves by a conditional ``UPDATE`` in a data-modifying ``WITH``, and the records go in from one JSON
    parameter only if it moved: PostgreSQL runs the statement as a transaction of its own, so the append is atomic
    with no ``BEGIN`` and ``COMMIT`` -- one round trip where the transaction block takes four, and no SQLAlchemy
    execution or greenlet on the event loop. Another writer holding the head row makes the ``UPDATE`` wait for its
    commit and then find the head moved: :meth:`run` returns ``False`` having written nothing.

    >>> async def example(engine: AsyncEngine, linked: Links) -> None:
    ...     appender = PostgresAppend(engine)
    ...     if not await appender.run(linked):   # the head moved: lock it, read it, chain after it
    ...         ...
    ...     await appender.aclose()
    """

    def __init__(self, engine: AsyncEngine, schema_translate_map: Mapping[str | None, str] | None = None) -> None:
        import asyncpg  # the postgres extra: only an asyncpg engine makes one of these

        self._engine = engine
        self._statement = Statement(_one_statement_append(), engine.dialect, schema_translate_map)
        self._errors: tuple[type[Exception], ...] = (asyncpg.PostgresError, asyncpg.InterfaceError)
        self._connection: PoolProxiedConnection | None = None  # idle between appends; taken while one runs

    @staticmethod
    def serves(engine: AsyncEngine) -> bool:
        """Whether ``engine`` talks to PostgreSQL through asyncpg."""
        return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"

    async def run(self, linked: Links) -> bool:
        """Move the head from ``linked.after`` to ``linked.head`` and insert ``linked.rows``, committed; ``False``,
        with nothing written, when the head is elsewhere. A connection that fails or is cancelled mid-statement is
        invalidated (the next append takes another from the pool)."""
        # taken while the statement runs: an append given up on may still be waiting on it when the next one starts
        connection, self._connection = self._connection, None
        if connection is None:
            connection = await self._engine.raw_connection()
        driver = connection.driver_connection
        assert driver is not None
        values = linked.moves() | {"rows": json.dumps(linked.rows, default=encode_value, ensure_ascii=False)}
        try:
            status = await driver.execute(self._statement.sql, *self._statement.parameters(values))
        except BaseException as exc:
            with contextlib.suppress(SQLAlchemyError, OSError):
                await greenlet_spawn(connection.invalidate, exc if isinstance(exc, Exception) else None)
            if isinstance(exc, self._errors):
                raise DBAPIError.instance(self._statement.sql, None, exc, Exception) from exc
            raise
        if self._connection is None:
            self._connection = connection
        else:  # another append took one from the pool meanwhile, and kept it
            await greenlet_spawn(connection.close)
        return bool(status == f"INSERT 0 {len(linked.rows)}")

    async def aclose(self) -> None:
        """Give the kept connection back to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await greenlet_spawn(connection.close)
