"""Creating a store's tables when several gateway processes start together.

The first process creates the tables; the others wait for its commit and find them, instead of failing with "table
already exists". On PostgreSQL a transaction-level advisory lock serialises them, on SQLite an immediate
transaction (the database's write lock); other databases rely on ``create_all``'s check.

    async with engine.begin() as conn:
        await serialise_schema_changes(conn, API_KEYS_DDL_LOCK)
        await conn.run_sync(metadata.create_all, tables=[...])
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["serialise_schema_changes"]


async def serialise_schema_changes(conn: AsyncConnection, lock: int) -> None:
    """Hold, until ``conn``'s transaction ends, the lock named ``lock`` (a 64-bit number per store)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(lock)))
    elif conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
