"""The identity + audit scenario: the one-department person query with JWT auth and the audit on, against both off.

Two (or three) gateways on the same open policy and the same cache:

- ``identity_off``: the development principal stands in for every caller, ``auth.audit: null``;
- ``identity_on``: no development principal; every request brings an RS256 access token from an OIDC issuer whose
  JWK set a separate process serves over HTTP (:mod:`issuer`), and every disclosure is committed to the audit
  (SQLite in the temporary directory, the default store) before the answer leaves;
- ``identity_on_pg``: the same with the audit on PostgreSQL, in a schema of its own created and dropped here.

``security.production`` stays false on every side, so auth and audit are the only differences. The gateways take
turns in rounds (see :func:`run_identity`); wrk's threads walk disjoint slices of each round's ID numbers (thread
*i* takes every *n*-th from *i*), so no gateway is asked for an ID number twice and the cache (memory, as in the demo
configuration) sees only misses on every side::

    results = run_identity(settings, tmp, env, stats_urls, bodies, floor_rps=7000.0)
    results["identity_on"]["ratio_to_off"]           # target: at least 0.85
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import cpu_seconds, department_calls, free_port, lua_strings, process, require_data, wait_http, wrk
from issuer import AUDIENCE, BenchIssuer
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from auth.audit.tables import records
from demo.variants import DATA_PLANE_PRINCIPAL, DEMO_OPERATOR, demo_yaml

__all__ = ["IDENTITY_CLAIMS", "TARGET_RATIO", "IdentitySettings", "run_identity"]

TARGET_RATIO = 0.85
"""The issue's target: throughput with auth and audit on, as a share of the same run with both off."""

ISSUER_NAME = "bench"
TOKENS = 8
"""Access tokens rotated by wrk, each for another subject (and so another rate-limit budget)."""

IDENTITY_CLAIMS: dict[str, Any] = {"onewindow_kind": "service", "roles": DATA_PLANE_PRINCIPAL["roles"]}
"""What the tokens say: a service principal with the development principal's roles (the default claim mapping)."""

VIEWER_QUERY = '{"query": "{ viewer { subject via } }"}'

_LUA = """
local bodies = {%(bodies)s}
local tokens = {%(tokens)s}
local stride = %(stride)d
local started = 0
function setup(thread)
  thread:set("offset", started)
  started = started + 1
end
local n = nil
request = function()
  if n == nil then n = offset or 0 end
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[n %% #tokens + 1] end
  local body = bodies[n %% #bodies + 1]
  n = n + stride
  return wrk.format("POST", "/graphql", headers, body)
end
"""


@dataclass(frozen=True)
class IdentitySettings:
    """How hard and how long to drive each gateway (``duration`` seconds per round), and the PostgreSQL for the
    second audit store (``None``: skip)."""

    duration: int
    connections: int
    threads: int
    postgres_url: str | None
    rounds: int = 5


@dataclass(frozen=True)
class _AuditStore:
    url: str
    schema: str | None = None

    def config(self) -> dict[str, Any]:
        return {"url": self.url} if self.schema is None else {"url": self.url, "schema": self.schema}

    def count(self) -> int:
        """Records in the store's chain (read by the benchmark, not by the gateway)."""
        return asyncio.run(self._count())

    async def _count(self) -> int:
        engine = create_async_engine(self.url, poolclass=NullPool)
        options = {} if self.schema is None else {"schema_translate_map": {None: self.schema}}
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(**options)
                return int(await conn.scalar(select(func.count()).select_from(records)) or 0)
        finally:
            await engine.dispose()


def _lua(bodies: Sequence[str], tokens: Sequence[str], threads: int, path: Path) -> Path:
    script = _LUA % {"bodies": lua_strings(bodies), "tokens": lua_strings(tokens), "stride": threads}
    path.write_text(script, encoding="utf-8")
    return path


def _off_config(tmp: Path) -> Path:
    def edit(data: dict[str, Any]) -> None:
        data["auth"]["audit"] = None

    return demo_yaml(tmp, edit=edit, name="identity-off.yaml")


def _on_config(tmp: Path, issuer: BenchIssuer, audit: _AuditStore, name: str) -> Path:
    def edit(data: dict[str, Any]) -> None:
        auth = data["auth"]
        del auth["development_principal"]
        auth["issuers"] = {
            ISSUER_NAME: {
                "issuer": issuer.url,
                "jwks_url": issuer.jwks_url,
                "audience": [AUDIENCE],
                "algorithms": ["RS256"],
            }
        }
        auth["audit"] = audit.config()

    return demo_yaml(tmp, edit=edit, name=f"{name}.yaml")


async def _execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def _postgres_schema(url: str) -> Iterator[str | None]:
    """A schema of the benchmark's own on ``url``, dropped afterwards; ``None`` when the server cannot be reached."""
    schema = f"onewindow_bench_{os.getpid()}"
    try:
        asyncio.run(_execute(url, f'CREATE SCHEMA "{schema}"'))
    except (SQLAlchemyError, OSError, ImportError) as exc:
        print(f"identity_on_pg skipped: cannot create a schema on {url}: {exc!r}", file=sys.stderr)
        yield None
        return
    try:
        yield schema
    finally:
        asyncio.run(_execute(url, f'DROP SCHEMA "{schema}" CASCADE'))


def _check_identity(url: str, token: str | None, expected_via: str) -> None:
    """The gateway authenticates the way the scenario says: a token proves an OIDC principal and a request without
    one is refused; without auth, the development principal answers."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        refused = httpx.post(f"{url}/graphql", content=VIEWER_QUERY, headers=headers, timeout=10)
        if refused.status_code != 401:
            raise RuntimeError(f"{url} answered a request without credentials with {refused.status_code}, not 401")
        headers["Authorization"] = f"Bearer {token}"
    viewer = httpx.post(f"{url}/graphql", content=VIEWER_QUERY, headers=headers, timeout=10).json()
    via = ((viewer.get("data") or {}).get("viewer") or {}).get("via")
    if via != expected_via:
        raise RuntimeError(f"{url}: viewer is {viewer}, expected via {expected_via!r}")


def _audit_transactions(url: str) -> int:
    status = httpx.get(f"{url}/readyz", headers=DEMO_OPERATOR, timeout=10).json()["audit"]
    return int(status.get("transactions", 0))


@dataclass
class _Side:
    """One gateway of the comparison, running, and what its rounds measured."""

    name: str
    url: str
    pid: int
    tokens: Sequence[str]
    audit: _AuditStore | None
    rounds: list[dict[str, Any]] = field(default_factory=list)


def _start(
    stack: ExitStack,
    name: str,
    config: Path,
    env: Mapping[str, str],
    bodies: Sequence[str],
    tokens: Sequence[str],
    audit: _AuditStore | None,
) -> _Side:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = stack.enter_context(
        process([sys.executable, "-m", "gateway", "serve", str(config), "--port", str(port)], env=env)
    )
    wait_http(f"{url}/healthz")
    _check_identity(url, tokens[0] if tokens else None, f"oidc:{ISSUER_NAME}" if tokens else "development")
    require_data(url, bodies, {"Authorization": f"Bearer {tokens[0]}"} if tokens else None)
    return _Side(name, url, gateway.pid, tokens, audit)


def _round(
    side: _Side, bodies: Sequence[str], settings: IdentitySettings, tmp: Path, stats_urls: Mapping[str, str]
) -> dict[str, Any]:
    """One wrk run against one side: its figures, and the counters it moved."""
    script = _lua(bodies, side.tokens, settings.threads, tmp / f"{side.name}-{len(side.rounds)}.lua")
    rows_before = side.audit.count() if side.audit is not None else 0
    commits_before = _audit_transactions(side.url) if side.audit is not None else 0
    calls_before = department_calls(stats_urls)
    cpu_before = cpu_seconds(side.pid)
    figures = wrk(
        side.url, script, duration=settings.duration, connections=settings.connections, threads=settings.threads
    )
    figures["cpu_s"] = cpu_seconds(side.pid) - cpu_before
    calls_after = department_calls(stats_urls)
    figures["department_calls"] = {d: calls_after[d] - calls_before[d] for d in calls_after}
    if side.audit is not None:
        # a request cut off when wrk stops may still commit: counted here, it errs towards more records, not fewer
        figures["audit_commits"] = _audit_transactions(side.url) - commits_before
        figures["audit_records"] = side.audit.count() - rows_before
    print(
        f"{side.name:>14} round {len(side.rounds) + 1}: {figures['rps']:.0f} req/s  p50 {figures['p50_ms']:.1f} ms  "
        f"p99 {figures['p99_ms']:.1f} ms  CPU {_cpu_ms(figures)} ms/req"
    )
    side.rounds.append(figures)
    return figures


def _cpu_ms(figures: Mapping[str, Any]) -> float:
    return round(figures["cpu_s"] * 1000 / max(figures["requests"], 1), 2)


def _summary(side: _Side, settings: IdentitySettings) -> dict[str, Any]:
    """A side's figures over its rounds: mean throughput, median latencies, totals per request."""
    rounds = side.rounds
    requests = max(sum(r["requests"] for r in rounds), 1)
    calls: dict[str, int] = {}
    for r in rounds:
        for department, count in r["department_calls"].items():
            calls[department] = calls.get(department, 0) + count
    calls = {d: n for d, n in calls.items() if n}
    figures: dict[str, Any] = {
        "rps": round(statistics.fmean(r["rps"] for r in rounds), 2),
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "requests": requests,
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "connections": settings.connections,
        "rounds": [
            {**{k: r[k] for k in ("rps", "p50_ms", "p99_ms", "requests")}, "cpu_ms_per_request": _cpu_ms(r)}
            for r in rounds
        ],
        "gateway_cpu_ms_per_request": round(sum(r["cpu_s"] for r in rounds) * 1000 / requests, 2),
        "department_calls": calls,
        "department_calls_per_request": round(sum(calls.values()) / requests, 3),
    }
    if side.audit is not None:
        figures["audit_records"] = sum(r["audit_records"] for r in rounds)
        figures["audit_records_per_request"] = round(figures["audit_records"] / requests, 3)
        figures["audit_commits_per_request"] = round(sum(r["audit_commits"] for r in rounds) / requests, 3)
    return figures


def run_identity(
    settings: IdentitySettings,
    tmp: Path,
    env: Mapping[str, str],
    stats_urls: Mapping[str, str],
    bodies: Sequence[str],
    *,
    floor_rps: float | None,
) -> dict[str, Any]:
    """``identity_off``, ``identity_on`` and (with PostgreSQL) ``identity_on_pg``, each with its ratio to the floor
    and the on sides with their ratio to ``identity_off``, all measured in this run (no ratio to the floor when
    ``floor_rps`` is ``None``: the floor was not measured).

    The gateways run side by side and take turns, ``settings.rounds`` times (the order reversed every other round),
    each round on ID numbers of its own: a load that drifts during the run weighs on every side alike. A side's
    ratio to off is the median of its rounds' ratios to the off run next to them."""
    issuer_port = free_port()
    issuer = BenchIssuer(f"http://127.0.0.1:{issuer_port}")
    tokens = [issuer.token(f"bench-client-{i}", IDENTITY_CLAIMS) for i in range(1, TOKENS + 1)]
    jwks = issuer.write_jwks(tmp / "jwks.json")
    issuer_args = [sys.executable, str(Path(__file__).with_name("issuer.py")), "--port", str(issuer_port)]
    checked, timed = [bodies[0], bodies[-1]], bodies[1:-1]  # the check's answers are cached: kept out of the rounds
    with ExitStack() as stack:
        stack.enter_context(process([*issuer_args, "--jwks", str(jwks)], env=env))
        wait_http(issuer.jwks_url)
        sqlite = _AuditStore(f"sqlite+aiosqlite:///{tmp / 'identity-audit.db'}")
        sides = [
            _start(stack, "identity_off", _off_config(tmp), env, checked, [], None),
            _start(stack, "identity_on", _on_config(tmp, issuer, sqlite, "identity-on"), env, checked, tokens, sqlite),
        ]
        schema = stack.enter_context(_postgres_schema(settings.postgres_url)) if settings.postgres_url else None
        if settings.postgres_url and schema is not None:
            postgres = _AuditStore(settings.postgres_url, schema)
            config = _on_config(tmp, issuer, postgres, "identity-on-pg")
            sides.append(_start(stack, "identity_on_pg", config, env, checked, tokens, postgres))
        for number in range(settings.rounds):
            for side in sides if number % 2 == 0 else sides[::-1]:
                _round(side, timed[number :: settings.rounds], settings, tmp, stats_urls)
    results = {side.name: _summary(side, settings) for side in sides}
    off = sides[0]
    for side in sides:
        if floor_rps is not None:
            results[side.name]["ratio_to_floor"] = round(results[side.name]["rps"] / floor_rps, 4)
        if side is not off:
            ratios = [mine["rps"] / theirs["rps"] for mine, theirs in zip(side.rounds, off.rounds, strict=True)]
            results[side.name]["ratio_to_off"] = round(statistics.median(ratios), 4)
            results[side.name]["ratio_to_off_rounds"] = [round(r, 4) for r in ratios]
    return results
