"""A schema of the test's own on the PostgreSQL server, for the stores under test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@contextlib.asynccontextmanager
async def fresh_postgres_schema(url: str, prefix: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """Create a schema named ``prefix`` and a random suffix on the server at ``url``; yield its name and an engine
    on the server, and drop the schema (and dispose of the engine) afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        yield schema, engine
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await engine.dispose()
