"""A gateway under test, served on loopback, as the end-to-end tests ask it: GraphQL over HTTP and the audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from auth.audit import AuditFilter, AuditLog
from auth.audit.query import AuditRecord
from gateway.config import GatewayConfig

__all__ = ["PERSON", "PERSON_NO_PURPOSE", "ServedGateway"]

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
