"""Cache, resilience and hardening end to end, against the real demo departments (and the real Redis)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.data import SAMPLE_PERSON_ID
from demo.departments import CIVIL_AFFAIRS, HRSS, PUBLIC_SECURITY, DemoDepartments
from gateway.app import create_app
from gateway.config import load_config
from gateway.serving import serve_asgi
from tests.conftest import unused_port
from tests.demo_config import demo_yaml
from tests.gateway.conftest import Gateway

FANOUT = """query($id: IdNumber!) { person(idNumber: $id) {
  name maritalStatus socialInsurance { insured } provenance { field source stale age } } }"""
HOOK_TOKEN = "demo-hrss-hook-token"


async def test_a_hundred_identical_requests_cost_one_call_per_department(gateway: Gateway) -> None:
    answers = await asyncio.gather(*(gateway.query(FANOUT, id=SAMPLE_PERSON_ID) for _ in range(100)))
    assert all("errors" not in a for a in answers)
    assert len({str(a["data"]) for a in answers}) == 1
    calls = gateway.department_calls()
    assert calls[PUBLIC_SECURITY] == 1
    assert calls[CIVIL_AFFAIRS] == 1
    assert calls[HRSS] == 1


async def test_cached_value_stands_in_marked_stale_when_the_department_fails(
    departments: DemoDepartments, tmp_path: Path
) -> None:
    edited = demo_yaml(
        tmp_path,
        replace={
            "cache: {stale_if_error: 10m, stale_while_revalidate: 30s}": "cache: {ttl: 200ms, stale_if_error: 10m}"
        },
    )
    config = load_config(edited, variables=departments.variables)
    async with serve_asgi(create_app(config)) as url, httpx.AsyncClient(timeout=30) as client:

        async def ask() -> dict[str, Any]:
            answer = await client.post(f"{url}/graphql", json={"query": FANOUT, "variables": {"id": SAMPLE_PERSON_ID}})
            return dict(answer.json())

        fresh = await ask()
        await asyncio.sleep(0.3)  # past hrss's ttl, within its stale_if_error window
        await departments.stop(HRSS)
        stale = await ask()
    assert "errors" not in stale, stale
    person = stale["data"]["person"]
    assert person["socialInsurance"] == fresh["data"]["person"]["socialInsurance"]
    provenance = {p["field"]: p for p in person["provenance"]}
    assert provenance["socialInsurance"]["stale"] is True
    assert provenance["socialInsurance"]["age"] >= 0.3
    assert provenance["name"]["stale"] is False


async def test_invalidation_hook_needs_the_departments_token_and_forces_a_fresh_call(gateway: Gateway) -> None:
    await gateway.query(FANOUT, id=SAMPLE_PERSON_ID)
    async with httpx.AsyncClient() as client:
        hook = f"{gateway.url}/hooks/invalidate/{HRSS}"
        refused = await client.post(hook, json={"key": SAMPLE_PERSON_ID}, headers={"Authorization": "Bearer guess"})
        assert refused.status_code == 401
        assert (await client.post(f"{gateway.url}/hooks/invalidate/{CIVIL_AFFAIRS}", json={})).status_code == 404
        done = await client.post(
            hook, json={"key": SAMPLE_PERSON_ID}, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
        )
        assert done.json() == {"invalidated": 1}
    await gateway.query(FANOUT, id=SAMPLE_PERSON_ID)
    calls = gateway.department_calls()
    assert calls[HRSS] == 2, "invalidated: asked again"
    assert calls[PUBLIC_SECURITY] == 1, "not invalidated: still cached"


@pytest.mark.parametrize(
    "document",
    [
        '{ person(idNumber: "11010519491231002X") { '
        + "cases { applicant { ... on Person { " * 25
        + "name"
        + " } }" * 25
        + " } }",
        "{ " + " ".join(f'a{i}: person(idNumber: "11010519491231002X") {{ name }}' for i in range(1000)) + " }",
        '{ person(idNumber: "11010519491231002X") { name } } ' + "#" * 1_000_000,
    ],
    ids=["depth-50", "1000-aliases", "1MB-document"],
)
async def test_hostile_documents_are_refused_before_any_department_is_called(gateway: Gateway, document: str) -> None:
    body = await gateway.query(document)
    assert body.get("data") is None
    assert set(gateway.department_calls().values()) == {0}


async def test_batched_operations_over_the_limit_reach_no_department(gateway: Gateway) -> None:
    batch = [{"query": '{ person(idNumber: "11010519491231002X") { name } }'}] * 100
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{gateway.url}/graphql", json=batch)
    assert response.status_code == 400
    assert set(gateway.department_calls().values()) == {0}


@contextmanager
def _gateway_process(config: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port)],
        env={**os.environ, **env, "ONEWINDOW_LOG_LEVEL": "warning"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    raise RuntimeError("gateway process exited") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_two_gateway_processes_share_the_redis_cache_and_its_invalidation(redis_url: str, tmp_path: Path) -> None:
    namespace = f"onewindow-test-{os.getpid()}"
    async with DemoDepartments(tmp_path) as departments:
        env = {
            **departments.variables,
            "DEMO_CACHE_URL": redis_url,
            "DEMO_CACHE_KEY_SECRET": f"{namespace}-shared-key-secret",
        }
        config = demo_yaml(tmp_path)
        with _gateway_process(config, unused_port(), env) as one, _gateway_process(config, unused_port(), env) as two:
            async with httpx.AsyncClient(timeout=30) as client:

                async def ask(url: str) -> dict[str, object]:
                    r = await client.post(
                        f"{url}/graphql", json={"query": FANOUT, "variables": {"id": SAMPLE_PERSON_ID}}
                    )
                    return dict(r.json())

                await client.post(
                    f"{one}/hooks/invalidate/{HRSS}", json={}, headers={"Authorization": f"Bearer {HOOK_TOKEN}"}
                )
                departments.counters[HRSS].reset()
                first = await ask(one)
                assert departments.counters[HRSS].total == 1
                second = await ask(two)
                assert departments.counters[HRSS].total == 1, "the second process found it in the shared cache"
                assert first["data"] == second["data"]
                done = await client.post(
                    f"{one}/hooks/invalidate/{HRSS}",
                    json={"key": SAMPLE_PERSON_ID},
                    headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
                )
                assert done.json()["invalidated"] >= 1
                await ask(two)
                assert departments.counters[HRSS].total == 2, "the invalidation through one reached the other"
