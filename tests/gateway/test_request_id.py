"""The request id over HTTP: the audit's is the gateway's own, sent back in X-Request-Id; the client's is kept apart."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from auth.audit import AuditFilter, AuditLog
from demo.data import SAMPLE_PERSON_ID
from gateway.app import create_app
from gateway.serving import serve_asgi
from tests.gateway.registry import NAME, PERSON, audited_config, registry_app


async def test_the_audits_request_id_is_the_gateways_and_the_clients_is_kept_apart(tmp_path: Path) -> None:
    claimed = "r-1 <another request's id>" + "x" * 100  # what a client may send: anything, someone else's id
    async with serve_asgi(registry_app()) as registry:
        config = audited_config(registry, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
        async with serve_asgi(create_app(config)) as url, httpx.AsyncClient() as client:
            ask = {"query": PERSON, "variables": {"id": SAMPLE_PERSON_ID}}
            answers = [
                await client.post(f"{url}/graphql", json=ask, headers={"X-Request-Id": claimed}),
                await client.post(f"{url}/graphql", json=ask, headers={"X-Request-Id": claimed}),
                await client.post(f"{url}/graphql", json=ask),
            ]
            health = await client.get(f"{url}/healthz", headers={"X-Request-Id": claimed})
    assert all(a.json()["data"]["person"]["name"] == NAME for a in answers)
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in [*ids, health.headers["x-request-id"]])
    assert len(set(ids)) == 3

    assert config.auth.audit is not None
    async with AuditLog(config.auth.audit) as audit:
        records = await audit.query(AuditFilter(applicant=SAMPLE_PERSON_ID))
        assert (await audit.verify()).ok
    kept = ("r-1anotherrequestsid" + "x" * 100)[:64]
    assert sorted((r.request_id, r.client_request_id) for r in records) == sorted(
        [(ids[0], kept), (ids[1], kept), (ids[2], None)]
    )
