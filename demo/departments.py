"""All demo departments at once: the dataset, the SQLite files and every HTTP department on a loopback port.

    async with DemoDepartments(tmp_path, latency=0.01) as demo:
        config = load_config("demo/onewindow.yaml", demo.variables)
        demo.counters[HRSS].total          # calls the HRSS department received
        await demo.stop(CIVIL_AFFAIRS)     # the marriage registry is down from now on

``variables`` fill the ``${DEMO_...}`` placeholders of ``demo/onewindow.yaml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from demo.behaviour import DepartmentBehaviour, RequestCounter
from demo.data import DEFAULT_SEED, build_dataset
from demo.model import Dataset
from demo.rest_departments import hrss_app, licences_app, market_regulation_app
from demo.soap_departments import HOUSEHOLD_PATH, MARRIAGE_PATH, civil_affairs_app, public_security_app
from demo.sql_departments import build_databases, sqlite_url
from gateway.serving import serve_asgi

__all__ = [
    "APPROVAL",
    "CIVIL_AFFAIRS",
    "DEPARTMENTS",
    "EDUCATION",
    "HRSS",
    "HTTP_DEPARTMENTS",
    "LICENCES",
    "MARKET_REGULATION",
    "PUBLIC_SECURITY",
    "DemoDepartments",
]

PUBLIC_SECURITY = "public_security"
CIVIL_AFFAIRS = "civil_affairs"
HRSS = "hrss"
MARKET_REGULATION = "market_regulation"
LICENCES = "licences"
EDUCATION = "education"
APPROVAL = "approval"

_AppFactory = Callable[[Dataset, DepartmentBehaviour], Starlette]
_HTTP: Mapping[str, _AppFactory] = {
    PUBLIC_SECURITY: public_security_app,
    CIVIL_AFFAIRS: civil_affairs_app,
    HRSS: hrss_app,
    MARKET_REGULATION: market_regulation_app,
    LICENCES: licences_app,
}
HTTP_DEPARTMENTS: tuple[str, ...] = tuple(_HTTP)
DEPARTMENTS: tuple[str, ...] = (*HTTP_DEPARTMENTS, EDUCATION, APPROVAL)


class DemoDepartments:
    """Builds the dataset and databases in ``data_dir`` and serves every HTTP department until the block exits.

    ``ports`` pins a department's port (0 or absent: any free port). Each department draws its failures from
    its own RNG seeded from ``seed``, so a run with the same settings fails the same calls.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = DEFAULT_SEED,
        ports: Mapping[str, int] | None = None,
        today: dt.date | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        unknown = set(ports or {}) - set(HTTP_DEPARTMENTS)
        if unknown:
            raise ValueError(f"no HTTP department named {', '.join(sorted(unknown))}; known: {HTTP_DEPARTMENTS}")
        self.data_dir = Path(data_dir)
        self.latency = latency
        self.failure_rate = failure_rate
        self.seed = seed
        self.ports = dict(ports or {})
        self.today = today
        self.host = host
        self.urls: dict[str, str] = {}
        self.counters: dict[str, RequestCounter] = {}
        self.databases: dict[str, Path] = {}
        self._dataset: Dataset | None = None
        self._servers: dict[str, contextlib.AsyncExitStack] = {}

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            raise RuntimeError("the demo departments are not started; use 'async with DemoDepartments(...)'")
        return self._dataset

    @property
    def variables(self) -> dict[str, str]:
        """Values for the ``${DEMO_...}`` placeholders of the demo configuration."""
        urls, dbs = self.urls, self.databases
        variables = {
            "DEMO_EDUCATION_DB_URL": sqlite_url(dbs[EDUCATION], driver="aiosqlite"),
            "DEMO_APPROVAL_DB_URL": sqlite_url(dbs[APPROVAL], driver="aiosqlite"),
            # The gateway's own stores (audit trail, API keys) live beside the demo databases.
            "DEMO_AUDIT_URL": sqlite_url(self.data_dir / "audit.db", driver="aiosqlite"),
            "DEMO_KEYS_URL": sqlite_url(self.data_dir / "keys.db", driver="aiosqlite"),
        }
        if PUBLIC_SECURITY in urls:
            variables["DEMO_PUBLIC_SECURITY_WSDL"] = f"{urls[PUBLIC_SECURITY]}{HOUSEHOLD_PATH}?wsdl"
        if CIVIL_AFFAIRS in urls:
            variables["DEMO_CIVIL_AFFAIRS_WSDL"] = f"{urls[CIVIL_AFFAIRS]}{MARRIAGE_PATH}?wsdl"
        for name, variable in (
            (HRSS, "DEMO_HRSS_URL"),
            (MARKET_REGULATION, "DEMO_MARKET_URL"),
            (LICENCES, "DEMO_LICENCES_URL"),
        ):
            if name in urls:
                variables[variable] = urls[name]
        return variables

    async def __aenter__(self) -> DemoDepartments:
        dataset = build_dataset(self.seed, self.today)
        self._dataset = dataset
        self.databases = await asyncio.to_thread(build_databases, self.data_dir, dataset)
        try:
            for index, (name, factory) in enumerate(_HTTP.items()):
                behaviour = DepartmentBehaviour(self.latency, self.failure_rate, seed=self.seed + index)
                app = factory(dataset, behaviour)
                stack = contextlib.AsyncExitStack()
                url = await stack.enter_async_context(serve_asgi(app, host=self.host, port=self.ports.get(name, 0)))
                self._servers[name] = stack
                self.urls[name] = url
                self.counters[name] = app.state.counter
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def stop(self, name: str) -> None:
        """Stop one HTTP department: its port refuses connections from now on. Stopping twice is harmless."""
        if name not in _HTTP:
            raise ValueError(f"{name!r} is not an HTTP department; known: {', '.join(HTTP_DEPARTMENTS)}")
        stack = self._servers.pop(name, None)
        if stack is not None:
            await stack.aclose()

    async def aclose(self) -> None:
        """Stop every department still running (together: each takes a tick of uvicorn's loop to stop)."""
        await asyncio.gather(*(self.stop(name) for name in list(self._servers)))

    def __repr__(self) -> str:
        running: Any = sorted(self._servers)
        return f"DemoDepartments({str(self.data_dir)!r}, running={running})"
