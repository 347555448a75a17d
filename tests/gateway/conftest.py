"""Fixtures for gateway tests: the demo departments, and the gateway over them served on a loopback port.

Requests reaching the HTTP departments are counted by the departments themselves; statements reaching the SQLite
departments are counted on the database engines the fixture hands to the SQL adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.base import Adapter
from adapters.sql import SqlAdapter
from demo.departments import APPROVAL, EDUCATION, DemoDepartments
from gateway.app import build_adapters, create_app
from gateway.config import GatewayConfig
from gateway.serving import serve_asgi
from tests.demo_config import demo_config


@dataclass
class Gateway:
    url: str
    departments: DemoDepartments
    config: GatewayConfig
    sql_statements: dict[str, int] = field(default_factory=dict)

    async def query(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{self.url}/graphql", json={"query": query, "variables": variables})
        body: dict[str, Any] = response.json()
        body["status"] = response.status_code
        return body

    def department_calls(self) -> dict[str, int]:
        calls = {name: counter.total for name, counter in self.departments.counters.items()}
        return calls | self.sql_statements

    def reset(self) -> None:
        for counter in self.departments.counters.values():
            counter.reset()
        for name in self.sql_statements:
            self.sql_statements[name] = 0


def _counted_engine(url: str, counts: dict[str, int], name: str) -> AsyncEngine:
    engine = create_async_engine(url)
    counts[name] = 0

    def count(*_: Any) -> None:
        counts[name] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    return engine


@pytest.fixture
async def departments(tmp_path: Path) -> AsyncIterator[DemoDepartments]:
    async with DemoDepartments(tmp_path) as demo:
        yield demo


@pytest.fixture
async def gateway(departments: DemoDepartments, tmp_path: Path) -> AsyncIterator[Gateway]:
    config = demo_config(departments.variables, tmp_path)
    counts: dict[str, int] = {}
    engines = {
        name: _counted_engine(departments.variables[var], counts, name)
        for name, var in ((EDUCATION, "DEMO_EDUCATION_DB_URL"), (APPROVAL, "DEMO_APPROVAL_DB_URL"))
    }
    adapters: dict[str, Adapter] = build_adapters(config)
    for name, engine in engines.items():
        adapters[name] = SqlAdapter(name, config.sources[name], engine=engine)
    try:
        async with serve_asgi(create_app(config, adapters=adapters)) as url:
            gw = Gateway(url, departments, config, counts)
            gw.reset()
            yield gw
    finally:
        for engine in engines.values():
            await engine.dispose()
