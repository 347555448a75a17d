"""A gateway under test, served on loopback, as the end-to-end tests ask it: GraphQL over HTTP and the audit."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from auth.audit import AuditFilter, AuditLog
from auth.audit.query import AuditRecord
from demo.variants import DEMO_CONFIG
from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.serving import serve_asgi

__all__ = ["PERSON", "PERSON_NO_PURPOSE", "ServeDemo", "ServedGateway", "demo_gateways"]

PERSON = """
query($id: IdNumber!, $case: String!) {
  person(idNumber: $id, purpose: {caseNumber: $case}) { %s }
}"""
PERSON_NO_PURPOSE = "query($id: IdNumber!) { person(idNumber: $id) { %s } }"


@dataclass
class ServedGateway:
    """The gateway at ``url``, built from ``config``; requests carry no credentials (the development principal)."""

    url: str
    config: GatewayConfig

    async def query(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{self.url}/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ask_person(self, id_number: str, selection: str, *, case: str | None) -> dict[str, Any]:
        """``person`` with ``selection``, for the purpose ``case`` (or without a purpose)."""
        if case is None:
            return await self.query(PERSON_NO_PURPOSE % selection, id=id_number)
        return await self.query(PERSON % selection, id=id_number, case=case)

    async def audit_of(self, applicant: str) -> list[AuditRecord]:
        """The disclosures recorded under ``applicant``, oldest first."""
        assert self.config.auth.audit is not None
        log = AuditLog(self.config.auth.audit)
        await log.open()
        try:
            records = await log.query(AuditFilter(applicant=applicant), limit=1000)
            return sorted(records, key=lambda record: record.seq)
        finally:
            await log.aclose()


# Serve one more gateway on the demo configuration: (url, config).
ServeDemo = Callable[..., Awaitable[tuple[str, GatewayConfig]]]


@contextlib.asynccontextmanager
async def demo_gateways(demo_variables: Mapping[str, str], tmp_path: Path) -> AsyncIterator[ServeDemo]:
    """Gateways on the demo configuration over running demo departments, each with its own audit chain, no cache
    unless asked (so every read reaches the department), and a development principal that is a clerk of
    ``clerk_department``; ``overlays`` are laid over the demo file and ``variables`` fill theirs. All are stopped
    when the block ends."""
    numbers = itertools.count(1)
    async with contextlib.AsyncExitStack() as stack:

        async def serve(
            clerk_department: str = "民政局",
            *,
            overlays: Sequence[Path] = (),
            variables: Mapping[str, str] | None = None,
            cache: bool = False,
        ) -> tuple[str, GatewayConfig]:
            own = {
                "DEMO_AUDIT_URL": f"sqlite+aiosqlite:///{tmp_path / f'audit-{next(numbers)}.db'}",
                "DEMO_CACHE": "true" if cache else "false",
                "DEMO_CLERK_DEPARTMENT": clerk_department,
            }
            config = load_config(DEMO_CONFIG, {**demo_variables, **own, **(variables or {})}, overlays=overlays)
            url = await stack.enter_async_context(serve_asgi(create_app(config)))
            return url, config

        yield serve
